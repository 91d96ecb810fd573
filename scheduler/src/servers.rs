//! The servers of a cluster, for `atoll servers`: each one keeps a record
//! of itself (`server.<name>`: its name and API address) in the lease
//! bucket, rewritten every quarter of the lease's TTL, so a server that
//! stopped drops out with the bucket's max age. The leader, its epoch and
//! the age of its last renewal come from the lease key itself.

use async_nats::jetstream::kv;
use atoll_sdk::api::ServerView;
use atoll_sdk::nats::{leader_entries, leader_entry};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const PREFIX: &str = "server.";

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    name: String,
    address: String,
}

/// Keeps this server's record fresh, until aborted.
pub(crate) async fn register(kv: kv::Store, name: String, address: String, ttl: Duration) {
    let key = format!("{PREFIX}{name}");
    let record = Record { name, address };
    let Ok(bytes) = serde_json::to_vec(&record) else {
        return;
    };
    loop {
        if let Err(e) = kv.put(&key, bytes.clone().into()).await {
            tracing::debug!(error = %e, "cannot write this server's record");
        }
        tokio::time::sleep(ttl / 4).await;
    }
}

/// Every server with a fresh record, the leader marked. Read from the
/// stream's leader, not with a direct get or a keys consumer: any replica
/// may answer those, and one that is behind shows the old leader (or no
/// leader) for as long as it lags.
pub(crate) async fn list(kv: &kv::Store) -> Vec<ServerView> {
    let lease = leader_entry(kv, "controller").await.ok().flatten();
    let held = (lease.as_ref()).map(|e| crate::lease::read(&e.value, e.revision));
    let now = time::OffsetDateTime::now_utc();
    let age = |at: time::OffsetDateTime| (now - at).whole_milliseconds().max(0) as u64;
    let records = leader_entries(kv, PREFIX).await.unwrap_or_default();
    let mut out = Vec::new();
    for (_, entry) in records {
        let Ok(record) = serde_json::from_slice::<Record>(&entry.value) else {
            continue;
        };
        let leads = (held.as_ref()).is_some_and(|h| h.holder.as_deref() == Some(&record.name));
        let (epoch, age_ms) = match (&lease, &held) {
            (Some(l), Some(h)) if leads => (h.epoch, age(l.created)),
            _ => (0, age(entry.created)),
        };
        out.push(ServerView {
            name: record.name,
            address: record.address,
            leader: leads,
            epoch,
            age_ms,
        });
    }
    out
}
