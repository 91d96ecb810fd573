//! The loader proper, run on a blocking thread by [`load`](super::load):
//! the tar reader is synchronous, and store writes are driven with
//! `handle.block_on`. It takes the images of a directory or an archive,
//! stores their manifests, checks every image complete and runnable, and
//! only then records references, so a failed load leaves none behind.

use std::io;
use std::path::Path;

use tokio::runtime::Handle;

use super::archive::{Scan, scan_archive};
use super::blobs::descriptor_size;
use super::directory::load_directory;
use super::docker_save::{load_classic, name_by_repo_tags};
use super::error::LayoutError;
use super::index::{LayoutImage, check_oci_layout, name_images, parse_index, resolve_index};
use super::refs::{RefEntry, RefIndex};
use super::{
    DOCKER_MANIFEST, INDEX_JSON, LoadOptions, LoadedImage, MAX_METADATA_BYTES, OCI_LAYOUT,
};
use crate::oci::kind::{ArtifactKind, ImageConfig, classify};
use crate::oci::store::{BlobStore, StoreError};

/// Imports `source` into `store` and records the references; see the
/// module docs of [`layout`](super).
pub(super) fn load_blocking(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    options: &LoadOptions,
) -> Result<Vec<LoadedImage>, LayoutError> {
    let meta = std::fs::metadata(source).map_err(LayoutError::io(source))?;
    let images = if meta.is_dir() {
        load_directory(handle, store, source, options)?
    } else {
        load_archive(handle, store, source, options)?
    };

    let mut loaded = Vec::new();
    for image in &images {
        handle
            .block_on(store.put_bytes(&image.manifest_digest, &image.manifest_bytes))
            .map_err(|err| LayoutError::store(source, err))?;
        loaded.push(check_complete(handle, store, source, image)?);
    }
    // Only now, with every image complete, do references change.
    let index = RefIndex::new(store);
    for image in &loaded {
        for reference in &image.references {
            let entry = RefEntry {
                reference: reference.clone(),
                manifest_digest: image.manifest_digest.clone(),
            };
            index.set(&entry).map_err(LayoutError::io(index.dir()))?;
        }
    }
    Ok(loaded)
}

/// Checks that an image's blobs are all stored at their manifest sizes and
/// that it can run (its kind, its config).
fn check_complete(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    image: &LayoutImage,
) -> Result<LoadedImage, LayoutError> {
    let manifest = &image.manifest;
    for desc in std::iter::once(&manifest.config).chain(&manifest.layers) {
        let expected = descriptor_size(source, &desc.digest, desc.size)?;
        let path = store
            .path(&desc.digest)
            .map_err(|err| LayoutError::store(source, err))?;
        let actual = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(LayoutError::missing(
                    source,
                    format!("blob {} (of image {})", desc.digest, image.manifest_digest),
                ));
            }
            Err(err) => return Err(LayoutError::io(&path)(err)),
        };
        if actual != expected {
            return Err(LayoutError::SizeMismatch {
                path: source.to_owned(),
                digest: desc.digest.clone(),
                expected,
                actual,
            });
        }
    }
    let kind_error = |source_err| LayoutError::Kind {
        path: source.to_owned(),
        digest: image.manifest_digest.clone(),
        source: source_err,
    };
    let kind = classify(manifest).map_err(kind_error)?;
    if kind == ArtifactKind::Container {
        let config = handle
            .block_on(store.read(&manifest.config.digest, MAX_METADATA_BYTES))
            .map_err(|err| LayoutError::store(source, err))?;
        ImageConfig::parse(&config).map_err(kind_error)?;
    }
    Ok(LoadedImage {
        references: image.names.clone(),
        manifest_digest: image.manifest_digest.clone(),
        kind,
        layers: manifest.layers.len(),
        size: image.size(),
    })
}

/// The images of an archive: an OCI layout (perhaps written by `docker
/// save` 25+) or a classic `docker save` archive.
fn load_archive(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    options: &LoadOptions,
) -> Result<Vec<LayoutImage>, LayoutError> {
    let scan = scan_archive(handle, store, source)?;
    if let Some(index) = scan.small.get(INDEX_JSON) {
        return archived_layout(handle, store, source, options, &scan, index);
    }
    let Some(bytes) = scan.small.get(DOCKER_MANIFEST) else {
        return Err(LayoutError::NotAnImage {
            path: source.to_owned(),
        });
    };
    load_classic(handle, store, source, options, &scan, bytes)
}

/// The images of an OCI layout inside an archive, resolved from the blobs
/// the first pass stored.
fn archived_layout(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    options: &LoadOptions,
    scan: &Scan,
    index: &[u8],
) -> Result<Vec<LayoutImage>, LayoutError> {
    let read_stored = |digest: &str| -> Result<Vec<u8>, LayoutError> {
        match handle.block_on(store.read(digest, MAX_METADATA_BYTES)) {
            Err(StoreError::Missing { .. }) => {
                Err(LayoutError::missing(source, format!("blob {digest}")))
            }
            other => other.map_err(|err| LayoutError::store(source, err)),
        }
    };
    if let Some(bytes) = scan.small.get(OCI_LAYOUT) {
        check_oci_layout(source, bytes)?;
    }
    let index = parse_index(source, index)?;
    let mut images = resolve_index(source, &index, &options.platform, &mut |d| read_stored(d))?;
    // `docker save` (25+) writes a layout whose index may name images
    // by tag only; its manifest.json has the full names.
    if let Some(bytes) = scan.small.get(DOCKER_MANIFEST) {
        name_by_repo_tags(source, bytes, &mut images)?;
    }
    // The blobs came with the first pass; what is missing stays missing.
    name_images(source, images, options)
}
