//! Publishing to OCI registries: a Wasm component as an OCI artifact, or
//! the one image of an OCI image layout as it is.
//!
//! A component is published in the CNCF Wasm OCI artifact format: a small
//! config (`application/vnd.wasm.config.v0+json`), one `application/wasm`
//! layer holding the component, and an OCI image manifest. A layout's
//! config, layers and manifest are pushed byte for byte, so the pushed
//! manifest digest is the layout's. Blobs the repository already has are
//! not uploaded again; layer files are streamed in 4 MiB chunks and hashed
//! on the way, and one whose content does not match its digest aborts the
//! upload before the registry commits it.
//!
//! Plain HTTP is used only for registries listed in
//! [`PushConfig::insecure_registries`]; credentials come from docker's
//! `config.json`, as for pulls. Requests other than blob uploads are
//! bounded by [`PushConfig::timeout`]; uploads by the client's read
//! timeout, so a stalled registry fails rather than hangs.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OCI_IMAGE_MEDIA_TYPE;
use oci_client::{Reference, RegistryOperation};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;

use super::auth::AuthError;
use super::layout::{LayoutError, MAX_METADATA_BYTES, OciLayout};
use super::registry::{self, Problem};
use super::store::sha256_digest;
use crate::install_crypto_provider;

/// Config media type of a Wasm artifact (CNCF Wasm OCI artifact format).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Layer media type of the component.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Every Wasm binary, module or component, starts with these bytes.
pub const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// Environment variable listing registries (`host:port`, comma-separated)
/// reached over plain HTTP.
pub const INSECURE_REGISTRY_ENV: &str = "ATOLL_INSECURE_REGISTRY";
/// Size of each upload request of a streamed layer.
const CHUNK_BYTES: usize = 4 << 20;
/// Largest component read into memory to push.
const MAX_WASM_BYTES: u64 = 1 << 30;

/// How the pusher reaches registries.
#[derive(Clone, Debug)]
pub struct PushConfig {
    /// Registries (`host:port`, as written in references) reached over
    /// plain HTTP. All others must speak TLS.
    pub insecure_registries: Vec<String>,
    /// Docker `config.json` to take credentials from; `None` means
    /// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// Bound on each request but blob uploads, and the client's connect
    /// and read timeouts.
    pub timeout: Duration,
}

impl Default for PushConfig {
    /// No insecure registries, docker's config path, 30 s.
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            docker_config: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The registries named in [`INSECURE_REGISTRY_ENV`].
pub fn insecure_registries_from_env() -> Vec<String> {
    parse_registry_list(&std::env::var(INSECURE_REGISTRY_ENV).unwrap_or_default())
}

/// The registry of a reference as matched against
/// [`PushConfig::insecure_registries`] (`host:port`; Docker Hub names
/// resolve to its API host).
pub fn registry_of(reference: &str) -> Result<String, PushError> {
    let parsed: Reference =
        reference
            .parse()
            .map_err(|err: oci_client::ParseError| PushError::BadReference {
                reference: reference.to_owned(),
                message: err.to_string(),
            })?;
    Ok(parsed.resolve_registry().to_owned())
}

fn parse_registry_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What a push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The reference as given.
    pub reference: String,
    /// Digest of the pushed manifest: `REPOSITORY@DIGEST` pulls exactly it.
    pub manifest_digest: String,
    /// Blobs uploaded, and blobs the repository already had.
    pub uploaded: usize,
    pub existing: usize,
}

/// Why a push failed. Each variant names the file, image or registry.
#[derive(thiserror::Error, Debug)]
pub enum PushError {
    #[error("invalid image reference {reference:?}: {message}")]
    BadReference { reference: String, message: String },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is not a Wasm component (it does not start with the Wasm magic bytes \\0asm)", path.display())]
    NotWasm { path: PathBuf },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("credentials for registry {registry}: {source}")]
    Credentials { registry: String, source: AuthError },
    #[error("cannot set up the registry client: {message}")]
    Client { message: String },
    #[error("cannot reach registry {registry}: {message}")]
    Unreachable { registry: String, message: String },
    #[error(
        "TLS connection to registry {registry} failed: {message} (if {registry} serves plain HTTP, push with --insecure or list it in {INSECURE_REGISTRY_ENV})"
    )]
    Tls { registry: String, message: String },
    #[error("not authorized to push {reference} to {registry}: {message}")]
    Unauthorized {
        reference: String,
        registry: String,
        message: String,
    },
    #[error("{message}: not pushed")]
    CorruptBlob { message: String },
    #[error("registry {registry} refused {what} of {reference}: {message}")]
    Registry {
        reference: String,
        registry: String,
        what: String,
        message: String,
    },
}

/// A blob to push: in memory, or a layout file streamed and verified.
enum Blob {
    Bytes(Bytes),
    File { path: PathBuf, size: u64 },
}

/// Pushes images to registries.
pub struct Pusher {
    insecure_registries: Vec<String>,
    docker_config: Option<PathBuf>,
    timeout: Duration,
}

impl Pusher {
    pub fn new(config: PushConfig) -> Self {
        install_crypto_provider();
        Self {
            insecure_registries: config.insecure_registries,
            docker_config: config
                .docker_config
                .or_else(super::auth::default_config_path),
            timeout: config.timeout,
        }
    }

    /// Pushes the component in `path` (see [`Pusher::push_wasm`]).
    pub async fn push_wasm_file(&self, path: &Path, reference: &str) -> Result<Pushed, PushError> {
        let read_err = |source| PushError::Read {
            path: path.to_owned(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(read_err)?;
        let mut wasm = Vec::new();
        file.take(MAX_WASM_BYTES + 1)
            .read_to_end(&mut wasm)
            .await
            .map_err(read_err)?;
        if wasm.len() as u64 > MAX_WASM_BYTES {
            return Err(read_err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("larger than {MAX_WASM_BYTES} bytes"),
            )));
        }
        if !wasm.starts_with(WASM_MAGIC) {
            return Err(PushError::NotWasm {
                path: path.to_owned(),
            });
        }
        self.push_wasm(wasm, reference).await
    }

    /// Pushes a component as a Wasm OCI artifact to `reference`
    /// (`registry/repository:tag`).
    pub async fn push_wasm(
        &self,
        wasm: impl Into<Bytes>,
        reference: &str,
    ) -> Result<Pushed, PushError> {
        let wasm: Bytes = wasm.into();
        let (config, manifest) = wasm_artifact(&wasm);
        let config_digest = sha256_digest(&config);
        let blobs = vec![
            (sha256_digest(&wasm), Blob::Bytes(wasm)),
            (config_digest, Blob::Bytes(config.into())),
        ];
        self.push_image(reference, blobs, manifest, OCI_IMAGE_MEDIA_TYPE)
            .await
    }

    /// Pushes the one image of the OCI image layout `dir` to `reference`,
    /// config, layers and manifest as they are.
    pub async fn push_layout(&self, dir: &Path, reference: &str) -> Result<Pushed, PushError> {
        let (layout, image) = {
            let dir = dir.to_owned();
            let read = tokio::task::spawn_blocking(move || {
                let layout = OciLayout::open(&dir)?;
                let image = layout.single_image()?;
                Ok::<_, LayoutError>((layout, image))
            });
            match read.await {
                Ok(result) => result?,
                Err(err) => std::panic::resume_unwind(err.into_panic()),
            }
        };
        let mut blobs = Vec::new();
        for layer in &image.manifest.layers {
            let size = u64::try_from(layer.size).map_err(|_| LayoutError::BadFile {
                path: dir.to_owned(),
                file: format!("manifest {}", image.manifest_digest),
                message: format!("layer {} has a negative size", layer.digest),
            })?;
            let path = layout.blob_path(&layer.digest)?;
            if !path.is_file() {
                return Err(LayoutError::Missing {
                    path: dir.to_owned(),
                    what: format!("blob {}", layer.digest),
                }
                .into());
            }
            blobs.push((layer.digest.clone(), Blob::File { path, size }));
        }
        let config = layout.read_blob(&image.manifest.config.digest, MAX_METADATA_BYTES)?;
        blobs.push((
            image.manifest.config.digest.clone(),
            Blob::Bytes(config.into()),
        ));
        self.push_image(
            reference,
            blobs,
            image.manifest_bytes,
            &image.manifest_media_type,
        )
        .await
    }

    /// Uploads the blobs the repository lacks, then the manifest.
    async fn push_image(
        &self,
        reference: &str,
        blobs: Vec<(String, Blob)>,
        manifest: Vec<u8>,
        manifest_media_type: &str,
    ) -> Result<Pushed, PushError> {
        let bad_reference = |message: String| PushError::BadReference {
            reference: reference.to_owned(),
            message,
        };
        let parsed: Reference = reference
            .parse()
            .map_err(|err: oci_client::ParseError| bad_reference(err.to_string()))?;
        if parsed.digest().is_some() {
            return Err(bad_reference(
                "push to a tag (REPOSITORY:TAG); the digest is the registry's answer".to_owned(),
            ));
        }
        let registry = parsed.resolve_registry().to_owned();
        let cx = Cx {
            reference,
            registry: &registry,
            timeout: self.timeout,
        };
        let auth =
            registry::credentials(self.docker_config.as_deref(), &registry).map_err(|source| {
                PushError::Credentials {
                    registry: registry.clone(),
                    source,
                }
            })?;
        let client = registry::client(&self.insecure_registries, self.timeout).map_err(|e| {
            PushError::Client {
                message: e.to_string(),
            }
        })?;
        // Authenticates for push up front: a refusal is reported as such
        // rather than as the first upload failing.
        cx.bounded(
            "authentication",
            client.auth(&parsed, &auth, RegistryOperation::Push),
        )
        .await?;

        let (mut uploaded, mut existing) = (0, 0);
        for (digest, blob) in blobs {
            let what = format!("blob {digest}");
            if cx
                .bounded(&what, client.blob_exists(&parsed, &digest))
                .await?
            {
                existing += 1;
                continue;
            }
            let result = match blob {
                Blob::Bytes(bytes) => client.push_blob(&parsed, bytes, &digest).await,
                Blob::File { path, size } => {
                    let file =
                        tokio::fs::File::open(&path)
                            .await
                            .map_err(|source| PushError::Read {
                                path: path.clone(),
                                source,
                            })?;
                    let stream = verified_chunks(file, digest.clone(), size);
                    client
                        .push_blob_stream(&parsed, stream, &digest, Some(size))
                        .await
                }
            };
            result.map_err(|err| cx.error(err, &what))?;
            uploaded += 1;
        }

        let content_type = manifest_media_type.parse().map_err(|_| PushError::Client {
            message: format!("invalid manifest media type {manifest_media_type:?}"),
        })?;
        let manifest_digest = sha256_digest(&manifest);
        cx.bounded(
            "the manifest",
            client.push_manifest_raw(&parsed, manifest, content_type),
        )
        .await?;
        Ok(Pushed {
            reference: reference.to_owned(),
            manifest_digest,
            uploaded,
            existing,
        })
    }
}

/// The config and manifest of a Wasm artifact holding `wasm`.
fn wasm_artifact(wasm: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let layer_digest = sha256_digest(wasm);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
    }))
    .expect("JSON values serialize");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MEDIA_TYPE,
        "config": {
            "mediaType": WASM_CONFIG_MEDIA_TYPE,
            "digest": sha256_digest(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": WASM_LAYER_MEDIA_TYPE,
            "digest": layer_digest,
            "size": wasm.len(),
        }],
    }))
    .expect("JSON values serialize");
    (config, manifest)
}

/// A layout file in chunks for upload, hashed as it goes: a file that is
/// not `size` bytes hashing to `digest` ends the stream with an error, so
/// the registry never commits it.
fn verified_chunks(
    file: tokio::fs::File,
    digest: String,
    size: u64,
) -> impl futures::Stream<Item = Result<Bytes, OciDistributionError>> + Send + 'static {
    struct State {
        file: tokio::fs::File,
        hasher: Sha256,
        read: u64,
        done: bool,
    }
    let state = State {
        file,
        hasher: Sha256::new(),
        read: 0,
        done: false,
    };
    futures::stream::try_unfold(state, move |mut state| {
        let digest = digest.clone();
        async move {
            if state.done {
                return Ok(None);
            }
            let mut buf = vec![0u8; CHUNK_BYTES];
            let mut filled = 0;
            while filled < buf.len() {
                let n = state.file.read(&mut buf[filled..]).await?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            buf.truncate(filled);
            state.hasher.update(&buf);
            state.read += filled as u64;
            if filled < CHUNK_BYTES || state.read > size {
                state.done = true;
                let actual = format!("sha256:{}", hex(&state.hasher.clone().finalize()));
                if state.read != size || actual != digest {
                    return Err(OciDistributionError::IoError(io::Error::new(
                        io::ErrorKind::InvalidData,
                        Corrupt(format!(
                            "layout blob {digest} ({size} bytes) has {} bytes hashing to {actual}",
                            state.read
                        )),
                    )));
                }
            }
            if buf.is_empty() {
                return Ok(None);
            }
            Ok(Some((Bytes::from(buf), state)))
        }
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A layout file that does not match its digest, inside the upload
/// stream's `io::Error`.
#[derive(Debug)]
struct Corrupt(String);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Corrupt {}

/// The image and registry errors are about.
struct Cx<'a> {
    reference: &'a str,
    registry: &'a str,
    timeout: Duration,
}

impl Cx<'_> {
    /// Runs one request under the timeout, mapping its error.
    async fn bounded<T>(
        &self,
        what: &str,
        request: impl Future<Output = Result<T, OciDistributionError>>,
    ) -> Result<T, PushError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(result) => result.map_err(|err| self.error(err, what)),
            Err(_) => Err(PushError::Unreachable {
                registry: self.registry.to_owned(),
                message: format!("no answer for {what} within {:?}", self.timeout),
            }),
        }
    }

    fn error(&self, err: OciDistributionError, what: &str) -> PushError {
        if let OciDistributionError::IoError(io_err) = &err
            && let Some(corrupt) = io_err.get_ref().and_then(|e| e.downcast_ref::<Corrupt>())
        {
            return PushError::CorruptBlob {
                message: corrupt.to_string(),
            };
        }
        match registry::classify(&err) {
            Problem::Tls(message) => PushError::Tls {
                registry: self.registry.to_owned(),
                message,
            },
            Problem::Unreachable(message) => PushError::Unreachable {
                registry: self.registry.to_owned(),
                message,
            },
            Problem::Unauthorized(message) => PushError::Unauthorized {
                reference: self.reference.to_owned(),
                registry: self.registry.to_owned(),
                message,
            },
            Problem::NotFound(message) | Problem::Failed(message) => PushError::Registry {
                reference: self.reference.to_owned(),
                registry: self.registry.to_owned(),
                what: what.to_owned(),
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::kind::{ArtifactKind, classify};
    use futures::TryStreamExt;

    #[test]
    fn wasm_artifact_is_classified_as_wasm() {
        let wasm = b"\0asm\x0d\0\x01\0component";
        let (config, manifest) = wasm_artifact(wasm);
        let manifest: oci_client::manifest::OciImageManifest =
            serde_json::from_slice(&manifest).unwrap();
        assert_eq!(manifest.config.media_type, WASM_CONFIG_MEDIA_TYPE);
        assert_eq!(manifest.config.digest, sha256_digest(&config));
        assert_eq!(
            classify(&manifest).unwrap(),
            ArtifactKind::Wasm {
                layer_digest: sha256_digest(wasm)
            }
        );
        let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(config["layerDigests"][0], sha256_digest(wasm));
    }

    #[test]
    fn registry_list_from_env_syntax() {
        assert_eq!(
            parse_registry_list(" a:5000, ,b:1 ,"),
            ["a:5000".to_owned(), "b:1".to_owned()]
        );
        assert!(parse_registry_list("").is_empty());
    }

    async fn chunks_of(bytes: &[u8], digest: &str, size: u64) -> Result<Vec<Bytes>, String> {
        let dir = std::env::temp_dir().join(format!(
            "atoll-push-chunks-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::write(&dir, bytes).unwrap();
        let file = tokio::fs::File::open(&dir).await.unwrap();
        let result = verified_chunks(file, digest.to_owned(), size)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|err| err.to_string());
        std::fs::remove_file(&dir).unwrap();
        result
    }

    #[tokio::test]
    async fn streamed_blobs_are_verified() {
        let data = vec![7u8; CHUNK_BYTES + 10];
        let digest = sha256_digest(&data);
        let chunks = chunks_of(&data, &digest, data.len() as u64).await.unwrap();
        assert_eq!(
            chunks.iter().map(Bytes::len).collect::<Vec<_>>(),
            [CHUNK_BYTES, 10]
        );
        // Exactly one chunk long: no empty chunk at the end.
        let one = vec![1u8; CHUNK_BYTES];
        let chunks = chunks_of(&one, &sha256_digest(&one), one.len() as u64)
            .await
            .unwrap();
        assert_eq!(chunks.len(), 1);

        let err = chunks_of(b"tampered", &digest, 8).await.unwrap_err();
        assert!(err.contains(&digest), "{err}");
        let err = chunks_of(&data, &digest, 5).await.unwrap_err();
        assert!(err.contains("5 bytes"), "{err}");
    }
}
