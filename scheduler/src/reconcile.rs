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
pub use rollout::{Progress, updates_done};

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
    /// An instance's host gave up on it; it is re-placed, elsewhere when
    /// another host will do.
    pub const RESCHEDULE: &str = "reschedule";
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
    /// For a service's canary (`x-atoll.canary`, decided on as a service
    /// of its own): the service it is the canary of.
    canary_of: Option<&'a str>,
}

/// What a canary is decided as: `<service>~canary` (`~` cannot appear in a
/// Compose service name), its instances named and routed as the service's.
const CANARY_SUFFIX: &str = "~canary";

/// The canaries of deployed services as services of their own: the
/// service with the canary's artifact and replica count, by (app, parent).
fn canary_services(snap: &Snapshot) -> BTreeMap<(String, String), Service> {
    let mut out = BTreeMap::new();
    for record in &snap.apps {
        for service in record.spec.services.values() {
            let Some(canary) = &service.canary else {
                continue;
            };
            let mut s = service.clone();
            s.name = format!("{}{CANARY_SUFFIX}", service.name);
            s.artifact = canary.artifact.clone();
            s.deploy.replicas = canary.replicas;
            s.canary = None;
            out.insert((record.spec.name.clone(), service.name.clone()), s);
        }
    }
    out
}

/// The deployed service a decision key stands for: a canary's parent, or
/// the service itself.
pub fn decided_for(key: &str) -> &str {
    key.strip_suffix(CANARY_SUFFIX).unwrap_or(key)
}

/// The decision key of every canary instance's group, owned here because
/// the instances only carry their parent's name.
fn canary_keys(snap: &Snapshot) -> std::collections::BTreeSet<(String, String)> {
    (snap.assignments.values().flat_map(|a| &a.instances))
        .filter(|i| i.canary)
        .map(|i| (i.app.clone(), format!("{}{CANARY_SUFFIX}", i.service)))
        .collect()
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
    let canaries = canary_services(snap);
    let canary_keys = canary_keys(snap);
    let scaled = scaled_services(snap);
    let desired = desired(snap, &canaries, &scaled);
    let existing = existing(snap, &canary_keys);
    let changes = decide::all(snap, &desired, &existing);
    apply::apply(snap, &desired, &changes, new_id)
}

/// Autoscaled services whose replica count is not the file's: the
/// service with the autoscaler's count, by (app, service).
fn scaled_services(snap: &Snapshot) -> BTreeMap<(String, String), Service> {
    let mut out = BTreeMap::new();
    for record in &snap.apps {
        for service in record.spec.services.values() {
            let key = (record.spec.name.clone(), service.name.clone());
            let n = crate::autoscale::replicas(service, snap.scale.get(&key).copied());
            if n != service.deploy.replicas {
                let mut s = service.clone();
                s.deploy.replicas = n;
                out.insert(key, s);
            }
        }
    }
    out
}

/// Every deployed service (and canary) by (app, service), in name order so
/// that plans are deterministic whatever order the apps were read in.
fn desired<'a>(
    snap: &'a Snapshot,
    canaries: &'a BTreeMap<(String, String), Service>,
    scaled: &'a BTreeMap<(String, String), Service>,
) -> BTreeMap<Key<'a>, Desired<'a>> {
    let mut out = BTreeMap::new();
    for record in &snap.apps {
        for service in record.spec.services.values() {
            let key = (record.spec.name.as_str(), service.name.as_str());
            let owned = (record.spec.name.clone(), service.name.clone());
            let service = scaled.get(&owned).unwrap_or(service);
            let hash = spec_hash(service);
            out.entry(key).or_insert(Desired {
                record,
                service,
                hash,
                canary_of: None,
            });
            let parent = (record.spec.name.clone(), service.name.clone());
            if let Some(canary) = canaries.get(&parent) {
                let key = (record.spec.name.as_str(), canary.name.as_str());
                out.entry(key).or_insert(Desired {
                    record,
                    service: canary,
                    hash: spec_hash(canary),
                    canary_of: Some(service.name.as_str()),
                });
            }
        }
    }
    out
}

/// Every assigned instance by (app, service) — canary instances under
/// their canary's key — sorted by host then id.
fn existing<'a>(
    snap: &'a Snapshot,
    canary_keys: &'a std::collections::BTreeSet<(String, String)>,
) -> BTreeMap<Key<'a>, Vec<Placed<'a>>> {
    let mut out: BTreeMap<Key<'a>, Vec<Placed<'a>>> = BTreeMap::new();
    for (host, assignment) in &snap.assignments {
        for spec in &assignment.instances {
            let mut key = (spec.app.as_str(), spec.service.as_str());
            if spec.canary {
                let name = format!("{}{CANARY_SUFFIX}", spec.service);
                if let Some((_, owned)) = canary_keys.get(&(spec.app.clone(), name)) {
                    key.1 = owned.as_str();
                }
            }
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
