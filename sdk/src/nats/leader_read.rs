//! Reading a key from its stream's leader. A KV `get` is a direct get that
//! any replica may answer, and one that is behind answers with an old value
//! for as long as it lags (after a NATS node came back, or under load).
//! Decisions that must see the last write — a compare-and-set's expected
//! revision, who holds the lease — read here instead.

use async_nats::jetstream::kv;
use async_nats::jetstream::stream::{LastRawMessageError, LastRawMessageErrorKind};
use futures::StreamExt;

/// A key's last value as the stream's leader has it.
#[derive(Debug, Clone)]
pub struct LeaderEntry {
    pub value: bytes::Bytes,
    /// The KV revision (the stream sequence) that wrote it.
    pub revision: u64,
    pub created: time::OffsetDateTime,
}

/// The last value of `key` in `kv`; none when it was never written or its
/// last operation deleted or purged it.
pub async fn leader_entry(
    kv: &kv::Store,
    key: &str,
) -> Result<Option<LeaderEntry>, LastRawMessageError> {
    leader_entry_of(kv, &format!("{}{key}", kv.prefix)).await
}

/// [`leader_entry`] by the key's whole subject (`$KV.<bucket>.<key>`), as
/// listing subjects returns them.
pub async fn leader_entry_of(
    kv: &kv::Store,
    subject: &str,
) -> Result<Option<LeaderEntry>, LastRawMessageError> {
    match kv.stream.get_last_raw_message_by_subject(subject).await {
        Ok(msg) => {
            let op = msg.headers.get("KV-Operation").map(|v| v.as_str());
            let put = !matches!(op, Some("DEL" | "PURGE"));
            Ok(put.then_some(LeaderEntry {
                value: msg.payload,
                revision: msg.sequence,
                created: msg.time,
            }))
        }
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A listing of keys could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ListError(String);

/// Every key under `prefix` in `kv` (in subject order) with its last
/// value, as the stream's leader has them; deleted keys left out. The
/// subjects come from the stream's info, not a keys consumer (which any
/// replica may serve).
pub async fn leader_entries(
    kv: &kv::Store,
    prefix: &str,
) -> Result<Vec<(String, LeaderEntry)>, ListError> {
    let filter = format!("{}{prefix}>", kv.prefix);
    let found =
        (kv.stream.info_with_subjects(filter).await).map_err(|e| ListError(e.to_string()))?;
    let mut subjects: Vec<String> = (found.filter_map(|s| async move { s.ok().map(|(s, _)| s) }))
        .collect()
        .await;
    subjects.sort();
    let mut out = Vec::new();
    for subject in subjects {
        let entry = leader_entry_of(kv, &subject)
            .await
            .map_err(|e| ListError(e.to_string()))?;
        if let (Some(entry), Some(key)) = (entry, subject.strip_prefix(kv.prefix.as_str())) {
            out.push((key.to_string(), entry));
        }
    }
    Ok(out)
}
