//! What an image layout's metadata says: `oci-layout` and `index.json`
//! parsed, each index entry resolved to one image manifest (through a
//! nested image index for the chosen platform, as a pull would), and the
//! names images go by. The same code serves a layout directory and a
//! layout inside an archive: only how a blob is read differs.

use std::collections::BTreeMap;
use std::path::Path;

use oci_client::manifest::{
    ImageIndexEntry, OCI_IMAGE_MEDIA_TYPE, OciImageIndex, OciImageManifest, OciManifest,
};
use serde::Deserialize;

use super::error::LayoutError;
use super::refs::normalize_reference;
use super::{CONTAINERD_NAME_ANNOTATION, INDEX_JSON, LoadOptions, OCI_LAYOUT, REF_NAME_ANNOTATION};
use crate::oci::platform::{Platform, select};

/// One image manifest found in a layout or archive.
#[derive(Clone, Debug)]
pub struct LayoutImage {
    /// References naming the image, normalized
    /// (`docker.io/library/app:1`); empty when the source names none.
    pub names: Vec<String>,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    /// The manifest exactly as stored: it hashes to `manifest_digest`.
    pub manifest_bytes: Vec<u8>,
    pub manifest: OciImageManifest,
}

impl LayoutImage {
    /// Bytes of the config and layers, as the manifest gives them.
    pub fn size(&self) -> u64 {
        let sizes = std::iter::once(&self.manifest.config).chain(&self.manifest.layers);
        sizes
            .map(|desc| u64::try_from(desc.size).unwrap_or(0))
            .sum()
    }
}

pub(super) fn check_oci_layout(source: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    #[derive(Deserialize)]
    struct Layout {
        #[serde(rename = "imageLayoutVersion")]
        version: String,
    }
    let layout: Layout = serde_json::from_slice(bytes)
        .map_err(|err| LayoutError::bad_file(source, OCI_LAYOUT, err))?;
    if !layout.version.starts_with("1.") {
        return Err(LayoutError::Unsupported {
            path: source.to_owned(),
            message: format!("image layout version {} (1.x is supported)", layout.version),
        });
    }
    Ok(())
}

pub(super) fn parse_index(source: &Path, bytes: &[u8]) -> Result<OciImageIndex, LayoutError> {
    serde_json::from_slice(bytes).map_err(|err| LayoutError::bad_file(source, INDEX_JSON, err))
}

pub(super) fn parse_manifest(
    source: &Path,
    digest: &str,
    bytes: &[u8],
) -> Result<OciManifest, LayoutError> {
    serde_json::from_slice(bytes)
        .map_err(|err| LayoutError::bad_file(source, format!("manifest {digest}"), err))
}

/// Resolves every entry of an index to an image manifest, reading blobs
/// with `read` (which verifies them).
pub(super) fn resolve_index(
    source: &Path,
    index: &OciImageIndex,
    platform: &Platform,
    read: &mut dyn FnMut(&str) -> Result<Vec<u8>, LayoutError>,
) -> Result<Vec<LayoutImage>, LayoutError> {
    let mut images: Vec<LayoutImage> = Vec::new();
    for entry in &index.manifests {
        let names = entry_names(source, entry.annotations.as_ref())?;
        let image = resolve_entry(source, entry, platform, read)?;
        match images
            .iter_mut()
            .find(|known| known.manifest_digest == image.manifest_digest)
        {
            Some(known) => names
                .into_iter()
                .for_each(|n| push_unique(&mut known.names, n)),
            None => images.push(LayoutImage { names, ..image }),
        }
    }
    Ok(images)
}

/// The image manifest one index entry leads to, still unnamed.
fn resolve_entry(
    source: &Path,
    entry: &ImageIndexEntry,
    platform: &Platform,
    read: &mut dyn FnMut(&str) -> Result<Vec<u8>, LayoutError>,
) -> Result<LayoutImage, LayoutError> {
    let mut digest = entry.digest.clone();
    let mut media_type = entry.media_type.clone();
    // One level of nested index is followed, as when pulling.
    for _ in 0..3 {
        let bytes = read(&digest)?;
        match parse_manifest(source, &digest, &bytes)? {
            OciManifest::Image(manifest) => {
                return Ok(LayoutImage {
                    names: Vec::new(),
                    manifest_media_type: manifest.media_type.clone().unwrap_or(media_type),
                    manifest_digest: digest,
                    manifest_bytes: bytes,
                    manifest,
                });
            }
            OciManifest::ImageIndex(nested) => {
                let chosen =
                    select(&digest, &nested.manifests, platform).map_err(|source_err| {
                        LayoutError::Platform {
                            path: source.to_owned(),
                            source: Box::new(source_err),
                        }
                    })?;
                media_type = (nested.manifests.iter())
                    .find(|m| m.digest == chosen)
                    .map(|m| m.media_type.clone())
                    .unwrap_or_else(|| OCI_IMAGE_MEDIA_TYPE.to_owned());
                digest = chosen;
            }
        }
    }
    Err(LayoutError::Unsupported {
        path: source.to_owned(),
        message: format!("image indexes under {} nest too deeply", entry.digest),
    })
}

/// The full references an index entry's annotations give. A bare
/// `ref.name` (`v1`, `latest`) is only a tag and names no repository.
pub(super) fn entry_names(
    source: &Path,
    annotations: Option<&BTreeMap<String, String>>,
) -> Result<Vec<String>, LayoutError> {
    let Some(annotations) = annotations else {
        return Ok(Vec::new());
    };
    let full = annotations.get(CONTAINERD_NAME_ANNOTATION).or_else(|| {
        annotations
            .get(REF_NAME_ANNOTATION)
            .filter(|name| name.contains(['/', ':', '@']))
    });
    full.map(|name| normalize(source, name))
        .into_iter()
        .collect()
}

pub(super) fn normalize(source: &Path, reference: &str) -> Result<String, LayoutError> {
    normalize_reference(reference).map_err(|e| LayoutError::BadReference {
        path: source.to_owned(),
        reference: reference.to_owned(),
        message: e.to_string(),
    })
}

pub(super) fn push_unique(names: &mut Vec<String>, name: String) {
    if !names.contains(&name) {
        names.push(name);
    }
}

/// Applies `--tag`, and refuses images that would end up without a name.
pub(super) fn name_images(
    source: &Path,
    mut images: Vec<LayoutImage>,
    options: &LoadOptions,
) -> Result<Vec<LayoutImage>, LayoutError> {
    if let Some(tag) = &options.tag {
        if images.len() != 1 {
            return Err(LayoutError::TagNeedsOneImage {
                path: source.to_owned(),
                count: images.len(),
            });
        }
        images[0].names = vec![normalize(source, tag)?];
    }
    if images.is_empty() {
        return Err(LayoutError::Unsupported {
            path: source.to_owned(),
            message: "it holds no image".to_owned(),
        });
    }
    if let Some(unnamed) = images.iter().find(|image| image.names.is_empty()) {
        return Err(LayoutError::Unnamed {
            path: source.to_owned(),
            digest: unnamed.manifest_digest.clone(),
        });
    }
    Ok(images)
}
