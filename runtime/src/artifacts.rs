//! Fetching artifacts: a host keeps each component it has run under its
//! data dir by digest, and fetches missing ones from the cluster's object
//! store, checking the digest before it trusts the bytes. A host that has
//! not reached NATS yet runs what it has on disk.

use crate::joined::Joined;
use async_nats::jetstream::object_store::ObjectStore;
use atoll_sdk::digest;
use atoll_sdk::protocol::artifact_object_name;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Bound on one fetch from the object store.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fetch waits for the host to reach NATS before it reports
/// that it cannot (and is retried).
const JOIN_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact {digest} is not in the cluster's artifact store: {message}")]
    Missing { digest: String, message: String },
    #[error("fetching artifact {digest} failed: {message}")]
    Fetch { digest: String, message: String },
    #[error("artifact {digest} is not on this host and NATS is not reachable yet")]
    Offline { digest: String },
    #[error("artifact {digest} failed its digest check (got {actual})")]
    Corrupt { digest: String, actual: String },
}

pub struct Artifacts {
    dir: PathBuf,
    store: Joined<ObjectStore>,
}

impl Artifacts {
    pub fn new(dir: PathBuf, store: Joined<ObjectStore>) -> Artifacts {
        Artifacts { dir, store }
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(artifact_object_name(digest))
    }

    /// The artifact's bytes, from disk when this host has it.
    pub async fn get(&self, digest_str: &str) -> Result<Vec<u8>, ArtifactError> {
        if let Ok(bytes) = tokio::fs::read(self.path(digest_str)).await {
            if digest::sha256(&bytes) == digest_str {
                return Ok(bytes);
            }
            tracing::warn!(
                digest = digest_str,
                "cached artifact is corrupt; fetching it again"
            );
        }
        let bytes = tokio::time::timeout(FETCH_TIMEOUT, self.fetch(digest_str))
            .await
            .map_err(|_| ArtifactError::Fetch {
                digest: digest_str.to_string(),
                message: format!("timed out after {FETCH_TIMEOUT:?}"),
            })??;
        let actual = digest::sha256(&bytes);
        if actual != digest_str {
            return Err(ArtifactError::Corrupt {
                digest: digest_str.to_string(),
                actual,
            });
        }
        self.keep(digest_str, &bytes).await;
        Ok(bytes)
    }

    async fn fetch(&self, digest_str: &str) -> Result<Vec<u8>, ArtifactError> {
        let store = (self.store.within(JOIN_WAIT).await).ok_or_else(|| ArtifactError::Offline {
            digest: digest_str.to_string(),
        })?;
        let mut object = store
            .get(artifact_object_name(digest_str))
            .await
            .map_err(|e| ArtifactError::Missing {
                digest: digest_str.to_string(),
                message: e.to_string(),
            })?;
        let mut bytes = Vec::new();
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| ArtifactError::Fetch {
                digest: digest_str.to_string(),
                message: e.to_string(),
            })?;
        Ok(bytes)
    }

    /// Writes atomically (temp file + rename) so a crash never leaves a
    /// half-written artifact under its final name.
    async fn keep(&self, digest_str: &str, bytes: &[u8]) {
        let path = self.path(digest_str);
        // A unique temporary name: several instances may fetch the same
        // artifact at once.
        let tmp = path.with_extension(format!("part-{:x}", rand::random::<u64>()));
        let result = async {
            tokio::fs::create_dir_all(&self.dir).await?;
            tokio::fs::write(&tmp, bytes).await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(digest = digest_str, error = %e, "cannot cache artifact on disk");
        }
    }
}
