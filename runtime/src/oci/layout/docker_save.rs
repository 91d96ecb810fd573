//! Images from `docker save`. A classic archive (`manifest.json` naming
//! `<id>.json` configs and `<id>/layer.tar` files, no digest anywhere but
//! the config's `rootfs.diff_ids`) becomes OCI image manifests with plain
//! tar layers: each layer is hashed in the first pass, checked against its
//! diff id, and copied in a second. Newer `docker save` (25+) writes an OCI
//! layout instead, whose index may name images by tag only; its
//! `manifest.json` still gives the full names, which [`name_by_repo_tags`]
//! takes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciImageManifest};
use serde::Deserialize;
use tokio::runtime::Handle;

use super::archive::{GZIP_MAGIC, Hashed, Scan, copy_files};
use super::error::LayoutError;
use super::index::{LayoutImage, name_images, normalize, push_unique};
use super::paths::safe_name;
use super::{
    DOCKER_MANIFEST, LoadOptions, MAX_METADATA_BYTES, OCI_CONFIG_MEDIA_TYPE, OCI_LAYER_TAR,
    OCI_LAYER_TAR_GZIP,
};
use crate::oci::store::{BlobStore, sha256_digest, sha256_hex};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

fn parse_docker_manifest(
    source: &Path,
    bytes: &[u8],
) -> Result<Vec<DockerManifestEntry>, LayoutError> {
    serde_json::from_slice(bytes).map_err(|err| LayoutError::bad_file(source, DOCKER_MANIFEST, err))
}

/// Names the still unnamed images of an archived layout by the
/// `RepoTags` of the `manifest.json` entry sharing their config.
pub(super) fn name_by_repo_tags(
    source: &Path,
    manifest_json: &[u8],
    images: &mut [LayoutImage],
) -> Result<(), LayoutError> {
    let entries = parse_docker_manifest(source, manifest_json)?;
    for image in images.iter_mut().filter(|image| image.names.is_empty()) {
        let config_hex = sha256_hex(&image.manifest.config.digest).unwrap_or_default();
        for entry in &entries {
            let config = safe_name(&entry.config)
                .ok_or_else(|| LayoutError::unsafe_path(source, &entry.config))?;
            if config == format!("blobs/sha256/{config_hex}") {
                for tag in entry.repo_tags.iter().flatten() {
                    push_unique(&mut image.names, normalize(source, tag)?);
                }
            }
        }
    }
    Ok(())
}

/// The images of a classic `docker save` archive, named, with their
/// layers (second pass) and configs put in the store.
pub(super) fn load_classic(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    options: &LoadOptions,
    scan: &Scan,
    manifest_json: &[u8],
) -> Result<Vec<LayoutImage>, LayoutError> {
    let entries = parse_docker_manifest(source, manifest_json)?;
    let mut images = Vec::new();
    let mut needed: BTreeMap<String, Hashed> = BTreeMap::new();
    let mut configs: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in &entries {
        let classic = docker_image(handle, store, source, scan, entry)?;
        images.push(classic.image);
        configs.push((classic.config_digest, classic.config));
        needed.extend(classic.files);
    }
    let images = name_images(source, images, options)?;

    if !needed.is_empty() {
        copy_files(handle, store, source, &needed)?;
    }
    for (digest, bytes) in &configs {
        handle
            .block_on(store.put_bytes(digest, bytes))
            .map_err(|err| LayoutError::store(source, err))?;
    }
    Ok(images)
}

/// One image of a classic archive, not yet stored.
struct ClassicImage {
    /// An OCI manifest with plain tar layers.
    image: LayoutImage,
    config_digest: String,
    config: Vec<u8>,
    /// The archive files its layers are to be copied from, by name.
    files: BTreeMap<String, Hashed>,
}

/// Builds one image of a classic archive from its `manifest.json` entry.
fn docker_image(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    scan: &Scan,
    entry: &DockerManifestEntry,
) -> Result<ClassicImage, LayoutError> {
    let (config_name, config) = read_config(handle, store, source, scan, entry)?;
    let config_digest = sha256_digest(&config);
    check_config_name(source, &config_name, &config_digest)?;
    let diff_ids = diff_ids(source, &config_name, &config, entry)?;

    let mut files = BTreeMap::new();
    let mut layers = Vec::new();
    for (index, layer) in entry.layers.iter().enumerate() {
        let (name, hashed) = find_layer(store, source, scan, layer, &mut files)?;
        if let Some(expected) = diff_ids.get(index)
            && !hashed.gzip
            && *expected != hashed.digest
        {
            return Err(LayoutError::DiffIdMismatch {
                path: source.to_owned(),
                file: name,
                actual: hashed.digest,
                expected: expected.clone(),
            });
        }
        let media_type = if hashed.gzip {
            OCI_LAYER_TAR_GZIP
        } else {
            OCI_LAYER_TAR
        };
        layers.push(serde_json::json!({
            "mediaType": media_type, "digest": hashed.digest, "size": hashed.size,
        }));
    }
    let image = oci_image(source, entry, &config_digest, config.len(), layers)?;
    Ok(ClassicImage {
        image,
        config_digest,
        config,
        files,
    })
}

/// The config an entry names, by its name in the archive (links
/// followed), from the store or the first pass's small files.
fn read_config(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    scan: &Scan,
    entry: &DockerManifestEntry,
) -> Result<(String, Vec<u8>), LayoutError> {
    let config_name =
        safe_name(&entry.config).ok_or_else(|| LayoutError::unsafe_path(source, &entry.config))?;
    let config_name = scan.resolve(source, &config_name)?;
    let config = if let Some(digest) = scan.blobs.get(&config_name) {
        handle
            .block_on(store.read(digest, MAX_METADATA_BYTES))
            .map_err(|err| LayoutError::store(source, err))?
    } else if let Some(bytes) = scan.small.get(&config_name) {
        bytes.clone()
    } else {
        return Err(LayoutError::missing(source, config_name));
    };
    Ok((config_name, config))
}

/// Classic archives name the config `<hex of its digest>.json`: a config
/// so named must hash to it.
fn check_config_name(
    source: &Path,
    config_name: &str,
    config_digest: &str,
) -> Result<(), LayoutError> {
    let stem = config_name.rsplit('/').next().unwrap_or_default();
    if let Some(hex) = stem.strip_suffix(".json")
        && sha256_hex(&format!("sha256:{hex}")).is_ok()
        && config_digest != format!("sha256:{hex}")
    {
        return Err(LayoutError::DigestMismatch {
            path: source.to_owned(),
            digest: format!("sha256:{hex}"),
            actual: config_digest.to_owned(),
        });
    }
    Ok(())
}

/// The config's `rootfs.diff_ids`, one per layer of the entry (or none).
fn diff_ids(
    source: &Path,
    config_name: &str,
    config: &[u8],
    entry: &DockerManifestEntry,
) -> Result<Vec<String>, LayoutError> {
    let diff_ids = (serde_json::from_slice::<DockerConfig>(config))
        .map_err(|err| LayoutError::bad_file(source, config_name, err))?
        .rootfs
        .map(|rootfs| rootfs.diff_ids)
        .unwrap_or_default();
    if !diff_ids.is_empty() && diff_ids.len() != entry.layers.len() {
        return Err(LayoutError::bad_file(
            source,
            config_name,
            format!(
                "it lists {} layers (rootfs.diff_ids), manifest.json {}",
                diff_ids.len(),
                entry.layers.len()
            ),
        ));
    }
    Ok(diff_ids)
}

/// A layer named in `manifest.json`, by its name in the archive (links
/// followed): a blob already stored, or a file hashed in the first pass
/// (added to `files`, to be copied in the second).
fn find_layer(
    store: &BlobStore,
    source: &Path,
    scan: &Scan,
    layer: &str,
    files: &mut BTreeMap<String, Hashed>,
) -> Result<(String, Hashed), LayoutError> {
    let name = safe_name(layer).ok_or_else(|| LayoutError::unsafe_path(source, layer))?;
    let name = scan.resolve(source, &name)?;
    let hashed = if let Some(digest) = scan.blobs.get(&name) {
        let path = store
            .path(digest)
            .map_err(|err| LayoutError::store(source, err))?;
        let mut magic = [0u8; 2];
        let mut file = File::open(&path).map_err(LayoutError::io(&path))?;
        let size = file.metadata().map_err(LayoutError::io(&path))?.len();
        let gzip = file.read_exact(&mut magic).is_ok() && magic == GZIP_MAGIC;
        Hashed {
            digest: digest.clone(),
            size,
            gzip,
        }
    } else if let Some(hashed) = scan.files.get(&name) {
        files.insert(name.clone(), hashed.clone());
        hashed.clone()
    } else {
        return Err(LayoutError::missing(source, name));
    };
    Ok((name, hashed))
}

/// The OCI image manifest of a classic image, named by its `RepoTags`.
fn oci_image(
    source: &Path,
    entry: &DockerManifestEntry,
    config_digest: &str,
    config_size: usize,
    layers: Vec<serde_json::Value>,
) -> Result<LayoutImage, LayoutError> {
    let manifest_json = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MEDIA_TYPE,
        "config": {
            "mediaType": OCI_CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size,
        },
        "layers": layers,
    });
    let manifest_bytes = serde_json::to_vec(&manifest_json)
        .map_err(|err| LayoutError::bad_file(source, DOCKER_MANIFEST, err))?;
    let manifest: OciImageManifest = serde_json::from_value(manifest_json)
        .map_err(|err| LayoutError::bad_file(source, DOCKER_MANIFEST, err))?;
    let mut names = Vec::new();
    for tag in entry.repo_tags.iter().flatten() {
        push_unique(&mut names, normalize(source, tag)?);
    }
    Ok(LayoutImage {
        names,
        manifest_digest: sha256_digest(&manifest_bytes),
        manifest_media_type: OCI_IMAGE_MEDIA_TYPE.to_owned(),
        manifest_bytes,
        manifest,
    })
}
