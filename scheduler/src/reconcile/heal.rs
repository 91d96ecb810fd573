//! On heal: a host is heard again after some of its instances were lost
//! and replaced elsewhere. Of each pair (an original and the instance that
//! `replaces` it), exactly one stays, as `x-atoll.disconnect.reconcile`
//! says: `keep_original`, `keep_replacement`, or `best_score` — the one on
//! the host placement prefers now, the original on a tie. The original is
//! stopped only once its replacement runs, so the service is never left
//! with neither.

use super::input::{Desired, Placed};
use super::stop::{Stop, StopReason};
use crate::placement::{self, Candidate, Demand};
use crate::snapshot::Snapshot;
use atoll_sdk::cluster::InstanceState;
use atoll_sdk::spec::HealPolicy;

/// Settles the pairs among `keep` (both copies there: the original's host
/// is heard again): the one that goes moves to `stop`. An original that
/// is to go once its replacement runs leaves `keep` meanwhile (it stays
/// assigned, but does not count: the replacement does).
pub(super) fn settle<'a>(
    snap: &Snapshot,
    d: &Desired<'_>,
    keep: &mut Vec<Placed<'a>>,
    stop: &mut Vec<Stop<'a>>,
) {
    let policy = d.service.disconnect.reconcile;
    let pairs: Vec<(Placed<'a>, Placed<'a>)> = (keep.iter())
        .filter_map(|r| {
            let original = r.spec.replaces.as_deref()?;
            let o = keep.iter().find(|o| o.spec.id == original)?;
            let here = snap.host(o.host).is_some_and(|h| h.is_ready());
            here.then_some((*o, *r))
        })
        .collect();
    for (original, replacement) in pairs {
        let keep_original = match policy {
            HealPolicy::KeepOriginal => true,
            HealPolicy::KeepReplacement => false,
            HealPolicy::BestScore => prefers_original(snap, d, &original, &replacement),
        };
        let (goes, is_original) = if keep_original {
            (replacement, false)
        } else if snap.observed_state(&replacement.spec.id) == Some(InstanceState::Running) {
            (original, true)
        } else {
            // The replacement does not run yet: the original serves on
            // until it does.
            keep.retain(|p| p.spec.id != original.spec.id);
            continue;
        };
        keep.retain(|p| p.spec.id != goes.spec.id);
        stop.push(Stop {
            placed: goes,
            reason: StopReason::Healed {
                policy,
                original: is_original,
            },
        });
    }
}

/// Whether placement would rather have the service's instance on the
/// original's host than on the replacement's, each without the pair.
fn prefers_original(
    snap: &Snapshot,
    d: &Desired<'_>,
    original: &Placed<'_>,
    replacement: &Placed<'_>,
) -> bool {
    let (Some(oh), Some(rh)) = (snap.host(original.host), snap.host(replacement.host)) else {
        return true;
    };
    let pair = [&original.spec.id, &replacement.spec.id];
    let others = |host: &str| {
        (snap.assignments.get(host).into_iter())
            .flat_map(|a| &a.instances)
            .filter(move |i| !pair.contains(&&i.id))
    };
    // The original first: on a tie, placement keeps the first.
    let cands = [
        Candidate::with_instances(oh, others(oh.name())),
        Candidate::with_instances(rh, others(rh.name())),
    ];
    let demand = Demand::of(original.spec, &d.service.deploy);
    !matches!(placement::place(&cands, &demand), Ok(c) if c.index == 1)
}
