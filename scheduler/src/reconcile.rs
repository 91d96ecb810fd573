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

mod adopt;
mod apply;
mod decide;
mod heal;
mod input;
mod instance;
mod plan;
mod rollout;
mod stop;

#[cfg(test)]
pub(crate) use instance::spec_hash;
pub(crate) use plan::{Plan, PlanEvent, event_kind};
pub(crate) use rollout::{Progress, updates_done};

use crate::snapshot::Snapshot;

/// Computes the plan that makes the assignments match the desired apps.
/// `new_id(app, service)` names each instance the plan creates; it is only
/// called for instances that found a host. Instances hosts run without an
/// assignment (the assignments were lost with NATS) are adopted first
/// where desired state wants them ([`adopt`]), then decided on like any.
pub(crate) fn reconcile(snap: &Snapshot, new_id: &mut dyn FnMut(&str, &str) -> String) -> Plan {
    let adopted = adopt::adopted(snap);
    if adopted.is_empty() {
        return plan(snap, new_id);
    }
    let view = adopt::assume(snap, &adopted);
    let mut plan = plan(&view, new_id);
    adopt::into_plan(&mut plan, &view, &adopted);
    plan
}

fn plan(snap: &Snapshot, new_id: &mut dyn FnMut(&str, &str) -> String) -> Plan {
    let canaries = input::canary_services(snap);
    let canary_keys = input::canary_keys(snap);
    let scaled = input::scaled_services(snap);
    let desired = input::desired(snap, &canaries, &scaled);
    let existing = input::existing(snap, &canary_keys);
    let changes = decide::all(snap, &desired, &existing);
    apply::apply(snap, &desired, &changes, new_id)
}

#[cfg(test)]
mod tests;
