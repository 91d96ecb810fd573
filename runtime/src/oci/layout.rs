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
//! [`Puller::pull`]: super::pull::Puller::pull

mod refs;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciImageIndex, OciImageManifest, OciManifest};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::runtime::Handle;

use super::kind::{ArtifactKind, ImageConfig, KindError, classify};
use super::platform::{Platform, PlatformError, select};
use super::store::{BlobStore, StoreError, sha256_digest, sha256_hex};
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

/// Why a layout or archive could not be read or imported. Each names the
/// source, and the blob or file at fault.
#[derive(thiserror::Error, Debug)]
pub enum LayoutError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{}: neither an OCI image layout (no index.json) nor a docker save archive (no manifest.json)",
        path.display()
    )]
    NotAnImage { path: PathBuf },
    #[error(
        "{}: not a readable tar archive ({source}); expected an OCI image layout (directory or tar, gzipped or not) or a docker save archive",
        path.display()
    )]
    NotAnArchive { path: PathBuf, source: io::Error },
    #[error("{}: {file} is not valid: {message}", path.display())]
    BadFile {
        path: PathBuf,
        file: String,
        message: String,
    },
    #[error("{}: refusing {name:?}: it points outside the archive", path.display())]
    UnsafePath { path: PathBuf, name: String },
    #[error("{}: {what} is missing", path.display())]
    Missing { path: PathBuf, what: String },
    #[error("{}: blob {digest} failed verification: its content hashes to {actual}", path.display())]
    DigestMismatch {
        path: PathBuf,
        digest: String,
        actual: String,
    },
    #[error("{}: blob {digest} is {actual} bytes, but {expected} are expected", path.display())]
    SizeMismatch {
        path: PathBuf,
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{}: layer {file} hashes to {actual}, but the image config lists {expected}",
        path.display()
    )]
    DiffIdMismatch {
        path: PathBuf,
        file: String,
        actual: String,
        expected: String,
    },
    #[error("{}: the blob store failed: {source}", path.display())]
    Store { path: PathBuf, source: StoreError },
    #[error("{}: invalid image reference {reference:?}: {message}", path.display())]
    BadReference {
        path: PathBuf,
        reference: String,
        message: String,
    },
    #[error(
        "{}: image {digest} has no name (no {CONTAINERD_NAME_ANNOTATION} or full {REF_NAME_ANNOTATION} annotation, no RepoTags); give one with --tag",
        path.display()
    )]
    Unnamed { path: PathBuf, digest: String },
    #[error("{}: --tag names one image, but this holds {count}", path.display())]
    TagNeedsOneImage { path: PathBuf, count: usize },
    #[error("{}: {message}", path.display())]
    Unsupported { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Platform {
        path: PathBuf,
        source: Box<PlatformError>,
    },
    #[error("{}: image {digest} cannot be run: {source}", path.display())]
    Kind {
        path: PathBuf,
        digest: String,
        source: KindError,
    },
}

impl LayoutError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn bad_file(path: &Path, file: impl Into<String>, message: impl ToString) -> Self {
        Self::BadFile {
            path: path.to_owned(),
            file: file.into(),
            message: message.to_string(),
        }
    }

    fn missing(path: &Path, what: impl Into<String>) -> Self {
        Self::Missing {
            path: path.to_owned(),
            what: what.into(),
        }
    }

    fn unsafe_path(path: &Path, name: impl Into<String>) -> Self {
        Self::UnsafePath {
            path: path.to_owned(),
            name: name.into(),
        }
    }

    fn store(path: &Path, err: StoreError) -> Self {
        let path = path.to_owned();
        match err {
            StoreError::DigestMismatch { expected, actual } => Self::DigestMismatch {
                path,
                digest: expected,
                actual,
            },
            StoreError::SizeMismatch {
                digest,
                expected,
                actual,
            } => Self::SizeMismatch {
                path,
                digest,
                expected,
                actual,
            },
            source => Self::Store { path, source },
        }
    }
}

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
    let task =
        tokio::task::spawn_blocking(move || load_blocking(&handle, &store, &source, &options));
    match task.await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(LayoutError::Io {
            path: PathBuf::new(),
            source: io::Error::other(err),
        }),
    }
}

/// The loader proper, on a blocking thread: the tar reader is synchronous,
/// and store writes are driven with `handle.block_on`.
fn load_blocking(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    options: &LoadOptions,
) -> Result<Vec<LoadedImage>, LayoutError> {
    let meta = std::fs::metadata(source).map_err(LayoutError::io(source))?;
    let images = if meta.is_dir() {
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
        images
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

/// Applies `--tag`, and refuses images that would end up without a name.
fn name_images(
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

/// What the first pass over an archive found.
#[derive(Default)]
struct Scan {
    /// Small files (`*.json`, `oci-layout`, `repositories`), by name.
    small: BTreeMap<String, Vec<u8>>,
    /// Regular files outside `blobs/sha256/`, hashed: by name.
    files: BTreeMap<String, Hashed>,
    /// `blobs/sha256/<hex>` entries, now in the store: name → digest.
    blobs: BTreeMap<String, String>,
    /// Symbolic and hard links: name → target, both archive paths.
    links: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
struct Hashed {
    digest: String,
    size: u64,
    gzip: bool,
}

impl Scan {
    /// Follows links from an archive path to a file's name.
    fn resolve(&self, source: &Path, name: &str) -> Result<String, LayoutError> {
        let mut current = name.to_owned();
        for _ in 0..MAX_LINK_HOPS {
            match self.links.get(&current) {
                Some(target) => current = target.clone(),
                None => return Ok(current),
            }
        }
        Err(LayoutError::Unsupported {
            path: source.to_owned(),
            message: format!("{name}: too many levels of links"),
        })
    }
}

fn load_archive(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    options: &LoadOptions,
) -> Result<Vec<LayoutImage>, LayoutError> {
    let scan = scan_archive(handle, store, source)?;
    let read_stored = |digest: &str| -> Result<Vec<u8>, LayoutError> {
        match handle.block_on(store.read(digest, MAX_METADATA_BYTES)) {
            Err(StoreError::Missing { .. }) => {
                Err(LayoutError::missing(source, format!("blob {digest}")))
            }
            other => other.map_err(|err| LayoutError::store(source, err)),
        }
    };

    if let Some(index) = scan.small.get(INDEX_JSON) {
        if let Some(bytes) = scan.small.get(OCI_LAYOUT) {
            check_oci_layout(source, bytes)?;
        }
        let index = parse_index(source, index)?;
        let mut images = resolve_index(source, &index, &options.platform, &mut |d| read_stored(d))?;
        // `docker save` (25+) writes a layout whose index may name images
        // by tag only; its manifest.json has the full names.
        if let Some(bytes) = scan.small.get(DOCKER_MANIFEST) {
            let entries = parse_docker_manifest(source, bytes)?;
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
        }
        // The blobs came with the first pass; what is missing stays missing.
        return name_images(source, images, options);
    }

    let Some(bytes) = scan.small.get(DOCKER_MANIFEST) else {
        return Err(LayoutError::NotAnImage {
            path: source.to_owned(),
        });
    };
    let entries = parse_docker_manifest(source, bytes)?;
    let mut images = Vec::new();
    let mut needed: BTreeMap<String, Hashed> = BTreeMap::new();
    let mut configs: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in &entries {
        let (image, config, files) = docker_image(handle, store, source, &scan, entry)?;
        images.push(image);
        configs.push(config);
        needed.extend(files);
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

/// One image of a classic `docker save` archive, as an OCI manifest with
/// plain tar layers; also its config `(digest, bytes)` and the archive
/// files its layers are to be copied from.
#[allow(clippy::type_complexity)]
fn docker_image(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    scan: &Scan,
    entry: &DockerManifestEntry,
) -> Result<(LayoutImage, (String, Vec<u8>), BTreeMap<String, Hashed>), LayoutError> {
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
    let config_digest = sha256_digest(&config);
    // Classic archives name the config `<hex of its digest>.json`.
    let stem = config_name.rsplit('/').next().unwrap_or_default();
    if let Some(hex) = stem.strip_suffix(".json")
        && sha256_hex(&format!("sha256:{hex}")).is_ok()
        && config_digest != format!("sha256:{hex}")
    {
        return Err(LayoutError::DigestMismatch {
            path: source.to_owned(),
            digest: format!("sha256:{hex}"),
            actual: config_digest,
        });
    }
    let diff_ids = (serde_json::from_slice::<DockerConfig>(&config))
        .map_err(|err| LayoutError::bad_file(source, &config_name, err))?
        .rootfs
        .map(|rootfs| rootfs.diff_ids)
        .unwrap_or_default();
    if !diff_ids.is_empty() && diff_ids.len() != entry.layers.len() {
        return Err(LayoutError::bad_file(
            source,
            &config_name,
            format!(
                "it lists {} layers (rootfs.diff_ids), manifest.json {}",
                diff_ids.len(),
                entry.layers.len()
            ),
        ));
    }

    let mut files = BTreeMap::new();
    let mut layers = Vec::new();
    for (index, layer) in entry.layers.iter().enumerate() {
        let name =
            safe_name(layer).ok_or_else(|| LayoutError::unsafe_path(source, layer.as_str()))?;
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
    let manifest_json = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MEDIA_TYPE,
        "config": {
            "mediaType": OCI_CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config.len(),
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
    let image = LayoutImage {
        names,
        manifest_digest: sha256_digest(&manifest_bytes),
        manifest_media_type: OCI_IMAGE_MEDIA_TYPE.to_owned(),
        manifest_bytes,
        manifest,
    };
    Ok((image, (config_digest, config), files))
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens an archive, gunzipping it if it starts like gzip.
fn open_archive(source: &Path) -> Result<tar::Archive<Box<dyn Read>>, LayoutError> {
    let mut file = BufReader::new(File::open(source).map_err(LayoutError::io(source))?);
    let head = std::io::BufRead::fill_buf(&mut file).map_err(LayoutError::io(source))?;
    let reader: Box<dyn Read> = if head.starts_with(&GZIP_MAGIC) {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(tar::Archive::new(reader))
}

/// A tar reader failing on headers: the file is no (or a truncated) tar.
fn not_an_archive(source: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |err| LayoutError::NotAnArchive {
        path: source.to_owned(),
        source: err,
    }
}

/// The first pass; see the module docs.
fn scan_archive(handle: &Handle, store: &BlobStore, source: &Path) -> Result<Scan, LayoutError> {
    let mut scan = Scan::default();
    let mut archive = open_archive(source)?;
    let entries = archive.entries().map_err(not_an_archive(source))?;
    for entry in entries {
        let mut entry = entry.map_err(not_an_archive(source))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = safe_name(&raw).ok_or_else(|| LayoutError::unsafe_path(source, &raw))?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            // Symbolic links are relative to their directory; hard links
            // name another entry of the archive.
            let resolved = if kind.is_symlink() {
                let dir = name.rsplit_once('/').map_or("", |(dir, _)| dir);
                join_inside(dir, &target)
            } else {
                safe_name(&target)
            };
            let resolved = resolved
                .ok_or_else(|| LayoutError::unsafe_path(source, format!("{raw} -> {target}")))?;
            scan.links.insert(name, resolved);
            continue;
        }
        if !kind.is_file() || name.is_empty() {
            continue;
        }
        let size = entry.size();
        if let Some(hex) = name.strip_prefix("blobs/sha256/")
            && sha256_hex(&format!("sha256:{hex}")).is_ok()
        {
            let digest = format!("sha256:{hex}");
            put(handle, store, source, &digest, Some(size), &mut entry)?;
            scan.blobs.insert(name, digest);
            continue;
        }
        let small = name.ends_with(".json") || name == OCI_LAYOUT || name == "repositories";
        if small && size <= MAX_METADATA_BYTES {
            let mut bytes = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut bytes)
                .map_err(LayoutError::io(source))?;
            scan.small.insert(name, bytes);
            continue;
        }
        let hashed = hash_reader(&mut entry).map_err(LayoutError::io(source))?;
        scan.files.insert(name, hashed);
    }
    Ok(scan)
}

/// The second pass of a classic `docker save` archive: copies the layer
/// files it needs into the store, verified against the first pass's hash.
fn copy_files(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    needed: &BTreeMap<String, Hashed>,
) -> Result<(), LayoutError> {
    let mut archive = open_archive(source)?;
    let entries = archive.entries().map_err(not_an_archive(source))?;
    for entry in entries {
        let mut entry = entry.map_err(not_an_archive(source))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(hashed) = safe_name(&raw).and_then(|name| needed.get(&name)) else {
            continue;
        };
        put(
            handle,
            store,
            source,
            &hashed.digest,
            Some(hashed.size),
            &mut entry,
        )?;
    }
    for (name, hashed) in needed {
        if !store.has(&hashed.digest) {
            return Err(LayoutError::missing(
                source,
                format!("{name} (changed while loading?)"),
            ));
        }
    }
    Ok(())
}

/// Streams a reader into the store under `digest`, verifying it.
fn put(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    digest: &str,
    size: Option<u64>,
    reader: impl Read + Unpin,
) -> Result<(), LayoutError> {
    handle
        .block_on(store.put_stream(digest, size, BlockingRead(reader)))
        .map(|_| ())
        .map_err(|err| LayoutError::store(source, err))
}

fn hash_reader(reader: &mut impl Read) -> io::Result<Hashed> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut head = Vec::with_capacity(2);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 2 {
            let take = (2 - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Hashed {
        digest: format!("sha256:{hex}"),
        size,
        gzip: head == GZIP_MAGIC,
    })
}

/// A synchronous reader as an `AsyncRead`, for use under
/// `Handle::block_on` on a blocking thread only: each poll reads (and may
/// block) right away.
struct BlockingRead<R>(R);

impl<R: Read + Unpin> AsyncRead for BlockingRead<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.0.read(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// An archive path made relative and clean (`./a//b` → `a/b`), or `None`
/// when it is absolute or has a `..` component.
pub fn safe_name(raw: &str) -> Option<String> {
    if raw.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// A symbolic link's target from directory `dir`, or `None` when it
/// leaves the archive.
fn join_inside(dir: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

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

fn descriptor_size(source: &Path, digest: &str, size: i64) -> Result<u64, LayoutError> {
    u64::try_from(size).map_err(|_| {
        LayoutError::bad_file(
            source,
            format!("the descriptor of {digest}"),
            "negative size",
        )
    })
}

fn check_oci_layout(source: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
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

fn parse_index(source: &Path, bytes: &[u8]) -> Result<OciImageIndex, LayoutError> {
    serde_json::from_slice(bytes).map_err(|err| LayoutError::bad_file(source, INDEX_JSON, err))
}

fn parse_manifest(source: &Path, digest: &str, bytes: &[u8]) -> Result<OciManifest, LayoutError> {
    serde_json::from_slice(bytes)
        .map_err(|err| LayoutError::bad_file(source, format!("manifest {digest}"), err))
}

/// Resolves every entry of an index to an image manifest, reading blobs
/// with `read` (which verifies them).
fn resolve_index(
    source: &Path,
    index: &OciImageIndex,
    platform: &Platform,
    read: &mut dyn FnMut(&str) -> Result<Vec<u8>, LayoutError>,
) -> Result<Vec<LayoutImage>, LayoutError> {
    let mut images: Vec<LayoutImage> = Vec::new();
    for entry in &index.manifests {
        let names = entry_names(source, entry.annotations.as_ref())?;
        let mut digest = entry.digest.clone();
        let mut media_type = entry.media_type.clone();
        // One level of nested index is followed, as when pulling.
        let image = 'resolve: {
            for _ in 0..3 {
                let bytes = read(&digest)?;
                match parse_manifest(source, &digest, &bytes)? {
                    OciManifest::Image(manifest) => {
                        break 'resolve LayoutImage {
                            names: Vec::new(),
                            manifest_media_type: manifest.media_type.clone().unwrap_or(media_type),
                            manifest_digest: digest,
                            manifest_bytes: bytes,
                            manifest,
                        };
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
            return Err(LayoutError::Unsupported {
                path: source.to_owned(),
                message: format!("image indexes under {} nest too deeply", entry.digest),
            });
        };
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

/// The full references an index entry's annotations give. A bare
/// `ref.name` (`v1`, `latest`) is only a tag and names no repository.
fn entry_names(
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

fn normalize(source: &Path, reference: &str) -> Result<String, LayoutError> {
    normalize_reference(reference).map_err(|message| LayoutError::BadReference {
        path: source.to_owned(),
        reference: reference.to_owned(),
        message,
    })
}

fn push_unique(names: &mut Vec<String>, name: String) {
    if !names.contains(&name) {
        names.push(name);
    }
}

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
