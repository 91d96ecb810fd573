use std::io::Write as _;

use oci_client::manifest::OCI_IMAGE_MEDIA_TYPE;

use super::paths::{join_inside, safe_name};
use super::*;
use crate::oci::kind::ArtifactKind;
use crate::oci::store::sha256_digest;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "atoll-layout-{name}-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Stored blobs are read-only; their directory is not.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store(dir: &TempDir) -> BlobStore {
    BlobStore::open(dir.0.join("store")).unwrap()
}

fn amd64() -> LoadOptions {
    LoadOptions {
        tag: None,
        platform: Platform::new("linux", "amd64", None),
    }
}

/// An uncompressed layer tar holding one file.
fn layer_tar(file: &str, text: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, file, text.as_bytes()).unwrap();
    tar.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn image_config(diff_ids: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/app"], "Env": ["A=1"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// The files of an OCI image layout with one gzipped-layer image, named
/// by `ref_name` when given; also the manifest digest and layer bytes.
struct Layout {
    files: Vec<(String, Vec<u8>)>,
    manifest_digest: String,
    layer: Vec<u8>,
}

fn oci_layout(ref_name: Option<&str>) -> Layout {
    let tar = layer_tar("hello.txt", "hello");
    let layer = gzip(&tar);
    let config = image_config(&[&sha256_digest(&tar)]);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MEDIA_TYPE,
        "config": {"mediaType": OCI_CONFIG_MEDIA_TYPE, "digest": sha256_digest(&config), "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER_TAR_GZIP, "digest": sha256_digest(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let manifest_digest = sha256_digest(&manifest);
    let mut entry = serde_json::json!({
        "mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": manifest_digest, "size": manifest.len(),
    });
    if let Some(name) = ref_name {
        entry["annotations"] = serde_json::json!({ REF_NAME_ANNOTATION: name });
    }
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [entry]});
    let blob = |bytes: &[u8]| {
        let digest = sha256_digest(bytes);
        (
            format!("blobs/sha256/{}", &digest["sha256:".len()..]),
            bytes.to_vec(),
        )
    };
    Layout {
        files: vec![
            (
                OCI_LAYOUT.to_owned(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            (INDEX_JSON.to_owned(), serde_json::to_vec(&index).unwrap()),
            blob(&manifest),
            blob(&config),
            blob(&layer),
        ],
        manifest_digest,
        layer,
    }
}

fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// A tar of the files, gzipped when asked.
fn write_tar(path: &Path, files: &[(String, Vec<u8>)], gzipped: bool) {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes.as_slice())
            .unwrap();
    }
    let tar = tar.into_inner().unwrap();
    std::fs::write(path, if gzipped { gzip(&tar) } else { tar }).unwrap();
}

/// Appends an entry whose name is written raw into the header, which
/// `tar::Builder` would refuse (`..`, absolute paths).
fn append_raw(tar: &mut tar::Builder<Vec<u8>>, name: &str, bytes: &[u8]) {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append(&header, bytes).unwrap();
}

fn refs(store: &BlobStore) -> Vec<RefEntry> {
    RefIndex::new(store).list().unwrap()
}

#[tokio::test]
async fn loads_a_layout_directory_by_its_ref_name() {
    let dir = TempDir::new("dir");
    let layout = oci_layout(Some("registry.example:5000/team/app:1"));
    let source = dir.0.join("layout");
    write_dir(&source, &layout.files);
    let store = store(&dir);

    let loaded = load(&store, &source, &amd64()).await.unwrap();
    assert_eq!(loaded.len(), 1);
    let image = &loaded[0];
    assert_eq!(image.references, ["registry.example:5000/team/app:1"]);
    assert_eq!(image.manifest_digest, layout.manifest_digest);
    assert_eq!(image.kind, ArtifactKind::Container);
    assert_eq!(image.layers, 1);
    let layer = std::fs::read(store.path(&sha256_digest(&layout.layer)).unwrap()).unwrap();
    assert_eq!(layer, layout.layer);
    assert!(store.has(&layout.manifest_digest));
    assert_eq!(
        refs(&store),
        [RefEntry {
            reference: "registry.example:5000/team/app:1".into(),
            manifest_digest: layout.manifest_digest.clone(),
        }]
    );
    let entry = RefIndex::new(&store)
        .get("registry.example:5000/team/app:1")
        .await
        .unwrap();
    assert_eq!(entry.unwrap().manifest_digest, layout.manifest_digest);

    // Loading again is harmless; --tag adds the image under another name.
    let options = LoadOptions {
        tag: Some("app:edge".into()),
        ..amd64()
    };
    let again = load(&store, &source, &options).await.unwrap();
    assert_eq!(again[0].references, ["docker.io/library/app:edge"]);
    assert_eq!(refs(&store).len(), 2);
}

#[tokio::test]
async fn loads_layout_archives_plain_and_gzipped() {
    for gzipped in [false, true] {
        let dir = TempDir::new("archive");
        let layout = oci_layout(Some("example.com/app:2"));
        let archive = dir.0.join("image.tar");
        write_tar(&archive, &layout.files, gzipped);
        let store = store(&dir);
        let loaded = load(&store, &archive, &amd64()).await.unwrap();
        assert_eq!(loaded[0].manifest_digest, layout.manifest_digest);
        assert_eq!(loaded[0].references, ["example.com/app:2"]);
        assert_eq!(refs(&store).len(), 1, "gzipped: {gzipped}");
    }
}

#[tokio::test]
async fn a_tag_only_ref_name_needs_tag() {
    let dir = TempDir::new("unnamed");
    let layout = oci_layout(Some("latest"));
    let source = dir.0.join("layout");
    write_dir(&source, &layout.files);
    let store = store(&dir);
    let err = load(&store, &source, &amd64()).await.unwrap_err();
    assert!(matches!(err, LayoutError::Unnamed { .. }), "{err:?}");
    assert!(err.to_string().contains(&layout.manifest_digest), "{err}");
    assert!(err.to_string().contains("--tag"), "{err}");
    assert!(refs(&store).is_empty());

    let options = LoadOptions {
        tag: Some("localhost:5000/app:1".into()),
        ..amd64()
    };
    let loaded = load(&store, &source, &options).await.unwrap();
    assert_eq!(loaded[0].references, ["localhost:5000/app:1"]);
}

#[tokio::test]
async fn a_corrupt_blob_names_its_digest_and_records_nothing() {
    let dir = TempDir::new("corrupt");
    let mut layout = oci_layout(Some("example.com/app:1"));
    let layer_digest = sha256_digest(&layout.layer);
    let layer_name = format!("blobs/sha256/{}", &layer_digest["sha256:".len()..]);
    for (name, bytes) in &mut layout.files {
        if *name == layer_name {
            bytes[10] ^= 0xff;
        }
    }
    // As an archive, and as a directory.
    let archive = dir.0.join("image.tar");
    write_tar(&archive, &layout.files, false);
    let source = dir.0.join("layout");
    write_dir(&source, &layout.files);
    for path in [&archive, &source] {
        let store = store(&dir);
        let err = load(&store, path, &amd64()).await.unwrap_err();
        assert!(
            matches!(&err, LayoutError::DigestMismatch { digest, .. } if *digest == layer_digest),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&layer_digest), "{message}");
        assert!(message.contains("failed verification"), "{message}");
        assert!(refs(&store).is_empty());
        assert!(!store.has(&layer_digest));
    }
}

#[tokio::test]
async fn a_missing_blob_is_reported() {
    let dir = TempDir::new("missing");
    let layout = oci_layout(Some("example.com/app:1"));
    let layer_digest = sha256_digest(&layout.layer);
    let files: Vec<_> = (layout.files.iter())
        .filter(|(name, _)| !name.ends_with(&layer_digest["sha256:".len()..]))
        .cloned()
        .collect();
    let archive = dir.0.join("image.tar");
    write_tar(&archive, &files, false);
    let store = store(&dir);
    let err = load(&store, &archive, &amd64()).await.unwrap_err();
    assert!(matches!(err, LayoutError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains(&layer_digest), "{err}");
    assert!(refs(&store).is_empty());
}

/// A classic `docker save` archive: `manifest.json`, `<hex>.json` config,
/// `<id>/layer.tar` layers (the second a symlink to the first's, as docker
/// writes repeated layers).
fn docker_archive(layer_text: &str, repo_tags: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let tar = layer_tar("hello.txt", layer_text);
    let config = image_config(&[&sha256_digest(&tar), &sha256_digest(&tar)]);
    let config_hex = sha256_digest(&config)["sha256:".len()..].to_owned();
    let manifest = serde_json::json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": repo_tags,
        "Layers": ["aaaa/layer.tar", "./bbbb/layer.tar"],
    }]);
    let mut archive = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, name, bytes).unwrap();
    };
    add("aaaa/VERSION", b"1.0");
    add("aaaa/json", b"{}");
    add("aaaa/layer.tar", &tar);
    add(&format!("{config_hex}.json"), &config);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    add("repositories", b"{}");
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    archive
        .append_link(&mut header, "bbbb/layer.tar", "../aaaa/layer.tar")
        .unwrap();
    (archive.into_inner().unwrap(), tar)
}

#[tokio::test]
async fn loads_a_docker_save_archive_as_an_oci_manifest() {
    let dir = TempDir::new("docker");
    let (archive, tar) = docker_archive("hi", &["app:1", "example.com/app:latest"]);
    let path = dir.0.join("app.tar");
    std::fs::write(&path, archive).unwrap();
    let store = store(&dir);

    let loaded = load(&store, &path, &amd64()).await.unwrap();
    let image = &loaded[0];
    assert_eq!(
        image.references,
        ["docker.io/library/app:1", "example.com/app:latest"]
    );
    assert_eq!(image.kind, ArtifactKind::Container);
    assert_eq!(image.layers, 2);
    let manifest = std::fs::read(store.path(&image.manifest_digest).unwrap()).unwrap();
    assert_eq!(sha256_digest(&manifest), image.manifest_digest);
    let manifest: OciImageManifest = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest.config.media_type, OCI_CONFIG_MEDIA_TYPE);
    assert!(store.has(&manifest.config.digest));
    for layer in &manifest.layers {
        assert_eq!(layer.media_type, OCI_LAYER_TAR);
        assert_eq!(layer.digest, sha256_digest(&tar));
        assert_eq!(layer.size, tar.len() as i64);
    }
    assert_eq!(
        std::fs::read(store.path(&sha256_digest(&tar)).unwrap()).unwrap(),
        tar
    );
    let recorded: Vec<String> = refs(&store).into_iter().map(|e| e.reference).collect();
    assert_eq!(
        recorded,
        ["docker.io/library/app:1", "example.com/app:latest"]
    );
}

#[tokio::test]
async fn a_docker_layer_not_matching_its_diff_id_is_refused() {
    let dir = TempDir::new("docker-corrupt");
    let (archive, tar) = docker_archive("hi", &["app:1"]);
    // Same length, other content: the config's diff_ids no longer match.
    let mut archive = archive;
    let at = (archive.windows(tar.len()))
        .position(|w| w == tar.as_slice())
        .unwrap();
    let hello = at + 512; // the layer's own first entry's data
    assert_eq!(&archive[hello..hello + 2], b"hi");
    archive[hello..hello + 2].copy_from_slice(b"ho");
    let path = dir.0.join("app.tar");
    std::fs::write(&path, archive).unwrap();
    let store = store(&dir);
    let err = load(&store, &path, &amd64()).await.unwrap_err();
    assert!(matches!(err, LayoutError::DiffIdMismatch { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&sha256_digest(&tar)), "{message}");
    assert!(message.contains("aaaa/layer.tar"), "{message}");
    assert!(refs(&store).is_empty());
}

#[tokio::test]
async fn path_traversal_in_a_docker_archive_is_refused() {
    let dir = TempDir::new("traversal");
    let store = store(&dir);
    let config = image_config(&[]);
    let config_hex = sha256_digest(&config)["sha256:".len()..].to_owned();

    // An entry named outside the archive.
    let mut archive = tar::Builder::new(Vec::new());
    append_raw(&mut archive, "../../evil/layer.tar", b"boom");
    let manifest = serde_json::json!([{
        "Config": format!("{config_hex}.json"), "RepoTags": ["app:1"],
        "Layers": ["../../evil/layer.tar"],
    }]);
    append_raw(&mut archive, &format!("{config_hex}.json"), &config);
    append_raw(
        &mut archive,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    let path = dir.0.join("evil.tar");
    std::fs::write(&path, archive.into_inner().unwrap()).unwrap();
    let err = load(&store, &path, &amd64()).await.unwrap_err();
    assert!(
        matches!(&err, LayoutError::UnsafePath { name, .. } if name == "../../evil/layer.tar"),
        "{err:?}"
    );
    assert!(err.to_string().contains("outside the archive"), "{err}");

    // manifest.json naming a path outside the archive.
    let mut archive = tar::Builder::new(Vec::new());
    append_raw(&mut archive, &format!("{config_hex}.json"), &config);
    let manifest = serde_json::json!([{
        "Config": format!("{config_hex}.json"), "RepoTags": ["app:1"],
        "Layers": ["/etc/passwd"],
    }]);
    append_raw(
        &mut archive,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    std::fs::write(&path, archive.into_inner().unwrap()).unwrap();
    let err = load(&store, &path, &amd64()).await.unwrap_err();
    assert!(matches!(err, LayoutError::UnsafePath { .. }), "{err:?}");

    // A symlink pointing out of the archive.
    let mut archive = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    archive
        .append_link(&mut header, "aaaa/layer.tar", "../../../etc/shadow")
        .unwrap();
    std::fs::write(&path, archive.into_inner().unwrap()).unwrap();
    let err = load(&store, &path, &amd64()).await.unwrap_err();
    assert!(matches!(err, LayoutError::UnsafePath { .. }), "{err:?}");
    assert!(refs(&store).is_empty());
}

#[tokio::test]
async fn an_index_resolves_to_the_platform_manifest() {
    let dir = TempDir::new("index");
    let layout = oci_layout(None);
    let inner_size = layout.files[2].1.len();
    let index_blob = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": layout.manifest_digest,
            "size": inner_size, "platform": {"os": "linux", "architecture": "amd64"},
        }],
    }))
    .unwrap();
    let index_digest = sha256_digest(&index_blob);
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest,
        "size": index_blob.len(),
        "annotations": {CONTAINERD_NAME_ANNOTATION: "docker.io/library/app:3", REF_NAME_ANNOTATION: "3"},
    }]});
    let mut files = layout.files.clone();
    files[1].1 = serde_json::to_vec(&top).unwrap();
    files.push((
        format!("blobs/sha256/{}", &index_digest["sha256:".len()..]),
        index_blob,
    ));
    let source = dir.0.join("layout");
    write_dir(&source, &files);
    let store = store(&dir);
    let loaded = load(&store, &source, &amd64()).await.unwrap();
    assert_eq!(loaded[0].manifest_digest, layout.manifest_digest);
    assert_eq!(loaded[0].references, ["docker.io/library/app:3"]);

    let arm = LoadOptions {
        tag: None,
        platform: Platform::new("linux", "arm64", None),
    };
    let err = load(&store, &source, &arm).await.unwrap_err();
    assert!(matches!(err, LayoutError::Platform { .. }), "{err:?}");
}

#[test]
fn safe_names() {
    assert_eq!(safe_name("./a//b/").as_deref(), Some("a/b"));
    assert_eq!(safe_name("manifest.json").as_deref(), Some("manifest.json"));
    assert_eq!(safe_name("a/../b"), None);
    assert_eq!(safe_name("/etc/passwd"), None);
    assert_eq!(join_inside("a/b", "../c").as_deref(), Some("a/c"));
    assert_eq!(join_inside("a", "../../c"), None);
    assert_eq!(join_inside("a", "/c"), None);
}

#[tokio::test]
async fn reference_index_round_trip() {
    let dir = TempDir::new("refs");
    let store = store(&dir);
    let index = RefIndex::new(&store);
    assert!(index.list().unwrap().is_empty());
    let name = normalize_reference("app").unwrap();
    assert_eq!(name, "docker.io/library/app:latest");
    assert!(normalize_reference("UPPER/Case").is_err());
    let entry = RefEntry {
        reference: name.clone(),
        manifest_digest: sha256_digest(b"m"),
    };
    index.set(&entry).unwrap();
    assert_eq!(index.get(&name).await.unwrap(), Some(entry.clone()));
    assert_eq!(index.get("docker.io/library/other:1").await.unwrap(), None);
    let replaced = RefEntry {
        manifest_digest: sha256_digest(b"n"),
        ..entry
    };
    index.set(&replaced).unwrap();
    assert_eq!(index.list().unwrap(), [replaced]);
    // No temp files left behind.
    assert_eq!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0
    );
}

#[tokio::test]
async fn a_file_that_is_no_archive_says_so() {
    let dir = TempDir::new("no-archive");
    let path = dir.0.join("hello.wasm");
    std::fs::write(&path, b"\0asm\x0d\0\x01\0hello").unwrap();
    let store = store(&dir);
    let err = load(&store, &path, &amd64()).await.unwrap_err();
    assert!(matches!(err, LayoutError::NotAnArchive { .. }), "{err:?}");
    // An empty archive is a tar, but no image.
    let empty = dir.0.join("empty.tar");
    write_tar(&empty, &[], false);
    let err = load(&store, &empty, &amd64()).await.unwrap_err();
    assert!(matches!(err, LayoutError::NotAnImage { .. }), "{err:?}");
}
