//! Reading a key from its stream's leader. A KV `get` is a direct get that
//! any replica may answer, and one that is behind answers with an old value
//! for as long as it lags (after a NATS node came back, or under load).
//! Decisions that must see the last write — a compare-and-set's expected
//! revision, who holds the lease — read here instead.

use async_nats::jetstream::kv;
use async_nats::jetstream::stream::{LastRawMessageError, LastRawMessageErrorKind};

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
