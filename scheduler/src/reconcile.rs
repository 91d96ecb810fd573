//! Reconciliation: desired apps + current assignments + host states → a
//! [`Plan`] of per-host assignments.
//!
//! Like Nomad's `reconciler.Compute()`, it decides as data and acts
//! nowhere: the controller writes the plan's assignments to the KV bucket.
//! It runs in two steps so that a later rolling update can apply only part
//! of a decision: [`decide`] says, per service, which instances to keep,
//! which to stop and how many to place; [`apply`] then removes what stops
//! and places the rest one at a time through [`crate::placement`], counting
//! each new instance on its host before placing the next.
//!
//! The plan is level-triggered: applying it and reconciling again yields no
//! change, and the same snapshot (with the same `new_id`) yields the same
//! plan.

mod apply;
mod decide;
mod instance;
mod rollout;

pub use instance::spec_hash;
pub use rollout::Progress;

use crate::snapshot::Snapshot;
use atoll_sdk::cluster::{Assignment, InstanceSpec};
use atoll_sdk::protocol::AppRecord;
use atoll_sdk::spec::Service;
use std::collections::BTreeMap;

/// What the controller must write, and what to tell the user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Hosts whose assignment must change → their new full assignment,
    /// instances sorted by id. Hosts whose assignment is unchanged are
    /// absent.
    pub assignments: BTreeMap<String, Assignment>,
    /// app → service → why not all desired instances could be placed (the
    /// [`crate::placement::Explain`] text).
    pub unplaced: BTreeMap<String, BTreeMap<String, String>>,
    /// What the plan does, in words, for `atoll events`.
    pub events: Vec<PlanEvent>,
    /// app → service → how its rolling update goes, while one runs.
    pub rollouts: BTreeMap<String, BTreeMap<String, Progress>>,
}

impl Plan {
    /// Whether no assignment changes: the cluster already matches.
    pub fn changes_nothing(&self) -> bool {
        self.assignments.is_empty()
    }
}

/// One human-readable step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanEvent {
    /// One of [`event_kind`]; the `kind` of the published
    /// [`atoll_sdk::protocol::Event`].
    pub kind: &'static str,
    pub app: String,
    pub message: String,
}

/// The kinds of [`PlanEvent`]s.
pub mod event_kind {
    /// A new instance is assigned to a host.
    pub const PLACE: &str = "place";
    /// An instance is taken off a host that is up.
    pub const STOP: &str = "stop";
    /// An instance's host is down; it is taken off that host and re-placed.
    pub const LOST: &str = "lost";
    /// Some desired instances fit nowhere. Level-triggered like the rest of
    /// the plan, so every reconcile that still cannot place them says it
    /// again: publish it only when the app status's `unplaced` changes.
    pub const UNPLACEABLE: &str = "unplaceable";
}

/// (app, service): the unit reconciliation decides on.
type Key<'a> = (&'a str, &'a str);

/// A service as currently deployed.
#[derive(Debug, Clone)]
struct Desired<'a> {
    record: &'a AppRecord,
    service: &'a Service,
    hash: String,
}

/// An instance where it is currently assigned.
#[derive(Debug, Clone, Copy)]
struct Placed<'a> {
    host: &'a str,
    spec: &'a InstanceSpec,
}

/// Computes the plan that makes the assignments match the desired apps.
/// `new_id(app, service)` names each instance the plan creates; it is only
/// called for instances that found a host.
pub fn reconcile(snap: &Snapshot, new_id: &mut dyn FnMut(&str, &str) -> String) -> Plan {
    let desired = desired(snap);
    let existing = existing(snap);
    let changes = decide::all(snap, &desired, &existing);
    apply::apply(snap, &desired, &changes, new_id)
}

/// Every deployed service by (app, service), in name order so that plans
/// are deterministic whatever order the apps were read in.
fn desired(snap: &Snapshot) -> BTreeMap<Key<'_>, Desired<'_>> {
    let mut out = BTreeMap::new();
    for record in &snap.apps {
        for service in record.spec.services.values() {
            let key = (record.spec.name.as_str(), service.name.as_str());
            let hash = spec_hash(service);
            out.entry(key).or_insert(Desired {
                record,
                service,
                hash,
            });
        }
    }
    out
}

/// Every assigned instance by (app, service), sorted by host then id.
fn existing(snap: &Snapshot) -> BTreeMap<Key<'_>, Vec<Placed<'_>>> {
    let mut out: BTreeMap<Key<'_>, Vec<Placed<'_>>> = BTreeMap::new();
    for (host, assignment) in &snap.assignments {
        for spec in &assignment.instances {
            let key = (spec.app.as_str(), spec.service.as_str());
            out.entry(key).or_default().push(Placed { host, spec });
        }
    }
    for placed in out.values_mut() {
        placed.sort_by(|a, b| (a.host, &a.spec.id).cmp(&(b.host, &b.spec.id)));
    }
    out
}

#[cfg(test)]
mod tests;
