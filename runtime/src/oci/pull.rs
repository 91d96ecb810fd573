//! Pulling images from OCI registries into the host's [`BlobStore`].
//!
//! A pull resolves the reference to one image manifest (choosing this
//! host's platform from an index, see [`platform`](super::platform)), keeps
//! the manifest and config in the store, and downloads each layer not yet
//! stored, verified by digest and size. A tag is resolved once per host
//! and remembered (`latest` on every pull); blobs are fetched once per host.
//!
//! Every network step is bounded by [`PullConfig::timeout`]: connecting,
//! each manifest or config request as a whole, and for layers the wait for
//! the response and then for each read (a 2 GiB layer cannot have a fixed
//! total deadline, a stalled one must not hang). Plain HTTP is used only
//! for registries listed in [`PullConfig::insecure_registries`]; anything
//! else goes over TLS (rustls, system roots).
//!
//! Before any of that, a reference that `atoll image load` recorded in the
//! store's [`RefIndex`](super::layout::RefIndex) is answered from the store
//! alone, when everything the image needs is there (see
//! [`layout`](super::layout)); and when the registry cannot be reached,
//! the image the last pull of the reference brought is (see `stored`).

mod error;
mod stored;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use futures::TryStreamExt;
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest, OciManifest,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tokio_util::io::StreamReader;

use super::kind::{ArtifactKind, ImageConfig, classify};
use super::platform::{Platform, select};
use super::registry;
use super::store::{BlobStore, DEFAULT_MAX_BLOB_BYTES, StoreError, sha256_digest};
use crate::install_crypto_provider;
pub use error::PullError;
use error::{Context, Fetching};

/// Manifest media types asked for: OCI and Docker v2, image and index.
const MANIFEST_MEDIA_TYPES: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// Largest config blob read into memory. Real configs are a few KiB; the
/// history of a large image stays well under this.
const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// How the puller reaches registries and where it stores blobs.
#[derive(Clone, Debug)]
pub struct PullConfig {
    /// Root of the blob store, shared by every instance on the host.
    pub store_dir: PathBuf,
    /// Registries (`host:port`, as written in references) reached over
    /// plain HTTP. All others must speak TLS.
    pub insecure_registries: Vec<String>,
    /// Docker `config.json` to take credentials from; `None` means
    /// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// Bound on each network step (see the module docs).
    pub timeout: Duration,
    /// Largest blob accepted.
    pub max_blob_bytes: u64,
}

impl PullConfig {
    /// Defaults: no insecure registries, docker's config path, 30 s steps,
    /// 2 GiB blobs.
    pub fn new(store_dir: impl Into<PathBuf>) -> Self {
        Self {
            store_dir: store_dir.into(),
            insecure_registries: Vec::new(),
            docker_config: None,
            timeout: Duration::from_secs(30),
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
        }
    }
}

/// Progress of one layer, reported as its bytes arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PullProgress {
    /// Index of the layer in the manifest, from 0.
    pub layer: usize,
    pub layers: usize,
    /// Bytes of this layer so far.
    pub bytes: u64,
    /// The layer's size per the manifest.
    pub total: u64,
    /// The layer was already stored: nothing is downloaded (`bytes ==
    /// total`, reported once).
    pub cached: bool,
}

/// A pulled image: everything it needs is in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PulledImage {
    /// The reference as given.
    pub reference: String,
    /// Digest of the image manifest (for an index, of the manifest chosen
    /// for this host).
    pub manifest_digest: String,
    pub config_digest: String,
    pub kind: ArtifactKind,
    /// How the container starts; `None` for Wasm.
    pub config: Option<ImageConfig>,
    /// Layers in manifest order: `(digest, media type)`.
    pub layers: Vec<(String, String)>,
}

/// Pulls images into a blob store.
pub struct Puller {
    store: BlobStore,
    insecure_registries: Vec<String>,
    docker_config: Option<PathBuf>,
    timeout: Duration,
    platform: Platform,
}

impl Puller {
    /// Opens the store. Fails only if the store directory cannot be made.
    pub fn new(config: PullConfig) -> Result<Self, StoreError> {
        install_crypto_provider();
        let store = BlobStore::open(&config.store_dir)?.with_max_blob_bytes(config.max_blob_bytes);
        Ok(Self {
            store,
            insecure_registries: config.insecure_registries,
            docker_config: config
                .docker_config
                .or_else(super::auth::default_config_path),
            timeout: config.timeout,
            platform: Platform::host(),
        })
    }

    /// Pulls for another platform than the host's (tests, tooling).
    pub fn with_platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }

    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// Pulls `reference` (`[registry/]repository[:tag|@digest]`, Docker Hub
    /// by default), calling `progress` as layers arrive.
    pub async fn pull(
        &self,
        reference: &str,
        progress: impl Fn(PullProgress),
    ) -> Result<PulledImage, PullError> {
        let parsed: Reference =
            reference
                .parse()
                .map_err(|err: oci_client::ParseError| PullError::BadReference {
                    reference: reference.to_owned(),
                    message: err.to_string(),
                })?;
        let registry = parsed.resolve_registry().to_owned();
        let cx = Context {
            reference,
            registry: &registry,
            timeout: self.timeout,
        };
        if let Some(image) = self.local(&parsed, &cx, &progress).await? {
            return Ok(image);
        }
        match self.pull_from_registry(&parsed, &cx, &progress).await {
            // Offline (an edge site cut off, a host restarted without its
            // registry): the image this host last pulled under the
            // reference, if it is whole in the store.
            Err(e @ PullError::Unreachable { .. }) => {
                match self.fallback(&parsed, &cx, &progress).await? {
                    Some(image) => {
                        tracing::warn!(reference, error = %e, "registry unreachable; running the image pulled before");
                        Ok(image)
                    }
                    None => Err(e),
                }
            }
            pulled => pulled,
        }
    }

    /// Pulls from the registry, storing what it fetched and remembering
    /// what the reference resolved to.
    async fn pull_from_registry(
        &self,
        parsed: &Reference,
        cx: &Context<'_>,
        progress: &impl Fn(PullProgress),
    ) -> Result<PulledImage, PullError> {
        let (reference, registry) = (cx.reference, cx.registry.to_owned());
        let auth =
            registry::credentials(self.docker_config.as_deref(), &registry).map_err(|source| {
                PullError::Credentials {
                    registry: registry.clone(),
                    source,
                }
            })?;
        let client = registry::client(&self.insecure_registries, self.timeout).map_err(|e| {
            PullError::Client {
                message: e.to_string(),
            }
        })?;

        let (manifest, manifest_digest) = self.manifest(&client, parsed, &auth, cx).await?;
        let kind = classify(&manifest).map_err(|source| PullError::Kind {
            reference: reference.to_owned(),
            source,
        })?;

        let config_desc = &manifest.config;
        self.fetch_blob(
            &client,
            parsed,
            config_desc,
            MAX_CONFIG_BYTES,
            cx,
            |_, _, _| {},
        )
        .await?;
        let config = self.image_config(&kind, &config_desc.digest, cx).await?;

        let layers = manifest.layers.len();
        for (index, layer) in manifest.layers.iter().enumerate() {
            let report = |bytes: u64, total: u64, cached: bool| {
                progress(PullProgress {
                    layer: index,
                    layers,
                    bytes,
                    total,
                    cached,
                })
            };
            let limit = self.store.max_blob_bytes();
            self.fetch_blob(&client, parsed, layer, limit, cx, report)
                .await?;
        }

        self.remember(parsed, &manifest_digest);
        Ok(PulledImage {
            reference: reference.to_owned(),
            manifest_digest,
            config_digest: config_desc.digest.clone(),
            kind,
            config,
            layers: (manifest.layers.iter())
                .map(|layer| (layer.digest.clone(), layer.media_type.clone()))
                .collect(),
        })
    }

    /// How a container image starts, from its stored config; `None` for
    /// Wasm.
    async fn image_config(
        &self,
        kind: &ArtifactKind,
        digest: &str,
        cx: &Context<'_>,
    ) -> Result<Option<ImageConfig>, PullError> {
        match kind {
            ArtifactKind::Container => {
                let bytes = (self.store.read(digest, MAX_CONFIG_BYTES).await)
                    .map_err(|err| cx.store(err))?;
                self.check_platform(&bytes, cx)?;
                let config = ImageConfig::parse(&bytes).map_err(|source| PullError::Kind {
                    reference: cx.reference.to_owned(),
                    source,
                })?;
                Ok(Some(config))
            }
            ArtifactKind::Wasm { .. } => Ok(None),
        }
    }

    /// A single-platform image (no index to choose from) whose config
    /// names another os or architecture cannot run here: said now, rather
    /// than as an "exec format error" from inside the container.
    fn check_platform(&self, config: &[u8], cx: &Context<'_>) -> Result<(), PullError> {
        #[derive(serde::Deserialize)]
        struct Named {
            #[serde(default)]
            architecture: String,
            #[serde(default)]
            os: String,
        }
        let Ok(named) = serde_json::from_slice::<Named>(config) else {
            return Ok(());
        };
        let arch_differs =
            !named.architecture.is_empty() && named.architecture != self.platform.architecture;
        let os_differs = !named.os.is_empty() && named.os != self.platform.os;
        if arch_differs || os_differs {
            return Err(PullError::Platform(super::platform::PlatformError {
                reference: cx.reference.to_owned(),
                wanted: self.platform.clone(),
                offered: vec![format!("{}/{}", named.os, named.architecture)],
            }));
        }
        Ok(())
    }

    /// Fetches the image manifest, through the index if there is one,
    /// storing what it fetched.
    async fn manifest(
        &self,
        client: &Client,
        reference: &Reference,
        auth: &RegistryAuth,
        cx: &Context<'_>,
    ) -> Result<(OciImageManifest, String), PullError> {
        let mut current = reference.clone();
        // An index pointing at an index is allowed by the spec but unused in
        // practice; one level of nesting is followed, no more.
        for _ in 0..3 {
            let (bytes, digest) = self
                .bounded(
                    cx,
                    Fetching::Manifest,
                    client.pull_manifest_raw(&current, auth, MANIFEST_MEDIA_TYPES),
                )
                .await?;
            // `oci-client` has checked the bytes against the registry's
            // digest header and the reference's digest; the store keys them
            // by their sha256.
            (self.store.put_bytes(&sha256_digest(&bytes), &bytes).await)
                .map_err(|err| cx.store(err))?;
            let manifest: OciManifest =
                serde_json::from_slice(&bytes).map_err(|err| PullError::Registry {
                    reference: cx.reference.to_owned(),
                    registry: cx.registry.to_owned(),
                    message: format!("the manifest is not a schema 2 image or index: {err}"),
                })?;
            match manifest {
                OciManifest::Image(manifest) => return Ok((manifest, digest)),
                OciManifest::ImageIndex(index) => {
                    let chosen = select(cx.reference, &index.manifests, &self.platform)?;
                    current = reference.clone_with_digest(chosen);
                }
            }
        }
        Err(PullError::Registry {
            reference: cx.reference.to_owned(),
            registry: cx.registry.to_owned(),
            message: "image indexes nest too deeply".to_owned(),
        })
    }

    /// Downloads a blob into the store unless it is there already.
    async fn fetch_blob(
        &self,
        client: &Client,
        reference: &Reference,
        desc: &OciDescriptor,
        limit: u64,
        cx: &Context<'_>,
        report: impl Fn(u64, u64, bool),
    ) -> Result<(), PullError> {
        let size = u64::try_from(desc.size).map_err(|_| PullError::Registry {
            reference: cx.reference.to_owned(),
            registry: cx.registry.to_owned(),
            message: format!("blob {} has a negative size", desc.digest),
        })?;
        // Checked first: the digest becomes a file name.
        self.store.path(&desc.digest).map_err(|err| cx.store(err))?;
        if self.store.has(&desc.digest) {
            report(size, size, true);
            return Ok(());
        }
        if size > limit {
            return Err(PullError::TooLarge {
                reference: cx.reference.to_owned(),
                digest: desc.digest.clone(),
                limit,
            });
        }
        report(0, size, false);
        let stream = self
            .bounded(
                cx,
                Fetching::Blob(&desc.digest),
                client.pull_blob_stream(reference, desc),
            )
            .await?;
        let mut done = 0u64;
        let stream = stream.inspect_ok(|chunk| {
            done += chunk.len() as u64;
            report(done.min(size), size, false);
        });
        (self
            .store
            .put_stream(&desc.digest, Some(size), StreamReader::new(stream))
            .await)
            .map_err(|err| cx.store(err))?;
        Ok(())
    }

    /// Runs one registry request under the timeout, mapping its error.
    async fn bounded<T>(
        &self,
        cx: &Context<'_>,
        what: Fetching<'_>,
        request: impl Future<Output = Result<T, OciDistributionError>>,
    ) -> Result<T, PullError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(cx.oci(err, what)),
            Err(_) => Err(cx.timed_out(what)),
        }
    }
}
