//! Compare-and-set writes to a KV bucket: create a key that must not exist
//! yet, or update one at the revision it was read at. A write that lost a
//! race fails instead of overwriting; the caller reads again and decides
//! again. Desired state (apps) and assignments are only written this way.

use async_nats::jetstream::kv;
use bytes::Bytes;

/// A compare-and-set write the bucket refused (the key changed since it
/// was read) or could not take.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CasError {
    #[error(transparent)]
    Create(#[from] kv::CreateError),
    /// Also what a compare-and-delete fails with (the same error type).
    #[error(transparent)]
    Update(#[from] kv::UpdateError),
}

impl CasError {
    /// Whether the key had changed (a lost race), rather than the bucket
    /// not answering (JetStream electing a stream leader after a node
    /// loss, NATS away): only the latter is worth the same write again.
    pub(crate) fn is_conflict(&self) -> bool {
        match self {
            CasError::Create(e) => e.kind() == kv::CreateErrorKind::AlreadyExists,
            CasError::Update(e) => e.kind() == kv::UpdateErrorKind::WrongLastRevision,
        }
    }
}

/// Writes `value` at `key` if the key is still at `expected` (`None`: the
/// key must not exist); the new KV revision.
pub(crate) async fn compare_and_set(
    store: &kv::Store,
    key: &str,
    value: Bytes,
    expected: Option<u64>,
) -> Result<u64, CasError> {
    match expected {
        Some(revision) => Ok(store.update(key, value, revision).await?),
        None => Ok(store.create(key, value).await?),
    }
}

/// Deletes `key` if it is still at `expected`.
pub(crate) async fn compare_and_delete(
    store: &kv::Store,
    key: &str,
    expected: Option<u64>,
) -> Result<(), CasError> {
    Ok(store.delete_expect_revision(key, expected).await?)
}
