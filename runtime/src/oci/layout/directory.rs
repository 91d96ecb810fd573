//! An OCI image layout directory: `oci-layout`, `index.json` and
//! `blobs/sha256/<hex>`, as `atoll push DIR` publishes it and `atoll image
//! load DIR` imports it. Blobs are read straight from their files and
//! verified against their digest; a layout's files name the digests, so
//! a digest is checked before it becomes a path.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use oci_client::manifest::{OciImageIndex, OciManifest};
use tokio::runtime::Handle;

use super::blobs::{descriptor_size, put};
use super::error::LayoutError;
use super::index::{
    LayoutImage, check_oci_layout, entry_names, name_images, parse_index, parse_manifest,
    resolve_index,
};
use super::paths::read_limited;
use super::{INDEX_JSON, LoadOptions, MAX_METADATA_BYTES, OCI_LAYOUT};
use crate::oci::platform::Platform;
use crate::oci::store::{BlobStore, sha256_digest, sha256_hex};

/// An OCI image layout directory: `oci-layout`, `index.json` and
/// `blobs/sha256/<hex>`.
#[derive(Debug)]
pub struct OciLayout {
    root: PathBuf,
    index: OciImageIndex,
}

impl OciLayout {
    /// Reads the layout's `index.json` (and checks `oci-layout`, when
    /// present, is version 1).
    pub fn open(root: &Path) -> Result<Self, LayoutError> {
        let index_path = root.join(INDEX_JSON);
        if !index_path.is_file() {
            return Err(LayoutError::NotAnImage {
                path: root.to_owned(),
            });
        }
        match read_limited(&root.join(OCI_LAYOUT), MAX_METADATA_BYTES) {
            Ok(bytes) => check_oci_layout(root, &bytes)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(LayoutError::io(&root.join(OCI_LAYOUT))(err)),
        }
        let bytes =
            read_limited(&index_path, MAX_METADATA_BYTES).map_err(LayoutError::io(&index_path))?;
        let index = parse_index(root, &bytes)?;
        Ok(Self {
            root: root.to_owned(),
            index,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the layout keeps a blob (the digest is checked first: it
    /// comes from the layout's own files).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, LayoutError> {
        let hex = sha256_hex(digest).map_err(|err| LayoutError::store(&self.root, err))?;
        Ok(self.root.join("blobs").join("sha256").join(hex))
    }

    /// Reads a small blob whole, verified against its digest.
    pub fn read_blob(&self, digest: &str, limit: u64) -> Result<Vec<u8>, LayoutError> {
        let path = self.blob_path(digest)?;
        let bytes = match read_limited(&path, limit) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(LayoutError::missing(&self.root, format!("blob {digest}")));
            }
            Err(err) if err.kind() == io::ErrorKind::FileTooLarge => {
                return Err(LayoutError::Unsupported {
                    path: self.root.clone(),
                    message: format!("blob {digest} is larger than {limit} bytes"),
                });
            }
            Err(err) => return Err(LayoutError::io(&path)(err)),
        };
        verify(&self.root, digest, &bytes)?;
        Ok(bytes)
    }

    /// Every image the layout's index names, image indexes resolved to the
    /// manifest for `platform`. Entries naming the same manifest are one
    /// image with several names.
    pub fn images(&self, platform: &Platform) -> Result<Vec<LayoutImage>, LayoutError> {
        resolve_index(&self.root, &self.index, platform, &mut |digest| {
            self.read_blob(digest, MAX_METADATA_BYTES)
        })
    }

    /// The one image manifest of a layout, as `atoll push` publishes it.
    /// A layout whose index holds several entries, or an image index, is
    /// refused: pushing picks no platform.
    pub fn single_image(&self) -> Result<LayoutImage, LayoutError> {
        let [entry] = self.index.manifests.as_slice() else {
            return Err(LayoutError::Unsupported {
                path: self.root.clone(),
                message: format!(
                    "index.json lists {} manifests; push needs a layout holding exactly one image",
                    self.index.manifests.len()
                ),
            });
        };
        let bytes = self.read_blob(&entry.digest, MAX_METADATA_BYTES)?;
        match parse_manifest(&self.root, &entry.digest, &bytes)? {
            OciManifest::Image(manifest) => Ok(LayoutImage {
                names: entry_names(&self.root, entry.annotations.as_ref())?,
                manifest_digest: entry.digest.clone(),
                manifest_media_type: (manifest.media_type.clone())
                    .unwrap_or_else(|| entry.media_type.clone()),
                manifest_bytes: bytes,
                manifest,
            }),
            OciManifest::ImageIndex(_) => Err(LayoutError::Unsupported {
                path: self.root.clone(),
                message: format!(
                    "{} is an image index; push supports a single image manifest",
                    entry.digest
                ),
            }),
        }
    }
}

/// The images of a layout directory, named, with their config and layer
/// blobs copied into `store` (the manifests are stored by the caller).
pub(super) fn load_directory(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    options: &LoadOptions,
) -> Result<Vec<LayoutImage>, LayoutError> {
    let layout = OciLayout::open(source)?;
    let images = name_images(source, layout.images(&options.platform)?, options)?;
    for image in &images {
        let descs = std::iter::once(&image.manifest.config).chain(&image.manifest.layers);
        for desc in descs {
            let path = layout.blob_path(&desc.digest)?;
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    return Err(LayoutError::missing(
                        source,
                        format!("blob {}", desc.digest),
                    ));
                }
                Err(err) => return Err(LayoutError::io(&path)(err)),
            };
            let size = descriptor_size(source, &desc.digest, desc.size)?;
            put(handle, store, source, &desc.digest, Some(size), file)?;
        }
    }
    Ok(images)
}

/// Checks bytes read whole against the digest they were read under.
fn verify(source: &Path, digest: &str, bytes: &[u8]) -> Result<(), LayoutError> {
    let actual = sha256_digest(bytes);
    if actual != digest {
        return Err(LayoutError::DigestMismatch {
            path: source.to_owned(),
            digest: digest.to_owned(),
            actual,
        });
    }
    Ok(())
}
