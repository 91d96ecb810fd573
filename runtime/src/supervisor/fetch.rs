//! Getting an instance's artifact onto the host: a component from the
//! cluster's object store, or an image from its registry (or the host's
//! store). Retried with backoff until it arrives — the store or registry
//! may be briefly unreachable, and the slot's task is aborted if the
//! instance is unassigned meanwhile — each failure shown as the instance's
//! reason, a pull's progress in its slot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atoll_sdk::cluster::{ArtifactRef, InstanceSpec, InstanceState, PullBytes};

use super::Supervisor;
use crate::artifacts::Artifacts;
use crate::driver::Artifact;
use crate::file_values::FileValues;
use crate::oci::kind::ArtifactKind;
use crate::oci::pull::{PullProgress, PulledImage, Puller};

/// Longest wait between pull attempts.
const MAX_PULL_BACKOFF: Duration = Duration::from_secs(30);
/// Longest wait between attempts to fetch a component from the store.
const MAX_FETCH_BACKOFF: Duration = Duration::from_secs(15);
/// Largest Wasm layer read into memory.
const MAX_WASM_BYTES: u64 = 256 << 20;

/// Why an artifact can never be had here.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("image {reference}: {source}")]
    WasmLayer {
        reference: String,
        source: crate::oci::store::StoreError,
    },
}

/// Where artifacts come from.
pub(crate) struct Sources {
    /// Components uploaded with their app (the object store).
    pub artifacts: Artifacts,
    /// Images from registries and the host's image store.
    pub puller: Arc<Puller>,
    /// The values of the secrets and configs instances mount.
    pub files: Arc<FileValues>,
}

/// Exponential backoff with jitter (up to half the delay), for retries
/// that must not hammer what failed.
struct Backoff {
    delay: Duration,
    max: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { delay: first, max }
    }

    /// How long the next wait will be at least.
    fn delay(&self) -> Duration {
        self.delay
    }

    async fn wait(&mut self) {
        let half = self.delay.as_millis() as u64 / 2;
        let jitter = Duration::from_millis(rand::random::<u64>() % (half + 1));
        tokio::time::sleep(self.delay + jitter).await;
        self.delay = (self.delay * 2).min(self.max);
    }
}

impl Supervisor {
    /// The instance's artifact, once it arrived; `Err` (why) when it never
    /// can: an image's Wasm layer that cannot be read.
    pub(super) async fn fetch(&self, spec: &InstanceSpec) -> Result<Artifact, FetchError> {
        let artifact = self.fetch_artifact(spec).await?;
        self.fetch_files(spec).await;
        Ok(artifact)
    }

    /// Waits until the values of the secrets and configs `spec` mounts
    /// are here, asking a server again with backoff.
    async fn fetch_files(&self, spec: &InstanceSpec) {
        let mut backoff = Backoff::new(Duration::from_millis(250), MAX_FETCH_BACKOFF);
        loop {
            match self.sources.files.fetch(spec).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(instance = %spec.id, error = %e, "secrets not fetched; retrying");
                    self.set(&spec.id, InstanceState::Pulling, Some(e));
                }
            }
            backoff.wait().await;
        }
    }

    async fn fetch_artifact(&self, spec: &InstanceSpec) -> Result<Artifact, FetchError> {
        match &spec.artifact {
            ArtifactRef::Stored(digest) => {
                let bytes = self.fetch_component(&spec.id, digest).await;
                let digest = digest.clone();
                Ok(Artifact::Component { digest, bytes })
            }
            ArtifactRef::Image(reference) => {
                let image = self.pull(spec, reference).await;
                match &image.kind {
                    // A component published as an OCI artifact.
                    ArtifactKind::Wasm { layer_digest } => {
                        let store = self.sources.puller.store();
                        match store.read(layer_digest, MAX_WASM_BYTES).await {
                            Ok(bytes) => Ok(Artifact::Component {
                                digest: layer_digest.clone(),
                                bytes,
                            }),
                            Err(source) => Err(FetchError::WasmLayer {
                                reference: reference.clone(),
                                source,
                            }),
                        }
                    }
                    ArtifactKind::Container => Ok(Artifact::Image(Box::new(image))),
                }
            }
        }
    }

    async fn fetch_component(&self, id: &str, digest: &str) -> Vec<u8> {
        let mut backoff = Backoff::new(Duration::from_millis(250), MAX_FETCH_BACKOFF);
        loop {
            self.set(id, InstanceState::Pulling, None);
            match self.sources.artifacts.get(digest).await {
                Ok(b) => return b,
                Err(e) => {
                    tracing::warn!(instance = id, error = %e, "artifact fetch failed; retrying");
                    self.set(id, InstanceState::Failed, Some(e.to_string()));
                }
            }
            backoff.wait().await;
        }
    }

    async fn pull(&self, spec: &InstanceSpec, reference: &str) -> PulledImage {
        let mut backoff = Backoff::new(Duration::from_millis(500), MAX_PULL_BACKOFF);
        loop {
            self.set(&spec.id, InstanceState::Pulling, None);
            let layers = std::sync::Mutex::new(Vec::<(u64, u64)>::new());
            let last_log = std::sync::Mutex::new(Instant::now());
            let progress = |p: PullProgress| {
                let mut l = layers.lock().unwrap_or_else(|e| e.into_inner());
                l.resize(p.layers, (0, 0));
                if let Some(slot) = l.get_mut(p.layer) {
                    *slot = (p.bytes, p.total);
                }
                let (done, total) = l.iter().fold((0, 0), |(d, t), (b, s)| (d + b, t + s));
                self.update(&spec.id, |slot| slot.pull = Some(PullBytes { done, total }));
                // The host log shows a long pull going, about once a second.
                let mut last = last_log.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= Duration::from_secs(1) {
                    *last = Instant::now();
                    tracing::info!(instance = %spec.id, image = reference, done, total, layer = p.layer + 1, layers = p.layers, "pulling");
                }
            };
            let started = Instant::now();
            match self.sources.puller.pull(reference, progress).await {
                Ok(image) => {
                    tracing::info!(instance = %spec.id, image = reference, elapsed = ?started.elapsed(), "pulled");
                    self.update(&spec.id, |slot| slot.pull = None);
                    return image;
                }
                Err(e) => {
                    tracing::warn!(instance = %spec.id, error = %e, retry_in = ?backoff.delay(), "pull failed");
                    self.set(&spec.id, InstanceState::Failed, Some(e.to_string()));
                }
            }
            backoff.wait().await;
        }
    }
}
