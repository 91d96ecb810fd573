//! Rolling updates: a service whose instances run an older spec is moved
//! to the new one a batch at a time, as its `update_config` says.
//!
//! Level-triggered like the rest of reconciliation: every pass looks at
//! how many new instances are ready, pending or failed and how many old
//! ones remain, and takes the next step.
//!
//! - `start-first` (the default): start up to `parallelism` new instances;
//!   stop an old one for each new one that is ready; start the next batch
//!   once the last one has been ready for `delay`. Nothing stops serving:
//!   there are always at least `replicas` ready instances, old or new.
//! - `stop-first`: stop `parallelism` old instances, start their
//!   replacements, and go on once those are ready (for `delay`).
//!
//! A new instance that fails (exits for good, or turns unhealthy) counts
//! against the update; past `max_failure_ratio` the update stops where it
//! is (`pause`, and `rollback`, which the controller then carries out), or
//! goes on regardless (`continue`).

use super::input::{Desired, Placed, decided_for};
use super::stop::{Stop, StopReason};
use crate::snapshot::Snapshot;
use atoll_sdk::cluster::{HealthState, InstanceState};
use atoll_sdk::protocol::{AppRecord, AppStatus, UpdateDone};
use atoll_sdk::spec::{FailureAction, UpdateConfig, UpdateOrder};
use std::collections::BTreeMap;

/// Where a service's update stands, for the app status and `deploy --wait`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Progress {
    /// New instances ready, of `replicas`.
    pub updated: u32,
    pub replicas: u32,
    /// Set when failures stopped the update: what failed, and what
    /// `failure_action` says to do.
    pub failed: Option<(String, FailureAction)>,
}

/// One step of an update: which old instances stop now, and how many new
/// ones to place.
pub(super) struct Step<'a> {
    pub keep: Vec<Placed<'a>>,
    pub stop: Vec<Stop<'a>>,
    pub place: u32,
    /// While the update is stopped: copies of an old instance to place,
    /// for old ones lost meanwhile (the service keeps its count on the
    /// version that works).
    pub restore: Option<(&'a atoll_sdk::cluster::InstanceSpec, u32)>,
    pub progress: Progress,
}

/// How one new instance is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum New {
    /// Ready for at least `delay`: its batch is done.
    Settled,
    /// Ready, but not yet for `delay`.
    Ready,
    Pending,
    Failed,
}

pub(super) fn classify(snap: &Snapshot, p: &Placed<'_>, delay_ms: u64) -> New {
    let Some(o) = snap.observed.get(&p.spec.id) else {
        return New::Pending;
    };
    match o.state {
        InstanceState::Failed | InstanceState::Stopped | InstanceState::Lost => New::Failed,
        _ if o.health == Some(HealthState::Unhealthy) => New::Failed,
        s if s.is_ready(o.health) => {
            // Ready since when, on the server's clock.
            let since = snap
                .seen_since
                .get(&p.spec.id)
                .copied()
                .unwrap_or(snap.now_ms);
            if snap.now_ms.saturating_sub(since) >= delay_ms {
                New::Settled
            } else {
                New::Ready
            }
        }
        _ => New::Pending,
    }
}

/// The next step of updating `old` instances to `current` ones.
pub(super) fn step<'a>(
    snap: &Snapshot,
    d: &Desired<'_>,
    current: Vec<Placed<'a>>,
    mut old: Vec<Placed<'a>>,
    cfg: &UpdateConfig,
) -> Step<'a> {
    let replicas = d.service.deploy.replicas;
    let (states, t) = tally(snap, &current, cfg.delay_ms);
    let failure = too_many(cfg, t.failed, replicas).then(|| first_failure(snap, &current, &states));
    let mut progress = Progress {
        updated: t.settled + t.ready,
        replicas,
        failed: None,
    };
    let halted = match failure {
        Some(why) if cfg.failure_action != FailureAction::Continue => {
            progress.failed = Some((why, cfg.failure_action));
            true
        }
        _ => false,
    };
    idle_first(snap, &mut old);
    let total_old = old.len() as u32;
    let current_n = current.len() as u32;
    let (stop_n, place) = if halted {
        (0, 0)
    } else {
        batch(snap, d, cfg, &t, total_old, current_n)
    };
    // Stopped: old instances lost meanwhile come back as they were.
    let healthy_new = current_n - t.failed;
    let restore = (halted && total_old > 0)
        .then(|| replicas.saturating_sub(healthy_new + total_old))
        .filter(|&n| n > 0)
        .and_then(|n| old.first().map(|p| (p.spec, n)));
    let mut keep = current;
    let mut stop = Vec::new();
    for (i, p) in old.into_iter().enumerate() {
        if (i as u32) < stop_n {
            stop.push(Stop {
                placed: p,
                reason: StopReason::Changed,
            });
        } else {
            keep.push(p);
        }
    }
    Step {
        keep,
        stop,
        place,
        restore,
        progress,
    }
}

/// How many of the `total_old` old instances stop now and how many new
/// ones to place, given how the `current_n` new ones are doing (`t`).
fn batch(
    snap: &Snapshot,
    d: &Desired<'_>,
    cfg: &UpdateConfig,
    t: &Tally,
    total_old: u32,
    current_n: u32,
) -> (u32, u32) {
    let replicas = d.service.deploy.replicas;
    let batch = match cfg.parallelism {
        0 => replicas.max(1),
        p => p,
    };
    let in_batch = t.ready + t.pending;
    // Past this point failures are let go (`continue`, or under the ratio):
    // a failed new instance counts as done, or the update never finishes.
    let done = t.settled + t.failed;
    // Start-first needs room for one more instance; when the last pass
    // found none, this batch goes stop-first instead.
    let key = (d.record.spec.name.clone(), d.service.name.clone());
    let order = match cfg.order {
        UpdateOrder::StartFirst if in_batch == 0 && snap.unplaced.contains(&key) => {
            UpdateOrder::StopFirst
        }
        order => order,
    };
    match order {
        UpdateOrder::StartFirst => {
            // One old instance out for every new one done or ready beyond
            // the replicas count.
            let stop_n = (total_old + done + t.ready).saturating_sub(replicas);
            let room = batch.saturating_sub(in_batch);
            (
                stop_n.min(total_old),
                room.min(replicas.saturating_sub(current_n)),
            )
        }
        UpdateOrder::StopFirst => {
            let stop_n = if in_batch == 0 && done == current_n {
                batch.min(total_old)
            } else {
                0
            };
            let left = total_old - stop_n;
            (stop_n, replicas.saturating_sub(current_n + left))
        }
    }
}

/// After a service's update finished, its new instances are watched for
/// `monitor`: failures past `max_failure_ratio` in that window undo the
/// update when `failure_action` is `rollback` (there is nothing left to
/// pause or continue). Answers the progress that says so.
pub(super) fn monitor(
    snap: &Snapshot,
    d: &Desired<'_>,
    current: &[Placed<'_>],
) -> Option<Progress> {
    let cfg = config(d);
    if cfg.failure_action != FailureAction::Rollback {
        return None;
    }
    let app = d.record.spec.name.as_str();
    let done = snap.updated.get(app)?.get(&d.service.name)?;
    if done.revision != d.record.revision || snap.now_ms >= done.at_ms + cfg.monitor_ms {
        return None;
    }
    let failing = |p: &Placed<'_>| {
        snap.observed.get(&p.spec.id).is_some_and(|o| {
            o.state == InstanceState::Failed || o.health == Some(HealthState::Unhealthy)
        })
    };
    let failed: Vec<&Placed<'_>> = current.iter().filter(|p| failing(p)).collect();
    let replicas = d.service.deploy.replicas;
    if !too_many(cfg, failed.len() as u32, replicas) {
        return None;
    }
    let why = failure_of(snap, failed[0]);
    Some(Progress {
        updated: replicas,
        replicas,
        failed: Some((format!("{why} (within monitor)"), FailureAction::Rollback)),
    })
}

/// The next step of a global service's update: host by host, at most
/// `parallelism` hosts at a time, each stop-first (one instance per host):
/// the old instances to stop now — their hosts then get a new one in the
/// same plan — and how it goes. The other hosts serve meanwhile.
pub(super) fn global_step<'a>(
    snap: &Snapshot,
    cfg: &UpdateConfig,
    current: &[Placed<'a>],
    mut old: Vec<Placed<'a>>,
) -> (Vec<Placed<'a>>, Vec<Placed<'a>>, Progress) {
    let hosts = (current.len() + old.len()) as u32;
    let (states, t) = tally(snap, current, cfg.delay_ms);
    let (settled, ready, pending, failed) = (t.settled, t.ready, t.pending, t.failed);
    let mut progress = Progress {
        updated: settled + ready,
        replicas: hosts,
        failed: None,
    };
    let failing = too_many(cfg, failed, hosts);
    if failing && cfg.failure_action != FailureAction::Continue {
        let why = first_failure(snap, current, &states);
        progress.failed = Some((why, cfg.failure_action));
        return (Vec::new(), old, progress);
    }
    let batch = match cfg.parallelism {
        0 => hosts.max(1),
        p => p,
    };
    let now = batch.saturating_sub(ready + pending) as usize;
    idle_first(snap, &mut old);
    let stay = old.split_off(now.min(old.len()));
    (old, stay, progress)
}

/// When each service's last update finished, for the app status (and
/// `monitor`): the services whose rollout the status `before` showed and
/// `rollouts` (this plan's) no longer has finish at `now_ms`.
pub(crate) fn updates_done(
    app: &AppRecord,
    before: Option<&AppStatus>,
    rollouts: Option<&BTreeMap<String, Progress>>,
    now_ms: u64,
) -> BTreeMap<String, UpdateDone> {
    let Some(before) = before else {
        return BTreeMap::new();
    };
    let mut done = before.updated.clone();
    for service in before.rollouts.keys() {
        // A failure `monitor` reported, once it clears, is not a second
        // end of the same update.
        let known = (done.get(service)).is_some_and(|d| d.revision == app.revision);
        if !known && rollouts.is_none_or(|r| !r.contains_key(service)) {
            let at = UpdateDone {
                revision: app.revision,
                at_ms: now_ms,
            };
            done.insert(service.clone(), at);
        }
    }
    done.retain(|s, _| app.spec.services.contains_key(decided_for(s)));
    done
}

/// How many new instances are in each state.
struct Tally {
    settled: u32,
    ready: u32,
    pending: u32,
    failed: u32,
}

/// Each new instance's state, and how many are in each.
fn tally(snap: &Snapshot, current: &[Placed<'_>], delay_ms: u64) -> (Vec<New>, Tally) {
    let states: Vec<New> = (current.iter())
        .map(|p| classify(snap, p, delay_ms))
        .collect();
    let count = |k: New| states.iter().filter(|&&s| s == k).count() as u32;
    let t = Tally {
        settled: count(New::Settled),
        ready: count(New::Ready),
        pending: count(New::Pending),
        failed: count(New::Failed),
    };
    (states, t)
}

/// Old instances that serve nothing go first, then by host and id.
fn idle_first(snap: &Snapshot, old: &mut [Placed<'_>]) {
    old.sort_by_key(|p| {
        let serving = (snap.observed.get(&p.spec.id)).is_some_and(|o| o.state.is_ready(o.health));
        (serving, p.host, &p.spec.id)
    });
}

/// The settings a change of `d` rolls out with: `rollback_config` for a
/// revision that restores an earlier one, `update_config` otherwise.
pub(super) fn config<'a>(d: &Desired<'a>) -> &'a UpdateConfig {
    if d.record.rollback_of.is_some() {
        &d.service.deploy.rollback
    } else {
        &d.service.deploy.update
    }
}

/// Whether `failed` new instances of `total` stop the update.
fn too_many(cfg: &UpdateConfig, failed: u32, total: u32) -> bool {
    failed > 0 && f64::from(failed) > cfg.max_failure_ratio * f64::from(total)
}

fn first_failure(snap: &Snapshot, current: &[Placed<'_>], states: &[New]) -> String {
    let failed = current.iter().zip(states).find(|(_, s)| **s == New::Failed);
    match failed {
        Some((p, _)) => failure_of(snap, p),
        None => "a new instance failed".into(),
    }
}

/// What failed, where and why, for the app status.
fn failure_of(snap: &Snapshot, p: &Placed<'_>) -> String {
    let reason = (snap.observed.get(&p.spec.id))
        .and_then(|o| o.reason.clone())
        .unwrap_or_else(|| "failed".into());
    format!("new instance {} on {}: {reason}", p.spec.id, p.host)
}
