//! Step one of reconciliation: for each service, which instances to keep,
//! which to stop (and why) and what to place. Nothing is placed here, so a
//! rolling update can later apply a decision in batches.

use super::heal;
use super::input::{Desired, Key, Placed};
use super::rollout::{self, Progress};
use super::stop::{Stop, StopReason};
use crate::disconnect::{self, Presence};
use crate::placement::unmet_constraint;
use crate::snapshot::Snapshot;
use atoll_sdk::spec::Mode;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

/// New instances a service needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ToPlace<'a> {
    /// This many, wherever placement finds room.
    Replicas(u32),
    /// One on each of these hosts (global mode).
    OnHosts(Vec<&'a str>),
}

/// The decision for one service.
#[derive(Debug, Clone)]
pub(super) struct ServiceChanges<'a> {
    /// Instances that stay where they are.
    pub keep: Vec<Placed<'a>>,
    pub stop: Vec<Stop<'a>>,
    pub place: ToPlace<'a>,
    /// The first new instances placed replace ones their hosts gave up on.
    pub heirs: Vec<Heir>,
    /// Copies of an old instance to place (a stopped update's lost ones).
    pub restore: Option<(&'a atoll_sdk::cluster::InstanceSpec, u32)>,
    /// While instances of an older spec remain: how the update goes.
    pub progress: Option<Progress>,
}

/// What a replacement for an instance that failed for good, or that was
/// lost with its silent host, inherits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Heir {
    pub attempt: u32,
    pub avoid: Vec<String>,
    /// The lost instance it replaces: (id, host, how long silent).
    pub replaces: Option<(String, String, u64)>,
}

/// Hosts a line of replacements remembers avoiding, at most.
const MAX_AVOIDED: usize = 8;

/// How long after an instance failed for good it is re-placed: at once
/// the first time, then 5 s doubling up to 5 min, so an artifact that
/// fails everywhere is retried at a bounded rate rather than in a loop.
pub(super) fn replace_after_ms(attempt: u32) -> u64 {
    match attempt {
        0 => 0,
        n => (5_000u64 << (n - 1).min(6)).min(300_000),
    }
}

/// Decides for every service that is deployed or still has instances.
pub(super) fn all<'a>(
    snap: &'a Snapshot,
    desired: &BTreeMap<Key<'a>, Desired<'a>>,
    existing: &BTreeMap<Key<'a>, Vec<Placed<'a>>>,
) -> BTreeMap<Key<'a>, ServiceChanges<'a>> {
    let keys: BTreeSet<Key<'a>> = desired.keys().chain(existing.keys()).copied().collect();
    keys.into_iter()
        .map(|key| {
            let placed = existing.get(&key).map_or(&[][..], Vec::as_slice);
            let changes = match desired.get(&key) {
                None if snap.app(key.0).is_some_and(|r| r.stopped) => {
                    removed(placed, StopReason::AppStopped)
                }
                None => removed(placed, StopReason::Removed),
                Some(d) if d.service.deploy.mode == Mode::Global => global(snap, d, placed),
                Some(d) => replicated(snap, d, placed),
            };
            (key, changes)
        })
        .collect()
}

/// A service that is no longer deployed (or whose app is stopped): stop
/// everything.
fn removed<'a>(placed: &[Placed<'a>], reason: StopReason) -> ServiceChanges<'a> {
    ServiceChanges {
        keep: Vec::new(),
        stop: stops(placed, reason),
        place: ToPlace::Replicas(0),
        heirs: Vec::new(),
        restore: None,
        progress: None,
    }
}

fn stops<'a>(placed: &[Placed<'a>], reason: StopReason) -> Vec<Stop<'a>> {
    placed
        .iter()
        .map(|&placed| Stop { placed, reason })
        .collect()
}

/// Where each instance of a service stands.
struct Sorted<'a> {
    /// Stay where they are, and count.
    keep: Vec<Placed<'a>>,
    stop: Vec<Stop<'a>>,
    /// Lost with their silent host, to be replaced elsewhere: they stay
    /// assigned there (the host, cut off, runs them on; on heal one of each
    /// pair stays) but no longer count.
    lost: Vec<(Placed<'a>, u64)>,
    /// On a host being drained: replaced elsewhere like instances of an
    /// older spec (a new one ready before each stops).
    draining: Vec<Placed<'a>>,
}

/// Sorts a service's instances by where they may stay. Failed instances
/// are not stopped here: one its host gave up on is re-placed by
/// [`replicated`], with a growing delay, and one its host still restarts
/// holds its slot. An instance on a silent host counts as running until
/// its `lost_after`; then it is lost, and replaced unless it cannot move
/// ([`disconnect::replaceable`]: it then waits for its host). An instance
/// on a host that is gone (an operator removed it) is stopped.
fn sort_out<'a>(snap: &Snapshot, d: &Desired<'_>, placed: &[Placed<'a>]) -> Sorted<'a> {
    let mut out = Sorted {
        keep: Vec::new(),
        stop: Vec::new(),
        lost: Vec::new(),
        draining: Vec::new(),
    };
    let holding = snap.hold.is_some();
    for &p in placed {
        let Some(host) = snap.host(p.host) else {
            let reason = StopReason::Lost;
            out.stop.push(Stop { placed: p, reason });
            continue;
        };
        match disconnect::presence(host, &d.service.disconnect, snap.now_ms, holding) {
            Presence::Here => {
                let constraints = &d.service.deploy.placement.constraints;
                match unmet_constraint(&host.info, constraints) {
                    Some(_) => out.stop.push(Stop {
                        placed: p,
                        reason: StopReason::Unmatched,
                    }),
                    // Data in a named volume stays with its host unless
                    // the drain says otherwise (see `drains`).
                    None if host.drains(d.service) => out.draining.push(p),
                    None => out.keep.push(p),
                }
            }
            Presence::Unconfirmed => out.keep.push(p),
            Presence::Lost { silent_ms } if disconnect::replaceable(d.service) => {
                out.lost.push((p, silent_ms))
            }
            Presence::Lost { .. } => out.keep.push(p),
        }
    }
    out
}

/// Replicated mode: keep what may stay, up to `max_replicas_per_node` per
/// host and `replicas` in all; place the shortfall. Instances of an older
/// spec are replaced by a rolling update.
fn replicated<'a>(snap: &Snapshot, d: &Desired<'_>, placed: &[Placed<'a>]) -> ServiceChanges<'a> {
    let Sorted {
        mut keep,
        mut stop,
        lost,
        draining,
    } = sort_out(snap, d, placed);
    // A host heard again after its instances were replaced: one of each
    // pair stays.
    heal::settle(snap, d, &mut keep, &mut stop);
    let max = d.service.deploy.placement.max_replicas_per_node;
    let (keep, over) = cap_per_host(keep, max.unwrap_or(u32::MAX));
    stop.extend(stops(&over, StopReason::Unmatched));
    let (mut keep, mut old): (Vec<Placed<'a>>, Vec<Placed<'a>>) =
        keep.into_iter().partition(|p| p.spec.spec_hash == d.hash);
    let drain_only = old.is_empty() && !draining.is_empty();
    old.extend(draining);
    if !old.is_empty() {
        return rolling(snap, d, keep, old, stop, drain_only);
    }
    let replicas = d.service.deploy.replicas as usize;
    while keep.len() > replicas {
        let extra = keep.remove(pick_extra(snap, &keep));
        stop.push(Stop {
            placed: extra,
            reason: StopReason::Extra,
        });
    }
    // A failure soon after an update finished undoes the update rather
    // than being re-placed.
    let progress = rollout::monitor(snap, d, &keep);
    // The lost instances that have no replacement yet get one first.
    let mut heirs: Vec<Heir> = (lost.iter())
        .filter(|(o, _)| {
            !keep
                .iter()
                .any(|k| k.spec.replaces.as_deref() == Some(&o.spec.id))
        })
        .map(|(o, silent_ms)| Heir {
            attempt: 0,
            avoid: Vec::new(),
            replaces: Some((o.spec.id.clone(), o.host.to_string(), *silent_ms)),
        })
        .collect();
    if progress.is_none() {
        let (given_up, stay): (Vec<Placed<'a>>, Vec<Placed<'a>>) =
            keep.into_iter().partition(|p| due_for_replacement(snap, p));
        keep = stay;
        heirs.extend(given_up.iter().map(heir));
        stop.extend(stops(&given_up, StopReason::GaveUp));
    }
    let missing = (replicas - keep.len()) as u32;
    ServiceChanges {
        keep,
        stop,
        place: ToPlace::Replicas(missing),
        heirs,
        restore: None,
        progress,
    }
}

/// A replicated service with instances of an older spec, or on a host
/// being drained: the next step of its rolling update, besides the `stop`s
/// already decided. A drain alone (`drain_only`: the spec did not change)
/// is no update: it pauses where a replacement fails (rather than roll the
/// app back), and shows no update progress.
fn rolling<'a>(
    snap: &Snapshot,
    d: &Desired<'_>,
    current: Vec<Placed<'a>>,
    old: Vec<Placed<'a>>,
    mut stop: Vec<Stop<'a>>,
    drain_only: bool,
) -> ServiceChanges<'a> {
    // A service with a named volume is replaced where its data is, and
    // never runs twice on it: stop first, then start on that host — or,
    // moved off a drained host, anywhere else.
    let volumes = d.service.has_named_volumes();
    let mut cfg = *rollout::config(d);
    if volumes {
        cfg.order = atoll_sdk::spec::UpdateOrder::StopFirst;
    }
    if drain_only {
        cfg.failure_action = atoll_sdk::spec::FailureAction::Pause;
    }
    let mut step = rollout::step(snap, d, current, old, &cfg);
    // An old instance that runs the current spec is one being drained
    // (`replicated` adds those to the older-spec ones).
    for s in step
        .stop
        .iter_mut()
        .filter(|s| s.placed.spec.spec_hash == d.hash)
    {
        s.reason = StopReason::Drained;
    }
    let moved = |s: &Stop<'_>| {
        snap.host(s.placed.host)
            .is_some_and(|h| h.drains(d.service))
    };
    let place =
        if volumes && step.place > 0 && !step.stop.is_empty() && !step.stop.iter().any(moved) {
            let mut hosts: Vec<&'a str> = step.stop.iter().map(|s| s.placed.host).collect();
            hosts.dedup();
            ToPlace::OnHosts(hosts)
        } else {
            ToPlace::Replicas(step.place)
        };
    stop.extend(step.stop);
    ServiceChanges {
        keep: step.keep,
        stop,
        place,
        heirs: Vec::new(),
        restore: step.restore,
        progress: (!drain_only).then_some(step.progress),
    }
}

/// Whether the instance's host gave up on it long enough ago to place a
/// new one (see [`replace_after_ms`]).
fn due_for_replacement(snap: &Snapshot, p: &Placed<'_>) -> bool {
    snap.observed.get(&p.spec.id).is_some_and(|o| {
        // How long it has been failed, on the server's clock.
        let since = snap
            .seen_since
            .get(&p.spec.id)
            .copied()
            .unwrap_or(snap.now_ms);
        o.gave_up && snap.now_ms.saturating_sub(since) >= replace_after_ms(p.spec.attempt)
    })
}

fn heir(p: &Placed<'_>) -> Heir {
    let mut avoid = p.spec.avoid.clone();
    avoid.retain(|h| h != p.host);
    avoid.push(p.host.to_string());
    let drop = avoid.len().saturating_sub(MAX_AVOIDED);
    avoid.drain(..drop);
    Heir {
        attempt: p.spec.attempt.saturating_add(1),
        avoid,
        replaces: None,
    }
}

/// Keeps at most `max` instances per host (the lowest ids, as `placed` is
/// sorted), e.g. after `max_replicas_per_node` was lowered.
fn cap_per_host<'a>(placed: Vec<Placed<'a>>, max: u32) -> (Vec<Placed<'a>>, Vec<Placed<'a>>) {
    let mut per_host: BTreeMap<&str, u32> = BTreeMap::new();
    placed.into_iter().partition(|p| {
        let n = per_host.entry(p.host).or_default();
        *n += 1;
        *n <= max
    })
}

/// The instance to stop when scaling down: one that is not active (failed,
/// say) first, since it serves nothing; then one from the host with the
/// most instances of the service, so that what remains stays spread; ties
/// by host name, then id. Re-evaluated after every pick.
fn pick_extra(snap: &Snapshot, keep: &[Placed<'_>]) -> usize {
    let mut per_host: BTreeMap<&str, usize> = BTreeMap::new();
    for p in keep {
        *per_host.entry(p.host).or_default() += 1;
    }
    let active = |p: &Placed<'_>| {
        snap.observed_state(&p.spec.id)
            .is_none_or(|s| s.is_active())
    };
    (0..keep.len())
        .min_by_key(|&i| {
            let p = &keep[i];
            (active(p), Reverse(per_host[p.host]), p.host, &p.spec.id)
        })
        .expect("called with more instances than replicas, so at least one")
}

/// Global mode: one instance on every ready host that satisfies the
/// constraints. Whether a host without one has room is checked when
/// placing, against the allocations left after this plan's stops.
fn global<'a>(snap: &'a Snapshot, d: &Desired<'_>, placed: &[Placed<'a>]) -> ServiceChanges<'a> {
    // Never replaced elsewhere: nothing of a global service is lost. One
    // on a host being drained just stops (the other hosts run theirs).
    let Sorted {
        keep,
        mut stop,
        draining,
        ..
    } = sort_out(snap, d, placed);
    stop.extend(stops(&draining, StopReason::Drained));
    let (mut keep, changed): (Vec<Placed<'a>>, Vec<Placed<'a>>) =
        keep.into_iter().partition(|p| p.spec.spec_hash == d.hash);
    // A changed global service is replaced a few hosts at a time; the old
    // instances left for later keep their hosts (and serve).
    let mut progress = None;
    if !changed.is_empty() {
        let cfg = rollout::config(d);
        let (now, later, p) = rollout::global_step(snap, cfg, &keep, changed);
        stop.extend(stops(&now, StopReason::Changed));
        keep.extend(later);
        progress = Some(p);
    }
    let (keep, duplicates) = cap_per_host(keep, 1);
    stop.extend(stops(&duplicates, StopReason::Extra));
    let served: BTreeSet<&str> = keep.iter().map(|p| p.host).collect();
    let constraints = &d.service.deploy.placement.constraints;
    let mut targets: Vec<&'a str> = snap
        .hosts
        .iter()
        .filter(|h| h.takes_new() && !served.contains(h.name()))
        .filter(|h| unmet_constraint(&h.info, constraints).is_none())
        .map(|h| h.name())
        .collect();
    targets.sort_unstable();
    targets.dedup();
    ServiceChanges {
        keep,
        stop,
        place: ToPlace::OnHosts(targets),
        heirs: Vec::new(),
        restore: None,
        progress,
    }
}
