//! The controller: the I/O shell around [`crate::reconcile`]. On every
//! change (a deploy, a heartbeat that moved something, a host lost) and at
//! least once a second, the leader reads a snapshot, computes a plan, and
//! writes what changed: host assignments (compare-and-set), app statuses
//! and service endpoints.

use crate::cluster::Cluster;
use crate::endpoints;
use crate::lease::Lease;
use crate::reconcile::{Plan, reconcile};
use atoll_sdk::protocol::{AppStatus, RolloutStatus, VERSION};
use atoll_sdk::spec::FailureAction;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Runs forever: holds the lease when it can, reconciles while it does.
pub async fn run(cluster: Arc<Cluster>, server_name: String) {
    let mut lease = Lease::new(cluster.buckets.leader.clone(), &server_name);
    let mut apps_changed = cluster.apps.changes();
    // A CAS conflict is retried as soon as the mirror shows the new value.
    let mut assignments_changed = cluster.assignments.changes();
    let mut leading = false;
    loop {
        let now_leading = lease.hold().await;
        if now_leading != leading {
            leading = now_leading;
            (cluster.leading).store(leading, std::sync::atomic::Ordering::Relaxed);
            let what = if leading {
                "is now the leader"
            } else {
                "is a follower"
            };
            cluster
                .publish_event("leader", None, format!("server {server_name} {what}"))
                .await;
        }
        if leading && cluster.settled() {
            let started = std::time::Instant::now();
            if let Err(e) = pass(&cluster).await {
                tracing::warn!(error = %e, "reconcile pass failed; retrying");
            }
            cluster.telemetry.reconciled(started.elapsed());
            tracing::debug!(took = ?started.elapsed(), "reconcile pass");
        }
        tokio::select! {
            _ = apps_changed.changed() => {}
            _ = assignments_changed.changed() => {}
            _ = cluster.observed_changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One reconcile pass. Errors leave the rest for the next pass: every step
/// is idempotent.
async fn pass(cluster: &Cluster) -> Result<(), String> {
    let snap = cluster.snapshot();
    let plan = reconcile(&snap, &mut new_instance_id);
    let mut after = snap;
    for (host, a) in &plan.assignments {
        after.assignments.insert(host.clone(), a.clone());
    }
    // Endpoints first: gateways stop routing to the instances this plan
    // stops before their hosts hear of it, so no request meets an
    // instance that is already gone (new instances join once ready).
    write_endpoints(cluster, &after).await?;
    write_assignments(cluster, &plan).await?;
    let before = cluster.statuses.all();
    write_statuses(cluster, &after, &plan).await?;
    let placed = (plan.events.iter()).filter(|e| e.kind == crate::reconcile::event_kind::PLACE);
    (cluster.telemetry.placements)
        .fetch_add(placed.count() as u64, std::sync::atomic::Ordering::Relaxed);
    for e in &plan.events {
        // An unplaceable service would say so on every pass; its status
        // (written above) carries it, and the event fires when it changes.
        if e.kind == crate::reconcile::event_kind::UNPLACEABLE
            && before.get(&e.app).is_some_and(|s| {
                s.value.unplaced == plan.unplaced.get(&e.app).cloned().unwrap_or_default()
            })
        {
            continue;
        }
        cluster
            .publish_event(e.kind, Some(&e.app), e.message.clone())
            .await;
    }
    roll_back_failed(cluster, &plan).await;
    Ok(())
}

async fn write_assignments(cluster: &Cluster, plan: &Plan) -> Result<(), String> {
    let kv = &cluster.buckets.assignments;
    for (host, assignment) in &plan.assignments {
        let bytes = serde_json::to_vec(assignment).map_err(|e| e.to_string())?;
        let result: Result<u64, String> = match cluster.assignments.get(host) {
            Some(current) => kv
                .update(host, bytes.into(), current.revision)
                .await
                .map_err(|e| e.to_string()),
            None => kv
                .create(host, bytes.into())
                .await
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = result {
            // Someone else wrote it first (a previous leader, or our mirror
            // lags): the next pass sees the new value and decides again.
            return Err(format!("assignment of host {host} changed under us: {e}"));
        }
    }
    Ok(())
}

async fn write_statuses(
    cluster: &Cluster,
    snap: &crate::snapshot::Snapshot,
    plan: &Plan,
) -> Result<(), String> {
    let kv = &cluster.buckets.status;
    let current = cluster.statuses.all();
    for app in &snap.apps {
        let mut assigned = BTreeMap::new();
        for inst in snap.assignments.values().flat_map(|a| &a.instances) {
            if inst.app == app.spec.name {
                *assigned.entry(inst.service.clone()).or_insert(0) += 1;
            }
        }
        let rollouts = plan.rollouts.get(&app.spec.name);
        let before = current.get(&app.spec.name).map(|v| &v.value);
        let status = AppStatus {
            updated: crate::reconcile::updates_done(app, before, rollouts, snap.now_ms),
            v: VERSION,
            revision: app.revision,
            unplaced: plan
                .unplaced
                .get(&app.spec.name)
                .cloned()
                .unwrap_or_default(),
            assigned,
            rollouts: (plan.rollouts.get(&app.spec.name).into_iter().flatten())
                .map(|(service, p)| (service.clone(), rollout_status(p)))
                .collect(),
        };
        if current.get(&app.spec.name).map(|v| &v.value) != Some(&status) {
            let bytes = serde_json::to_vec(&status).map_err(|e| e.to_string())?;
            kv.put(&app.spec.name, bytes.into())
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    for name in current.keys() {
        if !snap.apps.iter().any(|a| &a.spec.name == name) {
            kv.delete(name).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn rollout_status(p: &crate::reconcile::Progress) -> RolloutStatus {
    RolloutStatus {
        updated: p.updated,
        replicas: p.replicas,
        failed: p.failed.as_ref().map(|(why, _)| why.clone()),
        action: p.failed.as_ref().map(|(_, action)| match action {
            FailureAction::Pause => "pause".to_string(),
            FailureAction::Continue => "continue".to_string(),
            FailureAction::Rollback => "rollback".to_string(),
        }),
    }
}

/// Updates whose failures call for a rollback get one: the revision before
/// is deployed again as a new revision, which rolls the failed instances
/// back as an update would (with `rollback_config`). A rollback that fails
/// pauses instead of rolling back again.
async fn roll_back_failed(cluster: &Cluster, plan: &Plan) {
    for (app, services) in &plan.rollouts {
        let failed = services.iter().find_map(|(service, p)| match &p.failed {
            Some((why, FailureAction::Rollback)) => Some(format!("{service}: {why}")),
            _ => None,
        });
        let Some(why) = failed else { continue };
        match crate::revisions::restore_previous(cluster, app, &why).await {
            Ok(Some(rev)) => {
                let msg = format!("update failed ({why}); rolling back to revision {rev}");
                cluster.publish_event("rollback", Some(app), msg).await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(app, error = %e, "cannot roll back"),
        }
    }
}

async fn write_endpoints(
    cluster: &Cluster,
    snap: &crate::snapshot::Snapshot,
) -> Result<(), String> {
    let kv = &cluster.buckets.endpoints;
    let wanted = endpoints::compute(snap);
    let current: BTreeMap<_, _> = cluster
        .endpoints
        .all()
        .into_iter()
        .map(|(k, v)| (k, v.value))
        .collect();
    for (key, eps) in &wanted {
        if current.get(key) != Some(eps) {
            let bytes = serde_json::to_vec(eps).map_err(|e| e.to_string())?;
            kv.put(key, bytes.into()).await.map_err(|e| e.to_string())?;
        }
    }
    for key in current.keys() {
        if !wanted.contains_key(key) {
            kv.delete(key).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
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
