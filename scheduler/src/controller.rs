//! The controller: the I/O shell around [`crate::reconcile`]. On every
//! change (a deploy, a heartbeat that moved something, a host lost) and at
//! least once a second, the leader reads a snapshot, computes a plan, and
//! writes what changed: service endpoints, host assignments
//! (compare-and-set) and app statuses; then it publishes the plan's events
//! and rolls back updates that failed. What to write besides the
//! assignments is decided as data first ([`writes`]).

mod guard;
mod writes;

use crate::cas::{CasError, compare_and_delete, compare_and_set};
use crate::cluster::Cluster;
use crate::lease::fence::Fenced;
use crate::lost_state::{self, Verdict};
use crate::reconcile::{Plan, reconcile};
use crate::snapshot::Snapshot;
use async_nats::jetstream::kv;
use atoll_sdk::nats::{MirrorView, Versioned};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use writes::KeyChanges;

/// Why a pass stopped; the next one decides again from what is there.
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error("encoding {bucket} {key}: {source}")]
    Encode {
        bucket: &'static str,
        key: String,
        source: serde_json::Error,
    },
    /// Someone else wrote it first (a previous leader, or our mirror
    /// lags): the next pass sees the new value and decides again.
    #[error("{bucket} {key} changed under us: {source}")]
    Changed {
        bucket: &'static str,
        key: String,
        source: CasError,
    },
    /// The lease may have gone: nothing more is written.
    #[error(transparent)]
    Fenced(#[from] Fenced),
}

/// Runs forever: reconciles while this server holds the lease (renewed by
/// its own task, see [`crate::lease::run`]), and says when that changes.
pub(crate) async fn run(cluster: Arc<Cluster>, server_name: String) {
    let mut apps_changed = cluster.apps.changes();
    // A CAS conflict is retried as soon as the mirror shows the new value.
    let mut assignments_changed = cluster.assignments.changes();
    let mut fence_changed = cluster.fence_changes();
    let mut leading = false;
    // Why the last pass held (mass loss), to say when that changes.
    let mut held: Option<String> = None;
    // Whether desired state was lost (followers watch too: one that comes
    // to lead knows what the bucket held), and what the leader said of it.
    let mut state = lost_state::Watch::default();
    let mut lost: Option<String> = None;
    let mut said_lost: Option<String> = None;
    loop {
        let fence = cluster.fence();
        if fence.leading() != leading {
            leading = fence.leading();
            let what = match fence.epoch() {
                Some(epoch) => format!("is now the leader (epoch {epoch})"),
                None => "is a follower".to_string(),
            };
            let msg = format!("server {server_name} {what}");
            cluster.publish_event("leader", None, msg).await;
        }
        // What runs: reported by hosts, or assigned to silent ones.
        let assigned: usize = (cluster.assignments.all().values())
            .map(|a| a.value.instances.len())
            .sum();
        let running = cluster.observed().instance_count().max(assigned);
        match state.judge(guard::apps_stream(&cluster).await, running) {
            Verdict::Go => lost = None,
            Verdict::Hold(why) => lost = Some(why),
            Verdict::Unchanged => {}
        }
        cluster.telemetry.set_state_lost(lost.is_some());
        if leading && said_lost != lost {
            announce_lost(&cluster, lost.as_deref()).await;
            said_lost.clone_from(&lost);
        }
        if leading && lost.is_none() && cluster.settled() && !importing(&cluster) {
            let started = Instant::now();
            // Taken after the bucket was judged (and the import checked): a
            // bucket made anew since shows in the mirror only after its
            // watch breaks, seconds later, and is judged on the next pass.
            match pass(&cluster, cluster.snapshot()).await {
                Ok(hold) => announce_hold(&cluster, &mut held, hold).await,
                Err(PassError::Fenced(why)) => tracing::warn!(%why, "not writing"),
                Err(e) => tracing::warn!(error = %e, "reconcile pass failed; retrying"),
            }
            cluster.telemetry.reconciled(started.elapsed());
            tracing::debug!(took = ?started.elapsed(), "reconcile pass");
        }
        tokio::select! {
            _ = apps_changed.changed() => {}
            _ = assignments_changed.changed() => {}
            _ = fence_changed.changed() => {}
            _ = cluster.controller_woken() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Whether an import is writing an app's history: the controller waits
/// for its last revision rather than rolling out each one on the way
/// (bounded by [`atoll_sdk::protocol::IMPORT_WAIT_MS`]).
fn importing(cluster: &Cluster) -> bool {
    let now = atoll_sdk::protocol::now_ms();
    (cluster.apps.all().values()).any(|v| v.value.is_importing(now))
}

/// Says when the controller starts or stops holding.
async fn announce_hold(cluster: &Cluster, held: &mut Option<String>, now: Option<String>) {
    if *held == now {
        return;
    }
    let msg = match &now {
        Some(why) => format!("mass loss: holding, nothing is taken off silent hosts: {why}"),
        None => "mass loss: over, silent hosts are judged again".to_string(),
    };
    cluster.publish_event("mass-loss", None, msg).await;
    *held = now;
}

/// Says when desired state is found lost, and when that is over.
async fn announce_lost(cluster: &Cluster, why: Option<&str>) {
    let msg = match why {
        Some(why) => format!("desired state lost: holding, nothing is written: {why}"),
        None => "desired state is back: reconciling again".to_string(),
    };
    match why {
        Some(_) => tracing::error!("{msg}"),
        None => tracing::info!("{msg}"),
    }
    cluster.publish_event("state-lost", None, msg).await;
}

/// One reconcile pass over `snap`; why it held, if it did. Every write is fenced: the
/// lease is checked before it, and it is a compare-and-set against what
/// the pass read. Errors leave the rest for the next pass: every step is
/// idempotent.
async fn pass(cluster: &Cluster, snap: Snapshot) -> Result<Option<String>, PassError> {
    let hold = snap.hold.clone();
    let plan = reconcile(&snap, &mut new_instance_id);
    let after = writes::after(snap, &plan);
    let statuses = values(cluster.statuses.all());
    let endpoints = values(cluster.endpoints.all());
    let w = writes::decide(&after, &plan, &statuses, &endpoints);
    // Endpoints first: gateways stop routing to the instances this plan
    // stops before their hosts hear of it, so no request meets an
    // instance that is already gone (new instances join once ready).
    write_keys(
        cluster,
        &cluster.buckets.endpoints,
        &cluster.endpoints,
        "endpoints",
        &w.endpoints,
    )
    .await?;
    write_assignments(cluster, &plan).await?;
    write_keys(
        cluster,
        &cluster.buckets.status,
        &cluster.statuses,
        "status",
        &w.statuses,
    )
    .await?;
    cluster.telemetry.placed(w.placed);
    for e in w.events {
        cluster.publish_event(e.kind, Some(&e.app), e.message).await;
    }
    cluster.fence().check(Instant::now())?;
    roll_back(cluster, &w.rollbacks).await;
    Ok(hold)
}

fn values<V>(mirrored: BTreeMap<String, Versioned<V>>) -> BTreeMap<String, V> {
    mirrored.into_iter().map(|(k, v)| (k, v.value)).collect()
}

fn encode<V: Serialize>(
    bucket: &'static str,
    key: &str,
    value: &V,
) -> Result<bytes::Bytes, PassError> {
    let bytes = serde_json::to_vec(value).map_err(|source| PassError::Encode {
        bucket,
        key: key.to_string(),
        source,
    })?;
    Ok(bytes.into())
}

/// Each changed host's assignment, stamped with the lease's epoch, written
/// if the key is still at the revision the pass read.
async fn write_assignments(cluster: &Cluster, plan: &Plan) -> Result<(), PassError> {
    let kv = &cluster.buckets.assignments;
    for (host, assignment) in &plan.assignments {
        let epoch = cluster.fence().check(Instant::now())?;
        let mut stamped = assignment.clone();
        stamped.epoch = epoch;
        let bytes = encode("assignment", host, &stamped)?;
        let expected = cluster.assignments.get(host).map(|a| a.revision);
        (compare_and_set(kv, host, bytes, expected).await).map_err(|source| {
            let key = host.clone();
            PassError::Changed {
                bucket: "assignment",
                key,
                source,
            }
        })?;
    }
    Ok(())
}

/// Puts, then deletes, the keys of a bucket that `changes` names, each if
/// the key is still at the revision its mirror shows.
async fn write_keys<V: Serialize + Clone>(
    cluster: &Cluster,
    kv: &kv::Store,
    mirror: &MirrorView<V>,
    bucket: &'static str,
    changes: &KeyChanges<V>,
) -> Result<(), PassError> {
    let changed = |key: &str| {
        let key = key.to_string();
        move |source| PassError::Changed {
            bucket,
            key,
            source,
        }
    };
    for (key, value) in &changes.put {
        cluster.fence().check(Instant::now())?;
        let bytes = encode(bucket, key, value)?;
        let expected = mirror.get(key).map(|v| v.revision);
        (compare_and_set(kv, key, bytes, expected).await).map_err(changed(key))?;
    }
    for key in &changes.delete {
        cluster.fence().check(Instant::now())?;
        let expected = mirror.get(key).map(|v| v.revision);
        (compare_and_delete(kv, key, expected).await).map_err(changed(key))?;
    }
    Ok(())
}

/// Updates whose failures call for a rollback get one: the revision before
/// is deployed again as a new revision, which rolls the failed instances
/// back as an update would (with `rollback_config`). A rollback that fails
/// pauses instead of rolling back again.
async fn roll_back(cluster: &Cluster, due: &[(String, String)]) {
    for (app, why) in due {
        match crate::revisions::restore_previous(cluster, app, why).await {
            Ok(Some(rev)) => {
                let msg = format!("update failed ({why}); rolling back to revision {rev}");
                cluster.publish_event("rollback", Some(app), msg).await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(app, error = %e, "cannot roll back"),
        }
    }
}

/// `<app>-<service>-<6 random chars>`.
fn new_instance_id(app: &str, service: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{app}-{service}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::new_instance_id;

    #[test]
    fn instance_ids_name_their_app_and_service_and_differ() {
        let id = new_instance_id("shop", "api");
        let suffix = id.strip_prefix("shop-api-").expect("prefix");
        assert_eq!(suffix.len(), 6, "{id}");
        assert!(
            suffix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        let many: std::collections::BTreeSet<String> =
            (0..100).map(|_| new_instance_id("a", "b")).collect();
        assert!(many.len() > 95, "random enough: {}", many.len());
    }
}
