//! Adoption: instances a host runs that no assignment lists, taken into
//! the plan under their own ids.
//!
//! When NATS is replaced (restored from `atoll export` into a fresh
//! server), the assignments are gone but hosts run on (edge autonomy:
//! each runs its cached assignment) and report their instances. Placing
//! new instances would make every host stop what it runs and start
//! copies; instead, a host that has no assignment yet gets one listing the
//! instances it reports that desired state wants: the same app and
//! service, the same spec hash (what runs is what is wanted), up to the
//! replicas wanted. Hosts match assignments to what they run by instance
//! id, so an adopted instance runs on untouched.

use super::input::{self, Desired, Key, decided_for};
use super::instance::template;
use super::plan::{Plan, PlanEvent, event_kind};
use crate::snapshot::Snapshot;
use atoll_sdk::cluster::{Assignment, InstanceSpec, InstanceStatus};
use atoll_sdk::spec::Mode;
use std::collections::{BTreeMap, BTreeSet};

/// Host → the instances it reports that it is given (sorted by id).
pub(super) type Adopted = BTreeMap<String, Vec<InstanceSpec>>;

/// What each ready host without an assignment runs that desired state
/// wants: instances still on their way or running, whose spec hash is the
/// one of a deployed service (or canary), not assigned anywhere, and no
/// more than the service's replicas counting those already assigned
/// (global services: one per host). Hosts in name order, instances in id
/// order, so the choice is the same on every pass.
pub(super) fn adopted(snap: &Snapshot) -> Adopted {
    let canaries = input::canary_services(snap);
    let scaled = input::scaled_services(snap);
    let desired = input::desired(snap, &canaries, &scaled);
    let canary_keys = input::canary_keys(snap);
    let existing = input::existing(snap, &canary_keys);
    let assigned: BTreeSet<&str> = (existing.values().flatten())
        .map(|p| p.spec.id.as_str())
        .collect();
    let mut counts: BTreeMap<Key<'_>, u32> = (existing.iter())
        .map(|(key, placed)| (*key, placed.len() as u32))
        .collect();
    let mut out = Adopted::new();
    let mut hosts: Vec<&str> = (snap.hosts.iter())
        .filter(|h| h.is_ready() && !snap.assignments.contains_key(h.name()))
        .map(|h| h.name())
        .collect();
    hosts.sort();
    for host in hosts {
        let mut here: BTreeSet<Key<'_>> = BTreeSet::new();
        let reported = (snap.observed_on.iter())
            .filter(|(id, on)| on.as_str() == host && !assigned.contains(id.as_str()))
            .filter_map(|(id, _)| snap.observed.get(id));
        for status in reported {
            let Some((key, d)) = wanted(&desired, status) else {
                continue;
            };
            let room = match d.service.deploy.mode {
                Mode::Global => !here.contains(&key),
                Mode::Replicated => {
                    counts.get(&key).copied().unwrap_or(0) < d.service.deploy.replicas
                }
            };
            let Some(spec) = room.then(|| spec_of(d, status)).flatten() else {
                continue;
            };
            here.insert(key);
            *counts.entry(key).or_default() += 1;
            out.entry(host.to_string()).or_default().push(spec);
        }
    }
    out
}

/// The deployed service (or canary) `status` is an instance of, if what
/// it runs is what that service wants now.
fn wanted<'d, 'a>(
    desired: &'d BTreeMap<Key<'a>, Desired<'a>>,
    status: &InstanceStatus,
) -> Option<(Key<'a>, &'d Desired<'a>)> {
    if !status.state.is_active() || status.spec_hash.is_empty() {
        return None;
    }
    (desired.iter())
        .find(|((app, service), d)| {
            *app == status.app
                && decided_for(service) == status.service
                && d.hash == status.spec_hash
        })
        .map(|(key, d)| (*key, d))
}

/// The instance spec placement would have given it, under its own id and
/// with the revision it was made from (the host's spec, field for field,
/// when desired state is the one it was made from).
fn spec_of(d: &Desired<'_>, status: &InstanceStatus) -> Option<InstanceSpec> {
    let mut spec = template(d.record, d.service, &d.hash).ok()?;
    spec.id = status.id.clone();
    spec.revision = status.revision;
    if let Some(parent) = d.canary_of {
        spec.service = parent.to_string();
        spec.canary = true;
    }
    Some(spec)
}

/// `snap` as if the adopted instances were assigned: what the rest of
/// reconciliation decides on.
pub(super) fn assume(snap: &Snapshot, adopted: &Adopted) -> Snapshot {
    let mut view = snap.clone();
    for (host, instances) in adopted {
        let assignment = Assignment {
            host: host.clone(),
            instances: instances.clone(),
            epoch: 0,
        };
        view.assignments.insert(host.clone(), assignment);
    }
    view
}

/// Completes the plan made on [`assume`]'s view: an adopting host's
/// assignment is written even when the rest of the plan leaves it as
/// assumed (it is not in the bucket yet), and each adoption is told first.
pub(super) fn into_plan(plan: &mut Plan, view: &Snapshot, adopted: &Adopted) {
    let mut events = Vec::new();
    for (host, instances) in adopted {
        if let (false, Some(a)) = (
            plan.assignments.contains_key(host),
            view.assignments.get(host),
        ) {
            let mut a = a.clone();
            a.instances.sort_by(|x, y| x.id.cmp(&y.id));
            plan.assignments.insert(host.clone(), a);
        }
        for i in instances {
            events.push(PlanEvent {
                kind: event_kind::ADOPT,
                app: i.app.clone(),
                message: format!(
                    "{} ({}) on {host}: adopted, running since before the assignments were lost",
                    i.id, i.service
                ),
            });
        }
    }
    events.append(&mut plan.events);
    plan.events = events;
}
