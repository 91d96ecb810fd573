//! What registries and image archives answer (the first byte picks the
//! document): manifests and their classification, indexes and the choice
//! of a platform, image configs. The chosen manifest is one the index
//! lists and fits the host (or is Wasm, which runs anywhere); nothing
//! panics.
#![no_main]

use atoll_runtime::oci::{kind, platform};
use libfuzzer_sys::fuzz_target;
use oci_client::manifest::{OciImageIndex, OciImageManifest, OciManifest};

/// Platforms a host may ask for.
fn wanted(n: u8) -> platform::Platform {
    match n % 4 {
        0 => platform::Platform::new("linux", "amd64", None),
        1 => platform::Platform::new("linux", "arm64", Some("v8")),
        2 => platform::Platform::new("linux", "arm", Some("v7")),
        _ => platform::Platform::new("wasip2", "wasm", None),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind_byte, doc)) = data.split_first() else {
        return;
    };
    match kind_byte % 4 {
        0 => {
            if let Ok(OciManifest::Image(m)) = serde_json::from_slice::<OciManifest>(doc) {
                let _ = kind::classify(&m);
            }
        }
        1 => {
            if let Ok(m) = serde_json::from_slice::<OciImageManifest>(doc)
                && let Ok(kind::ArtifactKind::Wasm { layer_digest }) = kind::classify(&m)
            {
                assert!(
                    (m.layers.iter())
                        .any(|l| l.digest == layer_digest && kind::is_wasm_layer(&l.media_type)),
                    "a component whose layer {layer_digest} is not a Wasm layer it lists"
                );
            }
        }
        2 => {
            let Ok(index) = serde_json::from_slice::<OciImageIndex>(doc) else {
                return;
            };
            let want = wanted(kind_byte / 4);
            match platform::select("fuzz/image:1", &index.manifests, &want) {
                Ok(digest) => {
                    // One digest may be listed for several platforms.
                    let fits = |e: &&oci_client::manifest::ImageIndexEntry| {
                        e.digest == digest
                            && e.platform.as_ref().is_some_and(|p| {
                                p.architecture.to_string() == "wasm"
                                    || (p.os.to_string() == want.os
                                        && p.architecture.to_string() == want.architecture)
                            })
                    };
                    assert!(
                        index.manifests.iter().any(|e| fits(&e)),
                        "chose {digest}, which the index does not list for {want}"
                    );
                }
                Err(e) => {
                    let distinct: std::collections::BTreeSet<&String> = e.offered.iter().collect();
                    assert_eq!(distinct.len(), e.offered.len(), "offered twice: {e}");
                }
            }
        }
        _ => {
            let _ = kind::ImageConfig::parse(doc);
        }
    }
});
