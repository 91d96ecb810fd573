//! What one controller pass writes besides the assignments, decided as
//! data before anything is written: the endpoints and app statuses that
//! changed, the plan's events worth publishing, the rollbacks that failed
//! updates call for, and how many instances were placed. Plain functions
//! of the snapshot after the plan and of what the buckets hold now.

use crate::endpoints;
use crate::reconcile::{Plan, PlanEvent, Progress, event_kind, updates_done};
use crate::snapshot::Snapshot;
use atoll_sdk::protocol::{AppRecord, AppStatus, Endpoints, RolloutStatus, VERSION};
use atoll_sdk::spec::FailureAction;
use std::collections::BTreeMap;

/// The keys to write and the keys to delete so that a bucket holds what
/// is wanted; keys whose value is already right are left alone.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct KeyChanges<V> {
    pub put: Vec<(String, V)>,
    pub delete: Vec<String>,
}

/// Everything a pass writes besides the plan's assignments.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Writes {
    pub endpoints: KeyChanges<Endpoints>,
    pub statuses: KeyChanges<AppStatus>,
    pub events: Vec<PlanEvent>,
    /// (app, why): updates whose failures call for a rollback.
    pub rollbacks: Vec<(String, String)>,
    /// Instances the plan places.
    pub placed: u64,
}

/// The snapshot once the plan's assignments are written.
pub(super) fn after(mut snap: Snapshot, plan: &Plan) -> Snapshot {
    for (host, a) in &plan.assignments {
        snap.assignments.insert(host.clone(), a.clone());
    }
    snap
}

/// What to write after `plan`, given the snapshot `after` it and the
/// statuses and endpoints the buckets hold now.
pub(super) fn decide(
    after: &Snapshot,
    plan: &Plan,
    statuses: &BTreeMap<String, AppStatus>,
    endpoints: &BTreeMap<String, Endpoints>,
) -> Writes {
    let wanted: BTreeMap<String, AppStatus> = (after.apps.iter())
        .map(|app| {
            let before = statuses.get(&app.spec.name);
            (app.spec.name.clone(), app_status(app, after, plan, before))
        })
        .collect();
    Writes {
        endpoints: key_changes(&endpoints::compute(after), endpoints),
        statuses: key_changes(&wanted, statuses),
        events: events_to_publish(plan, statuses),
        rollbacks: rollbacks(plan),
        placed: (plan.events.iter())
            .filter(|e| e.kind == event_kind::PLACE)
            .count() as u64,
    }
}

pub(super) fn key_changes<V: PartialEq + Clone>(
    wanted: &BTreeMap<String, V>,
    current: &BTreeMap<String, V>,
) -> KeyChanges<V> {
    KeyChanges {
        put: (wanted.iter())
            .filter(|(k, v)| current.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        delete: (current.keys())
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect(),
    }
}

/// An app's status after the plan: what is assigned, what could not be
/// placed and why, how its updates go, and when they finished (`before`:
/// the status the last pass wrote).
pub(super) fn app_status(
    app: &AppRecord,
    after: &Snapshot,
    plan: &Plan,
    before: Option<&AppStatus>,
) -> AppStatus {
    let name = &app.spec.name;
    let mut assigned = BTreeMap::new();
    for inst in after.assignments.values().flat_map(|a| &a.instances) {
        if &inst.app == name {
            *assigned.entry(inst.service.clone()).or_insert(0) += 1;
        }
    }
    let rollouts = plan.rollouts.get(name);
    AppStatus {
        updated: updates_done(app, before, rollouts, after.now_ms),
        v: VERSION,
        revision: app.revision,
        unplaced: plan.unplaced.get(name).cloned().unwrap_or_default(),
        assigned,
        rollouts: (rollouts.into_iter().flatten())
            .map(|(service, p)| (service.clone(), rollout_status(p)))
            .collect(),
    }
}

fn rollout_status(p: &Progress) -> RolloutStatus {
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

/// The plan's events, but an unplaceable service's only when its reason
/// changed: it would say so on every pass, and its status carries it.
fn events_to_publish(plan: &Plan, before: &BTreeMap<String, AppStatus>) -> Vec<PlanEvent> {
    let repeated = |e: &PlanEvent| {
        let now = plan.unplaced.get(&e.app).cloned().unwrap_or_default();
        e.kind == event_kind::UNPLACEABLE && before.get(&e.app).is_some_and(|s| s.unplaced == now)
    };
    (plan.events.iter())
        .filter(|e| !repeated(e))
        .cloned()
        .collect()
}

/// Updates whose failures call for a rollback: (app, why), one per app.
fn rollbacks(plan: &Plan) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (app, services) in &plan.rollouts {
        let failed = services.iter().find_map(|(service, p)| match &p.failed {
            Some((why, FailureAction::Rollback)) => Some(format!("{service}: {why}")),
            _ => None,
        });
        if let Some(why) = failed {
            out.push((app.clone(), why));
        }
    }
    out
}

#[cfg(test)]
mod tests;
