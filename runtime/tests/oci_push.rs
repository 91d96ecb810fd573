//! End-to-end tests of pushing and loading images: a Wasm component and an
//! OCI image layout are pushed with [`Pusher`] to a real registry (Debian's
//! `docker-registry`, started per test on a free loopback port, as for the
//! pull tests) and pulled back with [`Puller`]; an image loaded from a
//! layout is pulled from the store alone, its registry unreachable.

#[path = "oci_pull/registry.rs"]
#[allow(dead_code)]
mod registry;

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use atoll_runtime::oci::kind::ArtifactKind;
use atoll_runtime::oci::layout::{self, LoadOptions};
use atoll_runtime::oci::platform::Platform;
use atoll_runtime::oci::pull::{PullConfig, PullError, Puller};
use atoll_runtime::oci::push::{PushConfig, PushError, Pusher};
use atoll_runtime::oci::store::sha256_digest;
use registry::{Registry, TempDir, unused_port};

const WASM_BYTES: &[u8] = b"\0asm\x0d\0\x01\0not really a component";

fn pusher(insecure: &[&str], dir: &TempDir) -> Pusher {
    Pusher::new(PushConfig {
        insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
        // No credentials from the developer's own docker config.
        docker_config: Some(dir.0.join("no-docker-config.json")),
        timeout: Duration::from_secs(10),
    })
}

fn puller(dir: &TempDir, insecure: &[&str]) -> Puller {
    let mut config = PullConfig::new(dir.0.join("store"));
    config.insecure_registries = insecure.iter().map(|s| s.to_string()).collect();
    config.docker_config = Some(dir.0.join("no-docker-config.json"));
    config.timeout = Duration::from_secs(5);
    Puller::new(config)
        .unwrap()
        .with_platform(Platform::new("linux", "amd64", None))
}

/// Writes an OCI image layout holding one container image (a gzipped tar
/// layer with `/hello.txt`, an entrypoint), named `ref_name` if given.
/// Returns the manifest digest and the layer bytes.
fn write_layout(dir: &Path, ref_name: Option<&str>) -> (String, Vec<u8>) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "hello.txt", &b"hello"[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let layer = gz.finish().unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/hello"], "Cmd": ["--loud"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&tar)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256_digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256_digest(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let manifest_digest = sha256_digest(&manifest);
    let mut entry = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest.len(),
    });
    if let Some(name) = ref_name {
        entry["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
    }
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for blob in [&manifest, &config, &layer] {
        let digest = sha256_digest(blob);
        std::fs::write(blobs.join(&digest["sha256:".len()..]), blob).unwrap();
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [entry]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    (manifest_digest, layer)
}

#[tokio::test]
async fn pushed_wasm_pulls_back_as_wasm() {
    let registry = Registry::start("push-wasm");
    let dir = TempDir::new("push-wasm-store");
    let host = registry.host.as_str();
    let wasm_file = dir.0.join("hello.wasm");
    std::fs::write(&wasm_file, WASM_BYTES).unwrap();

    let reference = format!("{host}/test/component:v1");
    let pushed = match pusher(&[host], &dir)
        .push_wasm_file(&wasm_file, &reference)
        .await
    {
        Ok(pushed) => pushed,
        Err(err) => panic!("push: {err}\nregistry log:\n{}", registry.log()),
    };
    assert_eq!((pushed.uploaded, pushed.existing), (2, 0));
    assert!(pushed.manifest_digest.starts_with("sha256:"));

    let puller = puller(&dir, &[host]);
    let image = puller.pull(&reference, |_| {}).await.unwrap();
    let layer = sha256_digest(WASM_BYTES);
    assert_eq!(
        image.kind,
        ArtifactKind::Wasm {
            layer_digest: layer.clone()
        }
    );
    assert_eq!(image.manifest_digest, pushed.manifest_digest);
    assert_eq!(image.config, None);
    assert_eq!(
        image.layers,
        [(layer.clone(), "application/wasm".to_owned())]
    );
    let stored = std::fs::read(puller.store().path(&layer).unwrap()).unwrap();
    assert_eq!(stored, WASM_BYTES);
    let config = std::fs::read(puller.store().path(&image.config_digest).unwrap()).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["layerDigests"][0], layer);

    // Pushed again under another tag: the blobs are there already.
    let again = pusher(&[host], &dir)
        .push_wasm(WASM_BYTES.to_vec(), &format!("{host}/test/component:v2"))
        .await
        .unwrap();
    assert_eq!((again.uploaded, again.existing), (0, 2));
    assert_eq!(again.manifest_digest, pushed.manifest_digest);

    // Not Wasm at all.
    let not_wasm = dir.0.join("hello.txt");
    std::fs::write(&not_wasm, "hello").unwrap();
    let err = pusher(&[host], &dir)
        .push_wasm_file(&not_wasm, &reference)
        .await
        .unwrap_err();
    assert!(matches!(err, PushError::NotWasm { .. }), "{err:?}");
}

#[tokio::test]
async fn pushed_layout_pulls_back_as_a_container() {
    let registry = Registry::start("push-layout");
    let dir = TempDir::new("push-layout-store");
    let host = registry.host.as_str();
    let layout_dir = dir.0.join("layout");
    let (manifest_digest, layer) = write_layout(&layout_dir, None);

    let reference = format!("{host}/test/app:v1");
    let pushed = match pusher(&[host], &dir)
        .push_layout(&layout_dir, &reference)
        .await
    {
        Ok(pushed) => pushed,
        Err(err) => panic!("push: {err}\nregistry log:\n{}", registry.log()),
    };
    // Pushed as it is: the registry serves the layout's own manifest.
    assert_eq!(pushed.manifest_digest, manifest_digest);

    let puller = puller(&dir, &[host]);
    let image = puller.pull(&reference, |_| {}).await.unwrap();
    assert_eq!(image.kind, ArtifactKind::Container);
    assert_eq!(image.manifest_digest, manifest_digest);
    assert_eq!(image.config.as_ref().unwrap().entrypoint, ["/bin/hello"]);
    assert_eq!(
        image.layers,
        [(
            sha256_digest(&layer),
            "application/vnd.oci.image.layer.v1.tar+gzip".to_owned()
        )]
    );
    let stored = std::fs::read(puller.store().path(&sha256_digest(&layer)).unwrap()).unwrap();
    assert_eq!(stored, layer);

    // A layer file that no longer matches its digest is not uploaded.
    let corrupt_dir = dir.0.join("corrupt");
    let (_, layer) = write_layout(&corrupt_dir, None);
    let layer_path = corrupt_dir
        .join("blobs/sha256")
        .join(&sha256_digest(&layer)[7..]);
    let mut bytes = std::fs::read(&layer_path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&layer_path, bytes).unwrap();
    let err = pusher(&[host], &dir)
        .push_layout(&corrupt_dir, &format!("{host}/test/corrupt:v1"))
        .await
        .unwrap_err();
    assert!(matches!(err, PushError::CorruptBlob { .. }), "{err:?}");
    assert!(err.to_string().contains(&sha256_digest(&layer)), "{err}");

    // A plain-HTTP registry not listed as insecure: TLS is attempted, and
    // the error says how to push over HTTP.
    let err = pusher(&[], &dir)
        .push_layout(&layout_dir, &reference)
        .await
        .unwrap_err();
    assert!(matches!(err, PushError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("--insecure"), "{err}");
}

#[tokio::test]
async fn a_loaded_image_is_pulled_without_its_registry() {
    let dir = TempDir::new("load-offline");
    // Nothing listens on port 1 (nor on a released free port).
    let gone = format!("127.0.0.1:{}", unused_port());
    let reference = "127.0.0.1:1/app:1";
    let layout_dir = dir.0.join("layout");
    let (manifest_digest, layer) = write_layout(&layout_dir, Some(reference));
    let puller = puller(&dir, &["127.0.0.1:1", &gone]);

    let loaded = layout::load(puller.store(), &layout_dir, &LoadOptions::default())
        .await
        .unwrap();
    assert_eq!(loaded[0].references, [reference]);

    let events = std::sync::Mutex::new(Vec::new());
    let image = puller
        .pull(reference, |e| events.lock().unwrap().push(e))
        .await
        .unwrap();
    assert_eq!(image.reference, reference);
    assert_eq!(image.kind, ArtifactKind::Container);
    assert_eq!(image.manifest_digest, manifest_digest);
    assert_eq!(image.config.as_ref().unwrap().cmd, ["--loud"]);
    assert_eq!(image.layers[0].0, sha256_digest(&layer));
    let events = events.into_inner().unwrap();
    assert!(
        events.len() == 1 && events[0].cached && events[0].bytes == layer.len() as u64,
        "{events:?}"
    );

    // Another name for the same image goes to its registry, which is gone.
    let err = puller
        .pull(&format!("{gone}/app:1"), |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, PullError::Unreachable { .. }), "{err:?}");

    // With a layer missing from the store, the loaded image is not used.
    let layer_path = puller.store().path(&sha256_digest(&layer)).unwrap();
    std::fs::remove_file(layer_path).unwrap();
    let err = puller.pull(reference, |_| {}).await.unwrap_err();
    assert!(matches!(err, PullError::Unreachable { .. }), "{err:?}");
}
