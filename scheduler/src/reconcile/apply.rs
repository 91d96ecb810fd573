//! Step two of reconciliation: carry out the per-service decisions on a
//! working copy of the assignments, then keep only the hosts that changed.

use super::decide::{Heir, ServiceChanges, ToPlace};
use super::input::{Desired, Key};
use super::instance::template;
use super::plan::{Plan, PlanEvent, event_kind};
use super::stop::StopReason;
use crate::placement::{self, Candidate, Demand, Explain};
use crate::snapshot::Snapshot;
use atoll_sdk::cluster::{Assignment, InstanceSpec};
use std::collections::BTreeMap;

/// The plan being built.
struct Work<'s> {
    snap: &'s Snapshot,
    /// host → instances, starting from the current assignments.
    hosts: BTreeMap<String, Vec<InstanceSpec>>,
    plan: Plan,
}

/// Applies every decision: all stops first, so that the room they free is
/// available to every placement; then placements service by service in
/// name order.
pub(super) fn apply(
    snap: &Snapshot,
    desired: &BTreeMap<Key<'_>, Desired<'_>>,
    changes: &BTreeMap<Key<'_>, ServiceChanges<'_>>,
    new_id: &mut dyn FnMut(&str, &str) -> String,
) -> Plan {
    let mut work = Work {
        snap,
        hosts: snap
            .assignments
            .iter()
            .map(|(host, a)| (host.clone(), a.instances.clone()))
            .collect(),
        plan: Plan::default(),
    };
    for ((app, service), ch) in changes {
        work.stop(ch);
        if let Some(progress) = &ch.progress {
            let services = work.plan.rollouts.entry(app.to_string()).or_default();
            services.insert(service.to_string(), progress.clone());
        }
    }
    let mut candidates = work.candidates();
    for (key, ch) in changes {
        if let Some(d) = desired.get(key) {
            work.place(&mut candidates, d, ch, new_id);
        }
    }
    work.finish()
}

impl<'s> Work<'s> {
    fn stop(&mut self, ch: &ServiceChanges<'_>) {
        for s in &ch.stop {
            let (host, spec) = (s.placed.host, s.placed.spec);
            if let Some(instances) = self.hosts.get_mut(host) {
                instances.retain(|i| i.id != spec.id);
            }
            let kind = match s.reason {
                StopReason::Lost => event_kind::LOST,
                StopReason::GaveUp => event_kind::RESCHEDULE,
                StopReason::Healed { .. } => event_kind::HEAL,
                _ => event_kind::STOP,
            };
            let why = s.reason.describe(host);
            let msg = match s.reason {
                StopReason::Healed { policy, original } => {
                    let kept = if original { "replacement" } else { "original" };
                    format!(
                        "kept {kept}: stopping {} ({}) on {host} (reconcile: {})",
                        spec.id,
                        spec.service,
                        policy.as_str()
                    )
                }
                _ => format!("{} ({}) on {host}: {why}", spec.id, spec.service),
            };
            self.event(kind, &spec.app, msg);
        }
    }

    /// Placement candidates: every known host with what remains assigned
    /// to it after the stops, by name so that global services are placed
    /// (and named) in the same order whatever order the hosts were read in.
    fn candidates(&self) -> Vec<Candidate<'s>> {
        let none = Vec::new();
        let mut cands: Vec<Candidate<'s>> = self
            .snap
            .hosts
            .iter()
            .map(|h| Candidate::with_instances(h, self.hosts.get(h.name()).unwrap_or(&none)))
            .collect();
        cands.sort_by(|a, b| a.name().cmp(b.name()));
        cands
    }

    fn place(
        &mut self,
        cands: &mut [Candidate<'_>],
        d: &Desired<'_>,
        ch: &ServiceChanges<'_>,
        new_id: &mut dyn FnMut(&str, &str) -> String,
    ) {
        if let Some((old, n)) = ch.restore {
            self.restore(cands, d, old, n, new_id);
        }
        if ch.place == ToPlace::Replicas(0) {
            return;
        }
        let mut template = match template(d.record, d.service, &d.hash) {
            Ok(t) => t,
            Err(why) => return self.unplaced(&template_key(d), why.to_string()),
        };
        // A canary's instances are its service's, marked.
        if let Some(parent) = d.canary_of {
            template.service = parent.to_string();
            template.canary = true;
        }
        let demand = Demand::of(&template, &d.service.deploy);
        let explain = match &ch.place {
            ToPlace::Replicas(n) => {
                self.place_replicas(cands, &demand, &template, *n, &ch.heirs, new_id)
            }
            ToPlace::OnHosts(hosts) => {
                self.place_on_hosts(cands, &demand, &template, hosts, ch.keep.len(), new_id)
            }
        };
        if let Some(explain) = explain {
            self.unplaced(&template_key(d), explain.to_string());
        }
    }

    /// Places `n` copies of an old instance (a stopped update keeps its
    /// count on the version that works).
    fn restore(
        &mut self,
        cands: &mut [Candidate<'_>],
        d: &Desired<'_>,
        old: &InstanceSpec,
        n: u32,
        new_id: &mut dyn FnMut(&str, &str) -> String,
    ) {
        let mut template = old.clone();
        (template.attempt, template.avoid) = (0, Vec::new());
        let demand = Demand::of(&template, &d.service.deploy);
        if let Some(explain) = self.place_replicas(cands, &demand, &template, n, &[], new_id) {
            self.unplaced(&template_key(d), explain.to_string());
        }
    }

    /// Places `n` instances one at a time, so each choice sees the previous
    /// ones (4 replicas over 2 equal hosts go 2 + 2); the first ones are
    /// the `heirs` of instances that failed for good, kept off their hosts
    /// when another will do. Stops at the first that fits nowhere: the
    /// next would not fit either.
    fn place_replicas(
        &mut self,
        cands: &mut [Candidate<'_>],
        demand: &Demand<'_>,
        template: &InstanceSpec,
        n: u32,
        heirs: &[Heir],
        new_id: &mut dyn FnMut(&str, &str) -> String,
    ) -> Option<Explain> {
        for i in 0..n as usize {
            let mut spec = template.clone();
            let mut demand = *demand;
            let heir = heirs.get(i);
            if let Some(heir) = heir {
                spec.attempt = heir.attempt;
                spec.avoid = heir.avoid.clone();
                demand.avoid = &heir.avoid;
                spec.replaces = heir.replaces.as_ref().map(|(id, _, _)| id.clone());
            }
            match placement::place(cands, &demand) {
                Ok(choice) => {
                    if let Some((id, host, silent_ms)) = heir.and_then(|h| h.replaces.as_ref()) {
                        let msg = format!(
                            "{id} ({}) on {host}: host {host} silent for {:.1}s: lost",
                            spec.service,
                            *silent_ms as f64 / 1000.0
                        );
                        self.event(event_kind::LOST, &spec.app, msg);
                    }
                    self.assign(&mut cands[choice.index], &spec, new_id)
                }
                Err(explain) => return Some(explain),
            }
        }
        None
    }

    /// Global mode: one instance on each target host that has room. Answers
    /// an [`Explain`] when some matching host has no room, or when no host
    /// runs the service at all, so the user sees why.
    fn place_on_hosts(
        &mut self,
        cands: &mut [Candidate<'_>],
        demand: &Demand<'_>,
        template: &InstanceSpec,
        targets: &[&str],
        kept: usize,
        new_id: &mut dyn FnMut(&str, &str) -> String,
    ) -> Option<Explain> {
        let mut explain = Explain {
            hosts: cands.len(),
            available: kept,
            rejected: BTreeMap::new(),
        };
        for c in cands.iter_mut() {
            if c.count(demand.app, demand.service) > 0 {
                continue;
            }
            match placement::filter(c, demand) {
                Ok(()) if targets.contains(&c.name()) => {
                    self.assign(c, template, new_id);
                    explain.available += 1;
                }
                // Passes the filters but is no target: the decision step
                // saw it otherwise; leave it to the next reconcile.
                Ok(()) => {}
                Err(why) => {
                    explain.rejected.insert(c.name().to_string(), why);
                }
            }
        }
        let short = explain.rejected.values().any(|r| r.is_resources());
        (short || explain.available == 0).then_some(explain)
    }

    /// Gives a new instance to the candidate's host.
    fn assign(
        &mut self,
        cand: &mut Candidate<'_>,
        template: &InstanceSpec,
        new_id: &mut dyn FnMut(&str, &str) -> String,
    ) {
        let mut spec = template.clone();
        spec.id = new_id(&spec.app, &spec.service);
        cand.add(&spec.app, &spec.service, &spec.reservations);
        let host = cand.name().to_string();
        let mut msg = format!("{} ({}) on {host}", spec.id, spec.service);
        if spec.attempt > 0 {
            msg += &format!(" (replacement {} of a failed instance)", spec.attempt);
        }
        let kind = match &spec.replaces {
            Some(original) => {
                msg += &format!(" replaces {original}");
                event_kind::REPLACED
            }
            None => event_kind::PLACE,
        };
        self.event(kind, &spec.app, msg);
        self.hosts.entry(host).or_default().push(spec);
    }

    fn unplaced(&mut self, (app, service): &(String, String), why: String) {
        let msg = format!("cannot place {service}: {why}");
        self.event(event_kind::UNPLACEABLE, app, msg);
        let services = self.plan.unplaced.entry(app.clone()).or_default();
        services.insert(service.clone(), why);
    }

    fn event(&mut self, kind: &'static str, app: &str, message: String) {
        self.plan.events.push(PlanEvent {
            kind,
            app: app.to_string(),
            message,
        });
    }

    /// The hosts whose instances differ from their current assignment.
    /// Compared by id order, so an assignment stored in another order is
    /// not rewritten.
    fn finish(mut self) -> Plan {
        for (host, mut instances) in std::mem::take(&mut self.hosts) {
            instances.sort_by(|a, b| a.id.cmp(&b.id));
            let mut before = self
                .snap
                .assignments
                .get(&host)
                .map(|a| a.instances.clone())
                .unwrap_or_default();
            before.sort_by(|a, b| a.id.cmp(&b.id));
            if before != instances {
                let assignment = Assignment {
                    host: host.clone(),
                    instances,
                    epoch: 0,
                };
                self.plan.assignments.insert(host, assignment);
            }
        }
        self.plan
    }
}

fn template_key(d: &Desired<'_>) -> (String, String) {
    (d.record.spec.name.clone(), d.service.name.clone())
}
