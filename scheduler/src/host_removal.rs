//! An operator retires a host that is down (`atoll hosts rm`): it is
//! recorded in the removed-hosts bucket, so that its instances — those
//! with named volumes too, whose data stays behind — are placed elsewhere.
//! A host that is up is refused: it must be stopped first, or its
//! instances would keep running there. A host that starts after its
//! removal is a new host (see [`crate::snapshot::drop_removed`]).

use crate::cluster::Cluster;
use async_nats::jetstream::kv;
use atoll_sdk::protocol::{RemovedHost, now_ms};

#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoveHostError {
    #[error("no host named {host}")]
    NoHost { host: String },
    #[error("host {host} is up: stop it first (its instances would keep running there)")]
    Up { host: String },
    #[error("encoding: {source}")]
    Encode { source: serde_json::Error },
    #[error("recording the removal: {source}")]
    Record { source: kv::PutError },
}

/// Removes the host named `host`; how many instances it had, which the
/// controller now places elsewhere.
pub(crate) async fn remove_host(cluster: &Cluster, host: &str) -> Result<usize, RemoveHostError> {
    let snap = cluster.snapshot();
    let Some(found) = snap.host(host) else {
        let host = host.to_string();
        return Err(RemoveHostError::NoHost { host });
    };
    if found.is_ready() {
        let host = host.to_string();
        return Err(RemoveHostError::Up { host });
    }
    let record = RemovedHost {
        name: host.to_string(),
        removed_at_ms: now_ms(),
    };
    let bytes = serde_json::to_vec(&record).map_err(|source| RemoveHostError::Encode { source })?;
    (cluster.buckets.removed_hosts.put(host, bytes.into()).await)
        .map_err(|source| RemoveHostError::Record { source })?;
    cluster
        .wait_for_mirror(|c| c.removed_hosts.get(host).is_some())
        .await;
    // The controller re-places what ran there.
    cluster.wake_controller();
    let moved = snap.assignments.get(host).map_or(0, |a| a.instances.len());
    let msg = format!("host {host} removed; {moved} instance(s) to place elsewhere");
    cluster.publish_event("host-removed", None, msg).await;
    Ok(moved)
}
