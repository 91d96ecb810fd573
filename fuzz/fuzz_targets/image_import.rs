//! `docker save` and OCI-layout archives (`atoll image load`): entries
//! named by the digest of what they hold, manifests and indexes that
//! point at them, and any other names and bytes. A failed load records
//! no reference; a load that succeeds leaves every image it names
//! complete in the store; nothing is written outside the store.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use atoll_fuzz::archive::gzip;
use atoll_runtime::oci::layout::{LoadOptions, RefIndex, describe, load};
use atoll_runtime::oci::platform::Platform;
use atoll_runtime::oci::store::BlobStore;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

#[derive(Arbitrary, Debug)]
enum Content {
    Bytes(Vec<u8>),
    /// An image manifest whose config and layers are earlier blobs.
    Manifest {
        config: u8,
        layers: Vec<u8>,
        wasm: bool,
    },
    /// An `index.json` naming earlier blobs, with a tag.
    Index {
        manifests: Vec<u8>,
        tag: String,
    },
    /// A `manifest.json` of `docker save`.
    DockerManifest {
        config: String,
        layers: Vec<String>,
        tag: String,
    },
}

#[derive(Arbitrary, Debug)]
enum Named {
    /// `blobs/sha256/<digest of the content>`
    Blob,
    Fixed(u8),
    Any(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    gzip: bool,
    entries: Vec<(Named, Content)>,
}

const FIXED: &[&str] = &[
    "index.json",
    "oci-layout",
    "manifest.json",
    "repositories",
    "abc/layer.tar",
    "abc.json",
    "blobs/",
    "blobs/sha256/",
    "../x",
];

fn digest(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn descriptor(media: &str, blob: &(String, Vec<u8>)) -> serde_json::Value {
    serde_json::json!({"mediaType": media, "digest": blob.0, "size": blob.1.len()})
}

fn archive(input: &Input) -> Vec<u8> {
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut builder = tar::Builder::new(Vec::new());
    let pick = |blobs: &[(String, Vec<u8>)], i: u8| {
        (!blobs.is_empty()).then(|| blobs[usize::from(i) % blobs.len()].clone())
    };
    for (named, content) in input.entries.iter().take(12) {
        let bytes = match content {
            Content::Bytes(b) => b.clone(),
            Content::Manifest {
                config,
                layers,
                wasm,
            } => {
                let media = match wasm {
                    true => "application/wasm",
                    false => "application/vnd.oci.image.layer.v1.tar",
                };
                let cfg = pick(&blobs, *config);
                let layers: Vec<_> = (layers.iter().take(4))
                    .filter_map(|i| pick(&blobs, *i))
                    .map(|b| descriptor(media, &b))
                    .collect();
                serde_json::to_vec(&serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cfg.map(|c| descriptor("application/vnd.oci.image.config.v1+json", &c)),
                    "layers": layers,
                }))
                .unwrap_or_default()
            }
            Content::Index { manifests, tag } => {
                let entries: Vec<_> = (manifests.iter().take(4))
                    .filter_map(|i| pick(&blobs, *i))
                    .map(|b| {
                        let mut d = descriptor("application/vnd.oci.image.manifest.v1+json", &b);
                        d["annotations"] =
                            serde_json::json!({"org.opencontainers.image.ref.name": tag});
                        d["platform"] = serde_json::json!({"os": "linux", "architecture": "amd64"});
                        d
                    })
                    .collect();
                serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": entries}))
                    .unwrap_or_default()
            }
            Content::DockerManifest {
                config,
                layers,
                tag,
            } => serde_json::to_vec(
                &serde_json::json!([{"Config": config, "RepoTags": [tag], "Layers": layers}]),
            )
            .unwrap_or_default(),
        };
        let name = match named {
            Named::Blob => {
                let d = digest(&bytes);
                let name = format!("blobs/sha256/{}", &d[7..]);
                blobs.push((d, bytes.clone()));
                name
            }
            Named::Fixed(i) => FIXED[usize::from(*i) % FIXED.len()].to_string(),
            Named::Any(s) => s.clone(),
        };
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        if builder
            .append_data(&mut h, &name, bytes.as_slice())
            .is_err()
        {
            continue;
        }
    }
    let tar = builder.into_inner().unwrap_or_default();
    match input.gzip {
        true => gzip(&tar),
        false => tar,
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| atoll_fuzz::scratch_dir("atoll-fuzz-import-"))
}

fuzz_target!(|data: &[u8]| {
    // First byte 0: the rest is an archive as it comes (the seeds are real
    // ones); else an archive made from entries.
    let bytes = match data.split_first() {
        Some((0, raw)) => raw.to_vec(),
        Some((_, rest)) => match Input::arbitrary_take_rest(arbitrary::Unstructured::new(rest)) {
            Ok(input) => archive(&input),
            Err(_) => return,
        },
        None => return,
    };
    let dir = scratch();
    let (source, store_dir) = (dir.join("image.tar"), dir.join("store"));
    let _ = std::fs::remove_dir_all(&store_dir);
    std::fs::write(&source, bytes).expect("archive");
    let store = BlobStore::open(&store_dir).expect("store");
    let options = LoadOptions {
        tag: None,
        platform: Platform::new("linux", "amd64", None),
    };
    let result = runtime().block_on(load(&store, &source, &options));
    let refs = RefIndex::new(&store).list().unwrap_or_default();
    match &result {
        Ok(images) => {
            for image in images {
                let summary = runtime()
                    .block_on(describe(&store, &image.manifest_digest))
                    .unwrap_or_else(|| panic!("{} is not in the store", image.manifest_digest));
                assert!(
                    summary.complete,
                    "{} was loaded incomplete",
                    image.manifest_digest
                );
            }
        }
        Err(e) => assert!(refs.is_empty(), "a failed load ({e}) recorded {refs:?}"),
    }
    let top = atoll_fuzz::names_in(dir);
    assert_eq!(top, ["image.tar", "store"], "written beside the store");
});
