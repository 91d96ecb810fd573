//! What the API shows: apps, instances, hosts and revisions as the user
//! sees them, built from a [`Snapshot`], the controller's app statuses and
//! the apps' kept revisions.

use crate::disconnect::{self, Presence};
use crate::snapshot::Snapshot;
use atoll_sdk::api::{AppView, HostView, InstanceView, RevisionView, ServiceView};
use atoll_sdk::cluster::{Capacity, InstanceState};
use atoll_sdk::protocol::{AppRecord, AppStatus};
use atoll_sdk::spec::{Artifact, Mode, Service};
use std::collections::BTreeMap;

/// Every assigned instance with the state its host reported; on a silent
/// host, what it last reported (unconfirmed) until it counts as lost.
pub(crate) fn instances(snap: &Snapshot, app: Option<&str>) -> Vec<InstanceView> {
    let holding = snap.hold.is_some();
    let replaced_by: BTreeMap<&str, &str> = (snap.assignments.values())
        .flat_map(|a| &a.instances)
        .filter_map(|i| Some((i.replaces.as_deref()?, i.id.as_str())))
        .collect();
    let mut out = Vec::new();
    for (host, assignment) in &snap.assignments {
        for inst in &assignment.instances {
            if app.is_some_and(|a| a != inst.app) {
                continue;
            }
            let presence = snap
                .host(host)
                .map(|h| disconnect::presence(h, &inst.disconnect, snap.now_ms, holding));
            let unconfirmed = presence == Some(Presence::Unconfirmed);
            let observed = match presence {
                Some(Presence::Unconfirmed) => snap.unconfirmed.get(&inst.id),
                _ => snap.observed.get(&inst.id),
            };
            let (state, reason, since_ms) = match (presence, observed) {
                (None, _) => (InstanceState::Lost, Some(format!("host {host} is gone")), 0),
                (Some(Presence::Lost { silent_ms }), _) => {
                    let mut why = format!(
                        "host {host} silent for {:.0}s: lost",
                        silent_ms as f64 / 1000.0
                    );
                    if let Some(r) = replaced_by.get(inst.id.as_str()) {
                        why += &format!(", replaced by {r}");
                    }
                    (InstanceState::Lost, Some(why), 0)
                }
                (_, Some(o)) => (o.state, o.reason.clone(), o.since_ms),
                (_, None) => (InstanceState::Pending, None, 0),
            };
            let restarts = observed.map_or(0, |o| o.restarts);
            let pull = observed.and_then(|o| o.pull);
            let health = observed
                .and_then(|o| o.health)
                .filter(|_| state == InstanceState::Running);
            out.push(InstanceView {
                app: inst.app.clone(),
                service: inst.service.clone(),
                id: inst.id.clone(),
                host: host.clone(),
                state,
                revision: inst.revision,
                reason,
                since_ms,
                restarts,
                pull,
                health,
                ready: state.is_ready(health),
                canary: inst.canary,
                attempt: inst.attempt,
                unconfirmed,
                replaces: inst.replaces.clone(),
                ports: (snap.app(&inst.app))
                    .and_then(|r| r.spec.services.get(&inst.service))
                    .map(|s| s.ports.clone())
                    .unwrap_or_default(),
            });
        }
    }
    out.sort_by(|a, b| (&a.app, &a.service, &a.id).cmp(&(&b.app, &b.service, &b.id)));
    out
}

/// One app with its services, counts and an overall status.
pub(crate) fn app(snap: &Snapshot, record: &AppRecord, status: Option<&AppStatus>) -> AppView {
    let insts = instances(snap, Some(&record.spec.name));
    let mut services = Vec::new();
    let mut problems = Vec::new();
    let (mut any_failed, mut all_running) = (false, true);
    for svc in record.spec.services.values() {
        let mut s = service_of(svc, &insts, status);
        if record.stopped {
            s.view.desired = 0;
        }
        any_failed |= s.failed;
        all_running &= s.view.running == s.view.desired && !s.unplaced;
        if let Some(m) = &s.view.message {
            problems.push(format!("{}: {m}", svc.name));
        }
        services.push(s.view);
    }
    let total_running: u32 = services.iter().map(|s| s.running).sum();
    // Until the controller has processed this revision, nothing the
    // instances say is about it yet.
    let processed = status.is_some_and(|s| s.revision == record.revision);
    let rollouts = status.map(|s| &s.rollouts).filter(|r| !r.is_empty());
    let halted = rollouts.is_some_and(|r| r.values().any(|r| r.failed.is_some()));
    let state = if record.stopped && total_running == 0 {
        "stopped"
    } else if record.stopped {
        "stopping"
    } else if !processed {
        "deploying"
    } else if halted {
        "paused"
    } else if rollouts.is_some() {
        "updating"
    } else if all_running {
        "running"
    } else if any_failed && total_running == 0 {
        "failed"
    } else if any_failed {
        "degraded"
    } else if status.is_some_and(|s| !s.unplaced.is_empty()) {
        "pending"
    } else {
        "deploying"
    };
    AppView {
        name: record.spec.name.clone(),
        revision: record.revision,
        status: state.to_string(),
        message: (!problems.is_empty()).then(|| problems.join("; ")),
        services,
        deployed_at_ms: record.deployed_at_ms,
        warnings: record.warnings.clone(),
        update: update_text(record, status.filter(|_| processed)),
    }
}

/// One service of an app as the user sees it.
struct ServiceState {
    view: ServiceView,
    /// One of its instances failed.
    failed: bool,
    /// Some of its instances found no host.
    unplaced: bool,
}

fn service_of(svc: &Service, insts: &[InstanceView], status: Option<&AppStatus>) -> ServiceState {
    // A canary's instances are not counted against the replicas.
    let mine: Vec<&InstanceView> = (insts.iter())
        .filter(|i| i.service == svc.name && !i.canary)
        .collect();
    let running = mine.iter().filter(|i| i.ready).count() as u32;
    let desired = match svc.deploy.mode {
        Mode::Replicated => svc.deploy.replicas,
        Mode::Global => status
            .and_then(|s| s.assigned.get(&svc.name).copied())
            .unwrap_or(mine.len() as u32),
    };
    let failed = mine.iter().find(|i| i.state == InstanceState::Failed);
    let unplaced = status.and_then(|s| s.unplaced.get(&svc.name));
    let message = match (unplaced, failed) {
        (Some(why), _) => Some(why.clone()),
        (None, Some(f)) => Some(format!(
            "instance {} failed: {}",
            f.id,
            f.reason.as_deref().unwrap_or("no reason given")
        )),
        (None, None) => None,
    };
    ServiceState {
        view: service_view(svc, desired, running, message),
        failed: failed.is_some(),
        unplaced: unplaced.is_some(),
    }
}

/// How the revision's rolling update goes, in words.
fn update_text(record: &AppRecord, status: Option<&AppStatus>) -> Option<String> {
    let rollouts = status.map(|s| &s.rollouts);
    let failed = (rollouts.into_iter().flatten()).find_map(|(service, r)| {
        r.failed
            .as_ref()
            .map(|why| (service, why, r.action.as_deref()))
    });
    if let Some((service, why, action)) = failed {
        return Some(match action {
            Some("rollback") if record.rollback_of.is_none() => {
                format!("rolling back: {service}: {why}")
            }
            _ => format!("paused: {service}: {why}"),
        });
    }
    let going: Vec<String> = (rollouts.into_iter().flatten())
        .map(|(service, r)| format!("{service} {}/{}", r.updated, r.replicas))
        .collect();
    let cause = record.cause.as_deref().unwrap_or("update");
    match (going.is_empty(), record.rollback_of) {
        (false, Some(_)) => Some(format!("rolling back {}: {cause}", going.join(", "))),
        (false, None) => Some(format!("updating {}", going.join(", "))),
        (true, Some(_)) => Some(format!("rolled back: {cause}")),
        (true, None) => None,
    }
}

/// The kept revisions of an app, oldest first; `current` is the revision
/// deployed now.
pub(crate) fn revisions(kept: &[AppRecord], current: u64) -> Vec<RevisionView> {
    (kept.iter())
        .map(|r| RevisionView {
            revision: r.revision,
            deployed_at_ms: r.deployed_at_ms,
            cause: r.cause.clone(),
            rollback_of: r.rollback_of,
            services: (r.spec.services.values())
                .map(|s| (s.name.clone(), artifact_text(&s.artifact)))
                .collect(),
            current: r.revision == current,
        })
        .collect()
}

/// What an artifact is, as the user wrote or uploaded it.
pub(crate) fn artifact_text(artifact: &Artifact) -> String {
    match artifact {
        Artifact::Component(p) => p.clone(),
        Artifact::Stored(d) => d.clone(),
        Artifact::Image(r) => r.clone(),
    }
}

fn service_view(svc: &Service, desired: u32, running: u32, message: Option<String>) -> ServiceView {
    let kind = match &svc.artifact {
        Artifact::Component(_) | Artifact::Stored(_) => "component",
        Artifact::Image(_) => "image",
    };
    let artifact = artifact_text(&svc.artifact);
    ServiceView {
        name: svc.name.clone(),
        kind: kind.to_string(),
        artifact,
        mode: match svc.deploy.mode {
            Mode::Replicated => "replicated".into(),
            Mode::Global => "global".into(),
        },
        desired,
        running,
        ports: svc
            .ports
            .iter()
            .map(|p| format!("{}:{}", p.published, p.target))
            .collect(),
        message,
    }
}

/// Every known host, with what is assigned to it.
pub(crate) fn hosts(snap: &Snapshot, last_seen_ms: impl Fn(&str) -> u64) -> Vec<HostView> {
    snap.hosts
        .iter()
        .map(|h| {
            let assigned = snap
                .assignments
                .get(&h.info.name)
                .map(|a| a.instances.as_slice())
                .unwrap_or_default();
            let allocated = assigned
                .iter()
                .fold(Capacity::default(), |acc, i| Capacity {
                    memory: acc.memory + i.reservations.memory.unwrap_or(0),
                    cpus_milli: acc.cpus_milli + i.reservations.cpus_milli.unwrap_or(0),
                });
            let holding = snap.hold.is_some();
            let any_unconfirmed = assigned.iter().any(|i| {
                disconnect::presence(h, &i.disconnect, snap.now_ms, holding)
                    == Presence::Unconfirmed
            });
            HostView {
                name: h.info.name.clone(),
                state: disconnect::host_state(h, any_unconfirmed, holding),
                address: h.info.address.clone(),
                labels: h.info.labels.clone(),
                arch: h.info.arch.clone(),
                os: h.info.os.clone(),
                capacity: h.info.capacity,
                allocated,
                instances: assigned.len() as u32,
                last_seen_ms: last_seen_ms(&h.info.name),
                version: h.info.version.clone(),
                availability: h.availability,
            }
        })
        .collect()
}
