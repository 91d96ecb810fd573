//! Reconcile tests, one file per scenario. [`Cluster`] applies each plan
//! the way the controller would and checks, every time, that reconciling
//! again changes nothing.

mod adopt;
mod disconnect;
mod drain;
mod failed;
mod global;
mod host_loss;
mod lifecycle;
mod operate;
mod properties;
mod replicated;
mod resources;
mod updates;

use super::instance::spec_hash;
use super::*;
use crate::snapshot::HostSnapshot;
use crate::snapshot::fixtures::*;
use atoll_sdk::cluster::{HostState, InstanceSpec, InstanceState, InstanceStatus};
use atoll_sdk::protocol::AppRecord;
use std::collections::BTreeMap;

/// The snapshot after the controller wrote the plan's assignments.
pub(super) fn apply(snap: &Snapshot, plan: &Plan) -> Snapshot {
    let mut next = snap.clone();
    for (host, assignment) in &plan.assignments {
        next.assignments.insert(host.clone(), assignment.clone());
    }
    next
}

/// A cluster that evolves plan by plan.
pub(super) struct Cluster {
    pub snap: Snapshot,
    next_id: u32,
}

impl Cluster {
    pub fn new(hosts: Vec<HostSnapshot>, apps: Vec<AppRecord>) -> Self {
        Cluster {
            snap: snapshot(hosts, apps),
            next_id: 0,
        }
    }

    /// The plan for the current snapshot, with ids `<app>-<service>-NNN`
    /// numbered across the cluster's life.
    pub fn plan(&mut self) -> Plan {
        let next = &mut self.next_id;
        reconcile(&self.snap, &mut |app, service| {
            *next += 1;
            format!("{app}-{service}-{next:03}")
        })
    }

    /// Reconciles, applies the plan, and checks that the result is stable:
    /// a second reconcile changes no assignment and creates no instance.
    pub fn step(&mut self) -> Plan {
        let plan = self.plan();
        self.snap = apply(&self.snap, &plan);
        assert_stable(&self.snap);
        plan
    }

    /// How many instances of `app`/`service` each host runs (hosts with
    /// none are absent).
    pub fn spread(&self, app: &str, service: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (host, a) in &self.snap.assignments {
            let n = a
                .instances
                .iter()
                .filter(|i| i.app == app && i.service == service)
                .count();
            if n > 0 {
                out.insert(host.clone(), n);
            }
        }
        out
    }

    pub fn ids_on(&self, host: &str) -> Vec<String> {
        self.snap
            .assignments
            .get(host)
            .map(|a| a.instances.iter().map(|i| i.id.clone()).collect())
            .unwrap_or_default()
    }

    pub fn all_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .snap
            .assignments
            .keys()
            .flat_map(|h| self.ids_on(h))
            .collect();
        ids.sort();
        ids
    }

    /// The host turns silent (from now, on the snapshot's clock) or is
    /// heard again.
    pub fn set_state(&mut self, host: &str, state: HostState) {
        let now = self.snap.now_ms;
        let h = self.snap.hosts.iter_mut().find(|h| h.name() == host);
        let h = h.expect("known host");
        h.state = state;
        h.silent_since_ms = (state != HostState::Ready).then_some(now);
    }

    /// An operator removed `host` (`atoll hosts rm`), as the snapshot
    /// shows it.
    pub fn remove_host(&mut self, host: &str) {
        let removed = std::collections::BTreeMap::from([(
            host.to_string(),
            atoll_sdk::protocol::RemovedHost {
                name: host.to_string(),
                removed_at_ms: u64::MAX,
            },
        )]);
        crate::snapshot::drop_removed(&mut self.snap.hosts, &removed);
    }

    pub fn add_host(&mut self, host: HostSnapshot) {
        self.snap.hosts.push(host);
    }

    /// Deploys a new revision of an app (or a first one).
    pub fn deploy(&mut self, mut record: AppRecord) {
        let apps = &mut self.snap.apps;
        let old = apps.iter().position(|a| a.spec.name == record.spec.name);
        if let Some(i) = old {
            record.revision = apps[i].revision + 1;
            apps[i] = record;
        } else {
            apps.push(record);
        }
    }

    /// The instance's host reports that it gave up on it at `at_ms`.
    pub fn give_up(&mut self, id: &str, at_ms: u64) {
        self.report(id, InstanceState::Failed);
        let status = self.snap.observed.get_mut(id).expect("just reported");
        status.gave_up = true;
        status.since_ms = at_ms;
        self.snap.seen_since.insert(id.into(), at_ms);
    }

    /// The instance's host reports it in `state`.
    pub fn report(&mut self, id: &str, state: InstanceState) {
        let spec = self
            .snap
            .assignments
            .values()
            .flat_map(|a| &a.instances)
            .find(|i| i.id == id)
            .expect("assigned instance");
        let status = InstanceStatus {
            reason: Some("exit code 1".into()),
            ..status_of(spec, state)
        };
        self.snap.observed.insert(id.into(), status);
        self.snap.seen_since.insert(id.into(), 0);
    }

    /// Every instance with no report yet reports running.
    pub fn start_all(&mut self) {
        let ids: Vec<String> = (self.all_ids().into_iter())
            .filter(|id| !self.snap.observed.contains_key(id))
            .collect();
        for id in ids {
            self.report(&id, InstanceState::Running);
        }
    }
}

/// What a host reports of `spec` running in `state`.
pub(super) fn status_of(spec: &InstanceSpec, state: InstanceState) -> InstanceStatus {
    InstanceStatus::of(spec, state)
}

/// Reconciling `snap` changes nothing and asks for no new id.
pub(super) fn assert_stable(snap: &Snapshot) {
    let again = reconcile(snap, &mut |app, service| {
        panic!("a settled cluster asked for a new {app}/{service} instance")
    });
    assert!(
        again.changes_nothing(),
        "not idempotent: {:#?}",
        again.assignments
    );
}

/// The kinds of a plan's events, in order.
pub(super) fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.events.iter().map(|e| e.kind).collect()
}

pub(super) fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(h, n)| (h.to_string(), *n)).collect()
}
