//! Images that arrive without a registry: OCI image layouts (a directory, or
//! a tar archive of one, gzipped or not) and `docker save` archives.
//!
//! [`OciLayout`] reads a layout directory (what `atoll push DIR` publishes).
//! [`load`] imports a directory or an archive into a host's [`BlobStore`],
//! verifying every blob against its digest, and records each image's
//! reference in the store's [`RefIndex`]. [`Puller::pull`] looks there
//! before asking any registry, which is how an air-gapped site runs the
//! images it was handed on a disk.
//!
//! Archives are read as a stream, twice at most, never unpacked to disk:
//! the first pass copies every `blobs/sha256/<hex>` entry into the store
//! (its name is its digest, so it is verified on the way) and keeps the
//! small JSON files in memory; the files of a classic `docker save` archive
//! (`<id>/layer.tar`, named by no digest) are hashed in that pass, checked
//! against the config's `rootfs.diff_ids`, and copied in a second pass.
//! Every entry name, link target and path named in `manifest.json` must
//! stay inside the archive; one that does not fails the whole load.
//!
//! References are recorded only once every image of the source is fully
//! in the store, so a failed load leaves no reference behind (blobs it
//! already verified stay: the store is content-addressed).
//!
//! One file per job: `directory` reads layout directories, `archive`
//! makes the two passes over an archive, `docker_save` converts classic
//! `docker save` images, `index` resolves index entries and names,
//! `import` stores, checks and records, `blobs` streams into the store,
//! `refs` keeps the reference index, `paths` keeps every name inside the
//! archive, and `error` says what went wrong where.
//!
//! [`Puller::pull`]: super::pull::Puller::pull

mod archive;
mod blobs;
mod directory;
mod docker_save;
mod error;
mod import;
mod index;
mod paths;
mod refs;
#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

use oci_client::manifest::OciImageManifest;
use tokio::runtime::Handle;

use super::kind::{ArtifactKind, classify};
use super::platform::Platform;
use super::store::BlobStore;
pub use directory::OciLayout;
pub use error::LayoutError;
pub use index::LayoutImage;
pub use refs::{RefEntry, RefIndex, normalize_reference};

/// Largest manifest, config, `index.json` or `manifest.json` read into
/// memory.
pub const MAX_METADATA_BYTES: u64 = 8 << 20;

/// Annotation naming an image in a layout's `index.json` (OCI). Often only
/// a tag (`v1`), which names no repository and is then not used.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The full name containerd and `docker save` (25+) add next to it.
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// Media types of the manifest built for a classic `docker save` image:
/// docker's layers are plain tars, and its configs are OCI configs.
pub const OCI_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

const INDEX_JSON: &str = "index.json";
const OCI_LAYOUT: &str = "oci-layout";
const DOCKER_MANIFEST: &str = "manifest.json";
/// Symbolic links followed, at most, from a name in `manifest.json`.
const MAX_LINK_HOPS: usize = 8;

/// How [`load`] names and picks images.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Records the (single) image under this reference instead of the
    /// names the source gives.
    pub tag: Option<String>,
    /// The platform chosen from multi-platform indexes.
    pub platform: Platform,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            tag: None,
            platform: Platform::host(),
        }
    }
}

/// An image [`load`] put in the store and recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    /// Normalized references now resolving to it locally.
    pub references: Vec<String>,
    pub manifest_digest: String,
    pub kind: ArtifactKind,
    pub layers: usize,
    /// Bytes of its config and layers.
    pub size: u64,
}

/// What the store holds of an image, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSummary {
    /// `None` when the manifest names no runnable artifact.
    pub kind: Option<ArtifactKind>,
    pub layers: usize,
    /// Bytes of its config and layers.
    pub size: u64,
    /// Whether the config and every layer are stored.
    pub complete: bool,
}

/// Summarizes a stored image manifest; `None` if it is not stored (or not
/// an image manifest).
pub async fn describe(store: &BlobStore, manifest_digest: &str) -> Option<ImageSummary> {
    let bytes = store.read(manifest_digest, MAX_METADATA_BYTES).await.ok()?;
    let manifest: OciImageManifest = serde_json::from_slice(&bytes).ok()?;
    let descs = || std::iter::once(&manifest.config).chain(&manifest.layers);
    Some(ImageSummary {
        kind: classify(&manifest).ok(),
        layers: manifest.layers.len(),
        size: descs().map(|d| u64::try_from(d.size).unwrap_or(0)).sum(),
        complete: descs().all(|d| store.has(&d.digest)),
    })
}

/// Imports an OCI layout directory, an OCI layout archive or a `docker
/// save` archive (`.tar` or `.tar.gz`) into `store`, and records every
/// image's references in the store's [`RefIndex`]. See the module docs.
pub async fn load(
    store: &BlobStore,
    source: &Path,
    options: &LoadOptions,
) -> Result<Vec<LoadedImage>, LayoutError> {
    let (store, source, options) = (store.clone(), source.to_owned(), options.clone());
    let handle = Handle::current();
    let task = tokio::task::spawn_blocking(move || {
        import::load_blocking(&handle, &store, &source, &options)
    });
    match task.await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(LayoutError::Io {
            path: PathBuf::new(),
            source: io::Error::other(err),
        }),
    }
}
