//! Placement tests, one file per concern. Fixtures come from
//! [`crate::snapshot::fixtures`].

mod constraints;
mod explain;
mod resources;
mod scoring;

use super::*;
use crate::snapshot::fixtures::*;
use atoll_sdk::spec::Service;

pub(super) const APP: &str = "shop";

pub(super) fn demand(svc: &Service) -> Demand<'_> {
    Demand {
        app: APP,
        service: &svc.name,
        deploy: &svc.deploy,
        avoid: &[],
    }
}

/// Empty candidates over `hosts`.
pub(super) fn empty(hosts: &[HostSnapshot]) -> Vec<Candidate<'_>> {
    hosts.iter().map(Candidate::new).collect()
}

/// Where one instance of `svc` goes on empty `hosts`.
pub(super) fn choose(hosts: &[HostSnapshot], svc: &Service) -> Result<String, Explain> {
    place(&empty(hosts), &demand(svc)).map(|c| c.host)
}

/// Places `n` instances one after the other, counting each on its host as
/// reconcile does; returns the chosen hosts in order.
pub(super) fn place_n(cands: &mut [Candidate<'_>], svc: &Service, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let choice = place(cands, &demand(svc)).expect("placeable");
            cands[choice.index].add(APP, &svc.name, &svc.deploy.resources.reservations);
            choice.host
        })
        .collect()
}

/// How many of `hosts` got each name.
pub(super) fn tally(hosts: &[String]) -> BTreeMap<&str, usize> {
    let mut out = BTreeMap::new();
    for h in hosts {
        *out.entry(h.as_str()).or_default() += 1;
    }
    out
}
