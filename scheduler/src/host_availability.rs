//! An operator cordons, drains or uncordons a host (`atoll hosts cordon`,
//! `drain`, `uncordon`): recorded in the availability bucket, which the
//! controller reads into each host's snapshot. Placement then skips the
//! host; a drain also has reconciliation replace what runs there (see
//! `reconcile::decide`). `Active` removes the record.

use crate::cluster::Cluster;
use async_nats::jetstream::kv;
use atoll_sdk::protocol::{Availability, HostAvailability, now_ms};

#[derive(Debug, thiserror::Error)]
pub(crate) enum AvailabilityError {
    #[error("no host named {host} (atoll hosts lists them)")]
    NoHost { host: String },
    #[error("encoding: {source}")]
    Encode { source: serde_json::Error },
    #[error("recording it: {source}")]
    Record { source: kv::PutError },
    #[error("recording it: {source}")]
    Clear { source: kv::PurgeError },
}

/// Sets the availability of `host`; how many instances it runs now.
pub(crate) async fn set(
    cluster: &Cluster,
    host: &str,
    availability: Availability,
) -> Result<usize, AvailabilityError> {
    let snap = cluster.snapshot();
    if snap.host(host).is_none() {
        let host = host.to_string();
        return Err(AvailabilityError::NoHost { host });
    }
    let bucket = &cluster.buckets.availability;
    if availability == Availability::Active {
        (bucket.purge(host).await).map_err(|source| AvailabilityError::Clear { source })?;
    } else {
        let record = HostAvailability {
            name: host.to_string(),
            availability,
            since_ms: now_ms(),
        };
        let bytes =
            serde_json::to_vec(&record).map_err(|source| AvailabilityError::Encode { source })?;
        (bucket.put(host, bytes.into()).await)
            .map_err(|source| AvailabilityError::Record { source })?;
    }
    cluster
        .wait_for_mirror(|c| {
            let now = c.availability.get(host).map(|r| r.value.availability);
            now.unwrap_or_default() == availability
        })
        .await;
    cluster.wake_controller();
    let running = snap.assignments.get(host).map_or(0, |a| a.instances.len());
    let msg = match availability {
        Availability::Active => format!("host {host} takes new instances again"),
        Availability::Cordoned => {
            format!("host {host} cordoned: no new instances; its {running} stay")
        }
        Availability::Draining => {
            format!("host {host} draining: its {running} instance(s) move to other hosts")
        }
    };
    cluster.publish_event("host-availability", None, msg).await;
    Ok(running)
}
