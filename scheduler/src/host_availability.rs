//! An operator cordons, drains or uncordons a host (`atoll hosts cordon`,
//! `drain`, `uncordon`): recorded in the availability bucket, which the
//! controller reads into each host's snapshot. Placement then skips the
//! host; a drain also has reconciliation replace what runs there (see
//! `reconcile::decide`; services with named volumes only when the drain
//! says so). `Active` removes the record.

use crate::cluster::Cluster;
use async_nats::jetstream::kv;
use atoll_sdk::api::AvailabilityRequest;
use atoll_sdk::cluster::InstanceSpec;
use atoll_sdk::protocol::{Availability, HostAvailability, now_ms};
use atoll_sdk::spec::any_named;

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

/// What a host runs, as a change of its availability reports it.
#[derive(Debug, PartialEq)]
pub(crate) struct Found {
    pub instances: usize,
    /// `APP/SERVICE` of each service with named volumes that runs there.
    pub volume_services: Vec<String>,
}

impl Found {
    /// What `instances` (a host's assignment) are.
    pub(crate) fn of(instances: &[InstanceSpec]) -> Found {
        let mut volume_services: Vec<String> = (instances.iter())
            .filter(|i| any_named(&i.volumes))
            .map(|i| format!("{}/{}", i.app, i.service))
            .collect();
        volume_services.sort();
        volume_services.dedup();
        Found {
            instances: instances.len(),
            volume_services,
        }
    }
}

/// Sets the availability of `host` (with `dry_run`, changes nothing);
/// what it runs now.
pub(crate) async fn set(
    cluster: &Cluster,
    host: &str,
    req: &AvailabilityRequest,
) -> Result<Found, AvailabilityError> {
    let snap = cluster.snapshot();
    if snap.host(host).is_none() {
        let host = host.to_string();
        return Err(AvailabilityError::NoHost { host });
    }
    let found = Found::of(snap.assignments.get(host).map_or(&[][..], |a| &a.instances));
    if req.dry_run {
        return Ok(found);
    }
    let availability = req.availability;
    // Only a drain moves anything.
    let volumes = req.volumes && availability == Availability::Draining;
    let bucket = &cluster.buckets.availability;
    if availability == Availability::Active {
        (bucket.purge(host).await).map_err(|source| AvailabilityError::Clear { source })?;
    } else {
        let record = HostAvailability {
            name: host.to_string(),
            availability,
            volumes,
            since_ms: now_ms(),
        };
        let bytes =
            serde_json::to_vec(&record).map_err(|source| AvailabilityError::Encode { source })?;
        (bucket.put(host, bytes.into()).await)
            .map_err(|source| AvailabilityError::Record { source })?;
    }
    cluster
        .wait_for_mirror(|c| {
            let now = c.availability.get(host).map(|r| r.value.clone());
            let now = now.map_or((Availability::Active, false), |r| {
                (r.availability, r.volumes)
            });
            now == (availability, volumes)
        })
        .await;
    cluster.wake_controller();
    let running = found.instances;
    let msg = match availability {
        Availability::Active => format!("host {host} takes new instances again"),
        Availability::Cordoned => {
            format!("host {host} cordoned: no new instances; its {running} stay")
        }
        Availability::Draining if volumes && !found.volume_services.is_empty() => format!(
            "host {host} draining: its {running} instance(s) move to other hosts, {} with an empty volume (the data stays on {host})",
            found.volume_services.join(", ")
        ),
        Availability::Draining => {
            format!("host {host} draining: its {running} instance(s) move to other hosts")
        }
    };
    cluster.publish_event("host-availability", None, msg).await;
    Ok(found)
}
