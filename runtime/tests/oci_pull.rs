//! End-to-end tests of the OCI puller against a real registry (Debian's
//! `docker-registry`, started per test on a free port): images are pushed
//! with `oci-client`, then pulled over plain HTTP with [`Puller`].

#[path = "oci_pull/registry.rs"]
mod registry;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use atoll_runtime::install_crypto_provider;
use atoll_runtime::oci::kind::ArtifactKind;
use atoll_runtime::oci::platform::Platform;
use atoll_runtime::oci::pull::{PullConfig, PullError, PullProgress, PulledImage, Puller};
use atoll_runtime::oci::store::sha256_digest;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciImageIndex};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use registry::{Registry, TempDir, unused_port};

const WASM_BYTES: &[u8] = b"\0asm\x0d\0\x01\0not really a component";

/// A one-layer container image: `/hello.txt` in a gzipped tar, and a config
/// with an entrypoint.
fn container_image(text: &str) -> (Vec<ImageLayer>, Config) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "hello.txt", text.as_bytes())
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let layer = ImageLayer::oci_v1_gzip(gz.finish().unwrap(), None);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/hello"], "Cmd": ["--loud"], "Env": ["GREETING=hi"],
                   "WorkingDir": "/srv", "User": "1000"},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&tar)]},
    });
    let config = Config::oci_v1(serde_json::to_vec(&config).unwrap(), None);
    (vec![layer], config)
}

fn wasm_artifact() -> (Vec<ImageLayer>, Config) {
    let layer = ImageLayer::new(WASM_BYTES.to_vec(), "application/wasm".into(), None);
    let config = Config::new(
        br#"{"architecture":"wasm","os":"wasip2"}"#.to_vec(),
        "application/vnd.wasm.config.v0+json".into(),
        None,
    );
    (vec![layer], config)
}

fn push_client() -> Client {
    install_crypto_provider();
    Client::try_from(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    })
    .unwrap()
}

/// Pushes an image and returns its manifest digest and size.
async fn push(
    registry: &Registry,
    name: &str,
    (layers, config): (Vec<ImageLayer>, Config),
) -> (String, usize) {
    let client = push_client();
    let reference: Reference = format!("{}/{name}", registry.host).parse().unwrap();
    let auth = RegistryAuth::Anonymous;
    if let Err(err) = client.push(&reference, &layers, config, &auth, None).await {
        panic!("push {name}: {err}\nregistry log:\n{}", registry.log());
    }
    let (bytes, digest) = client
        .pull_manifest_raw(&reference, &auth, &[OCI_IMAGE_MEDIA_TYPE])
        .await
        .unwrap();
    (digest, bytes.len())
}

fn puller(store: &TempDir, insecure: &[&str], timeout: Duration) -> Puller {
    let mut config = PullConfig::new(store.0.join("store"));
    config.insecure_registries = insecure.iter().map(|s| s.to_string()).collect();
    // No credentials from the developer's own docker config.
    config.docker_config = Some(store.0.join("no-docker-config.json"));
    config.timeout = timeout;
    Puller::new(config).unwrap()
}

/// Pulls and returns the image with every progress event.
async fn pull(
    puller: &Puller,
    reference: &str,
) -> Result<(PulledImage, Vec<PullProgress>), PullError> {
    let events = Mutex::new(Vec::new());
    let image = puller
        .pull(reference, |event| events.lock().unwrap().push(event))
        .await?;
    Ok((image, events.into_inner().unwrap()))
}

#[tokio::test]
async fn pulls_containers_and_wasm_once() {
    let registry = Registry::start("pull");
    let (container_digest, _) = push(&registry, "test/app:v1", container_image("hello")).await;
    push(&registry, "test/component:v1", wasm_artifact()).await;
    let dir = TempDir::new("pull-store");
    let puller = puller(&dir, &[&registry.host], Duration::from_secs(10));
    let store = puller.store();

    let app = format!("{}/test/app:v1", registry.host);
    let (image, events) = pull(&puller, &app).await.unwrap();
    assert_eq!(image.kind, ArtifactKind::Container);
    assert_eq!(image.manifest_digest, container_digest);
    let config = image.config.as_ref().unwrap();
    assert_eq!(config.entrypoint, ["/bin/hello"]);
    assert_eq!(config.cmd, ["--loud"]);
    assert_eq!(config.env, ["GREETING=hi"]);
    assert_eq!(
        (config.working_dir.as_deref(), config.user.as_deref()),
        (Some("/srv"), Some("1000"))
    );
    assert_eq!(image.layers.len(), 1);
    assert_eq!(
        image.layers[0].1,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    // Everything the image needs is in the store, under its true digest.
    for digest in [
        &image.layers[0].0,
        &image.config_digest,
        &image.manifest_digest,
    ] {
        let bytes = std::fs::read(store.path(digest).unwrap()).unwrap();
        assert_eq!(&sha256_digest(&bytes), digest);
    }
    let last = events.last().unwrap();
    assert!(
        !last.cached && last.bytes == last.total && last.total > 0,
        "{events:?}"
    );
    assert!(
        events.iter().all(|e| e.layer == 0 && e.layers == 1),
        "{events:?}"
    );

    // Pulled again: the tag is resolved again, but no layer is downloaded.
    let (again, events) = pull(&puller, &app).await.unwrap();
    assert_eq!(again, image);
    assert!(
        !events.is_empty() && events.iter().all(|e| e.cached),
        "{events:?}"
    );

    let component = format!("{}/test/component:v1", registry.host);
    let (wasm, _) = pull(&puller, &component).await.unwrap();
    let wasm_layer = sha256_digest(WASM_BYTES);
    assert_eq!(
        wasm.kind,
        ArtifactKind::Wasm {
            layer_digest: wasm_layer.clone()
        }
    );
    assert_eq!(wasm.config, None);
    assert_eq!(
        std::fs::read(store.path(&wasm_layer).unwrap()).unwrap(),
        WASM_BYTES
    );
}

#[tokio::test]
async fn errors_name_the_image_and_the_problem() {
    let registry = Registry::start("errors");
    push(&registry, "test/app:v1", container_image("hi")).await;
    let dir = TempDir::new("errors-store");
    let host = registry.host.as_str();

    // An image the registry does not have.
    let puller = puller(&dir, &[host], Duration::from_secs(10));
    for missing in [
        format!("{host}/test/app:nope"),
        format!("{host}/test/nothing:v1"),
    ] {
        let err = pull(&puller, &missing).await.unwrap_err();
        assert!(matches!(err, PullError::NotFound { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("image {missing} not found in registry {host}")
        );
    }

    let err = pull(&puller, "UPPER/Case").await.unwrap_err();
    assert!(matches!(err, PullError::BadReference { .. }), "{err:?}");

    // Nothing listens on the port: refused at once, well within 5 s.
    let down = format!("127.0.0.1:{}", unused_port());
    let puller_down = self::puller(&dir, &[&down], Duration::from_secs(3));
    let started = Instant::now();
    let err = pull(&puller_down, &format!("{down}/test/app:v1"))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, PullError::Unreachable { registry, .. } if *registry == down),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("cannot reach registry {down}")),
        "{err}"
    );

    // A server that accepts connections and never answers: cut off by the
    // timeout rather than hanging.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_host = silent.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().take(8).collect();
        std::thread::sleep(Duration::from_secs(30));
        drop(held);
    });
    let puller_silent = self::puller(&dir, &[&silent_host], Duration::from_secs(1));
    let started = Instant::now();
    let err = pull(&puller_silent, &format!("{silent_host}/test/app:v1"))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, PullError::Unreachable { .. }), "{err:?}");

    // A plain-HTTP registry not listed as insecure: TLS is attempted.
    let strict = self::puller(&dir, &[], Duration::from_secs(5));
    let err = pull(&strict, &format!("{host}/test/app:v1"))
        .await
        .unwrap_err();
    assert!(matches!(err, PullError::Tls { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("TLS") && message.contains("--insecure-registry"),
        "{message}"
    );
}

#[tokio::test]
async fn index_resolves_the_host_platform() {
    let registry = Registry::start("index");
    let (digest, size) = push(&registry, "test/app:single", container_image("multi")).await;
    let host = Platform::host();
    let index: OciImageIndex = serde_json::from_value(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": digest, "size": size,
             "platform": {"os": host.os, "architecture": host.architecture, "variant": host.variant}},
            {"mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": digest, "size": size,
             "platform": {"os": "linux", "architecture": "ppc64le"}},
        ],
    }))
    .unwrap();
    let reference: Reference = format!("{}/test/app:multi", registry.host).parse().unwrap();
    push_client()
        .push_manifest_list(&reference, &RegistryAuth::Anonymous, index)
        .await
        .unwrap();

    let dir = TempDir::new("index-store");
    let multi = format!("{}/test/app:multi", registry.host);
    let puller = puller(&dir, &[&registry.host], Duration::from_secs(10));
    let (image, _) = pull(&puller, &multi).await.unwrap();
    assert_eq!(image.manifest_digest, digest);
    assert_eq!(image.kind, ArtifactKind::Container);

    // Another host (its own store: a host remembers what its tags
    // resolved to for its platform).
    let other = TempDir::new("index-store-riscv");
    let riscv = Platform::new("linux", "riscv64", None);
    let puller =
        self::puller(&other, &[&registry.host], Duration::from_secs(10)).with_platform(riscv);
    let err = pull(&puller, &multi).await.unwrap_err();
    assert!(matches!(err, PullError::Platform(_)), "{err:?}");
    let offered = format!("linux/{}, linux/ppc64le", host.architecture);
    assert!(
        err.to_string().contains(&format!(
            "has no linux/riscv64 variant; it offers {offered}"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_tampered_blob_is_refused_and_not_stored() {
    let registry = Registry::start("tamper");
    let (layers, config) = container_image("the original content");
    let layer_digest = layers[0].sha256_digest();
    push(&registry, "test/app:v1", (layers, config)).await;
    // Same length, other bytes: only the digest check can tell.
    let data = registry.blob_data(&layer_digest);
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();

    let dir = TempDir::new("tamper-store");
    let puller = puller(&dir, &[&registry.host], Duration::from_secs(10));
    let err = pull(&puller, &format!("{}/test/app:v1", registry.host))
        .await
        .unwrap_err();
    assert!(matches!(err, PullError::Digest { .. }), "{err:?}");
    assert!(err.to_string().contains(&layer_digest), "{err}");
    assert!(!puller.store().has(&layer_digest));
    let temps = std::fs::read_dir(dir.0.join("store/tmp")).unwrap().count();
    assert_eq!(temps, 0);
}

#[tokio::test]
async fn an_image_pulled_before_runs_while_its_registry_is_out_of_reach() {
    let registry = Registry::start("offline");
    let dir = TempDir::new("offline-store");
    let puller = puller(&dir, &[&registry.host], Duration::from_secs(5));
    let latest = format!("{}/test/app:latest", registry.host);
    push(&registry, "test/app:latest", container_image("one")).await;
    pull(&puller, &latest).await.unwrap();
    // While the registry answers, `latest` is resolved again.
    let (moved, _) = push(&registry, "test/app:latest", container_image("two")).await;
    let (image, _) = pull(&puller, &latest).await.unwrap();
    assert_eq!(image.manifest_digest, moved);
    let by_digest = format!("{}/test/app@{moved}", registry.host);
    pull(&puller, &by_digest).await.unwrap();
    let never = format!("{}/test/other:latest", registry.host);
    drop(registry);

    // Out of reach: what the last pull of each reference brought.
    let (offline, events) = pull(&puller, &latest).await.unwrap();
    assert_eq!(offline, image);
    assert!(events.iter().all(|e| e.cached), "{events:?}");
    let (pinned, _) = pull(&puller, &by_digest).await.unwrap();
    assert_eq!(pinned.manifest_digest, moved);
    match pull(&puller, &never).await {
        Err(PullError::Unreachable { .. }) => {}
        other => panic!("a reference never pulled needs its registry: {other:?}"),
    }
}
