//! Placement: choose a host for one new instance.
//!
//! A pipeline in the manner of Nomad's `feasible/stack.go`: cheap filters
//! first (host state, constraints, replicas per host, resources), each
//! recording why it turned a host away, then scorers over the hosts that
//! passed. [`place`] answers with the best host, or with an [`Explain`] that
//! says why no host would do (`0/3 hosts available: 2 failed constraint …`).
//!
//! Everything here is a pure function of its arguments: the caller builds
//! the [`Candidate`]s (with whatever it already decided to put on them) and
//! updates them between placements. The one cluster-wide rule that is not
//! about hosts, a published port per service, is checked at deploy time
//! ([`check_ports`]).

mod explain;
pub(crate) mod free_ports;
mod ports;

pub(crate) use explain::{Explain, Rejection};
pub(crate) use ports::{PortConflict, check_ports};

use crate::snapshot::HostSnapshot;
use atoll_sdk::cluster::{Capacity, HostInfo, InstanceSpec};
use atoll_sdk::spec::{Constraint, ConstraintField, ConstraintOp, Deploy, Mode, ResourceSpec};
use std::collections::BTreeMap;

/// What is being placed: one instance of `app`/`service`, deployed with
/// `deploy`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Demand<'a> {
    pub app: &'a str,
    pub service: &'a str,
    pub deploy: &'a Deploy,
    /// Hosts to use only when no other will do: where the instance this
    /// one replaces failed for good.
    pub avoid: &'a [String],
}

impl<'a> Demand<'a> {
    /// One instance of `spec`'s service, avoiding no host.
    pub(crate) fn of(spec: &'a InstanceSpec, deploy: &'a Deploy) -> Self {
        Demand {
            app: &spec.app,
            service: &spec.service,
            deploy,
            avoid: &[],
        }
    }
}

/// A host together with what is already assigned to it, including what the
/// caller placed earlier in the same plan.
#[derive(Debug, Clone)]
pub(crate) struct Candidate<'a> {
    host: &'a HostSnapshot,
    /// Sum of the reservations of every instance assigned to the host.
    reserved: Capacity,
    /// Number of instances on the host, by (app, service).
    instances: BTreeMap<(String, String), u32>,
}

/// The host [`place`] chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Choice {
    /// Index of the host in the candidates given to [`place`].
    pub index: usize,
    pub host: String,
}

impl<'a> Candidate<'a> {
    /// A host with nothing on it.
    pub(crate) fn new(host: &'a HostSnapshot) -> Self {
        Candidate {
            host,
            reserved: Capacity::default(),
            instances: BTreeMap::new(),
        }
    }

    /// A host running `instances`.
    pub(crate) fn with_instances<'i>(
        host: &'a HostSnapshot,
        instances: impl IntoIterator<Item = &'i InstanceSpec>,
    ) -> Self {
        let mut c = Candidate::new(host);
        for i in instances {
            c.add(&i.app, &i.service, &i.reservations);
        }
        c
    }

    /// Counts one more instance on the host.
    pub(crate) fn add(&mut self, app: &str, service: &str, reservations: &ResourceSpec) {
        *self
            .instances
            .entry((app.to_string(), service.to_string()))
            .or_default() += 1;
        self.reserved.memory += reservations.memory.unwrap_or(0);
        self.reserved.cpus_milli += reservations.cpus_milli.unwrap_or(0);
    }

    pub(crate) fn name(&self) -> &'a str {
        self.host.name()
    }

    /// How many instances of `app`/`service` the host has.
    pub(crate) fn count(&self, app: &str, service: &str) -> u32 {
        // Avoids allocating a key for every lookup of a hot loop.
        self.instances
            .iter()
            .find(|((a, s), _)| a == app && s == service)
            .map_or(0, |(_, n)| *n)
    }
}

/// Chooses the best host for one instance of `demand`, or explains why
/// none will do.
pub(crate) fn place(candidates: &[Candidate<'_>], demand: &Demand<'_>) -> Result<Choice, Explain> {
    let mut rejected = BTreeMap::new();
    let mut feasible = Vec::new();
    for (index, c) in candidates.iter().enumerate() {
        match filter(c, demand) {
            Ok(()) => feasible.push(index),
            Err(why) => {
                rejected.insert(c.name().to_string(), why);
            }
        }
    }
    let spread = SpreadCounts::new(candidates, demand);
    let best = feasible
        .into_iter()
        .min_by_key(|&i| score(&candidates[i], demand, &spread));
    match best {
        Some(index) => Ok(Choice {
            index,
            host: candidates[index].name().to_string(),
        }),
        None => Err(Explain {
            hosts: candidates.len(),
            available: 0,
            rejected,
        }),
    }
}

/// Whether the host can take one more instance of `demand`; the first
/// filter that fails says why not. Cheap checks come first, so that a host
/// that is down is reported as down rather than as full.
pub(crate) fn filter(c: &Candidate<'_>, demand: &Demand<'_>) -> Result<(), Rejection> {
    if !c.host.is_ready() {
        return Err(Rejection::Down);
    }
    if !c.host.takes_new() {
        return Err(Rejection::Unavailable(c.host.availability));
    }
    if let Some(unmet) = unmet_constraint(&c.host.info, &demand.deploy.placement.constraints) {
        return Err(Rejection::Constraint(unmet.clone()));
    }
    // Global services run once per host by construction; the limit only
    // means something for replicated ones.
    let max = demand.deploy.placement.max_replicas_per_node;
    if let (Mode::Replicated, Some(max)) = (demand.deploy.mode, max)
        && c.count(demand.app, demand.service) >= max
    {
        return Err(Rejection::MaxReplicas(max));
    }
    fits(c, &demand.deploy.resources.reservations)
}

/// The first constraint the host does not satisfy.
pub(crate) fn unmet_constraint<'c>(
    info: &HostInfo,
    constraints: &'c [Constraint],
) -> Option<&'c Constraint> {
    constraints.iter().find(|c| !satisfies(info, c))
}

/// Whether the host satisfies one constraint. A label the host does not
/// have never equals anything and always differs (Swarm's behaviour).
pub(crate) fn satisfies(info: &HostInfo, constraint: &Constraint) -> bool {
    let actual = match &constraint.field {
        ConstraintField::Label(key) => info.labels.get(key).map(String::as_str),
        ConstraintField::Hostname => Some(info.name.as_str()),
        ConstraintField::Arch => Some(info.arch.as_str()),
        ConstraintField::Os => Some(info.os.as_str()),
    };
    let equal = actual == Some(constraint.value.as_str());
    match constraint.op {
        ConstraintOp::Eq => equal,
        ConstraintOp::Ne => !equal,
    }
}

/// Whether the reservation fits in what the host has left. A dimension the
/// instance does not reserve is not checked, so an instance that reserves
/// nothing fits even on an overcommitted host (as in Swarm).
fn fits(c: &Candidate<'_>, need: &ResourceSpec) -> Result<(), Rejection> {
    let cap = c.host.info.capacity;
    if let Some(need) = need.memory.filter(|&m| m > 0) {
        let free = cap.memory.saturating_sub(c.reserved.memory);
        if need > free {
            return Err(Rejection::Memory { need, free });
        }
    }
    if let Some(need) = need.cpus_milli.filter(|&m| m > 0) {
        let free = cap.cpus_milli.saturating_sub(c.reserved.cpus_milli);
        if need > free {
            return Err(Rejection::Cpu { need, free });
        }
    }
    Ok(())
}

/// For each spread preference, the number of instances of the service per
/// label value, over all candidates. Hosts without the label form the
/// group `""`.
struct SpreadCounts<'a> {
    per_preference: Vec<(&'a str, BTreeMap<&'a str, u32>)>,
}

impl<'a> SpreadCounts<'a> {
    fn new(candidates: &'a [Candidate<'a>], demand: &Demand<'a>) -> Self {
        let per_preference = demand
            .deploy
            .placement
            .preferences
            .iter()
            .map(|p| {
                let label = p.spread_label.as_str();
                let mut counts = BTreeMap::new();
                for c in candidates {
                    *counts.entry(label_value(c, label)).or_default() +=
                        c.count(demand.app, demand.service);
                }
                (label, counts)
            })
            .collect();
        SpreadCounts { per_preference }
    }

    /// Instances in the host's group, for each preference in order.
    fn of(&self, c: &Candidate<'a>) -> Vec<u32> {
        self.per_preference
            .iter()
            .map(|(label, counts)| counts.get(label_value(c, label)).copied().unwrap_or(0))
            .collect()
    }
}

/// `spread: node.labels.zone` names the label `zone`; the bare label name
/// is accepted too, so both spellings of the preference work.
fn label_value<'a>(c: &Candidate<'a>, spread_label: &str) -> &'a str {
    let key = spread_label
        .strip_prefix("node.labels.")
        .unwrap_or(spread_label);
    c.host.info.labels.get(key).map_or("", String::as_str)
}

/// A host's score; lower is better. Compared field by field: not a host to
/// avoid, then spread over the preferred labels, then fewest instances of
/// this service on the host, then least allocated, then the name so that
/// ties break the same way every time.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Score<'a> {
    avoided: bool,
    spread: Vec<u32>,
    same_service: u32,
    allocated_ppm: u64,
    name: &'a str,
}

fn score<'a>(c: &Candidate<'a>, demand: &Demand<'_>, spread: &SpreadCounts<'a>) -> Score<'a> {
    let need = &demand.deploy.resources.reservations;
    let cap = c.host.info.capacity;
    let memory = ppm(c.reserved.memory + need.memory.unwrap_or(0), cap.memory);
    let cpu = ppm(
        u64::from(c.reserved.cpus_milli + need.cpus_milli.unwrap_or(0)),
        u64::from(cap.cpus_milli),
    );
    Score {
        avoided: demand.avoid.iter().any(|h| h == c.name()),
        spread: spread.of(c),
        same_service: c.count(demand.app, demand.service),
        allocated_ppm: memory + cpu,
        name: c.name(),
    }
}

/// `used / capacity` in parts per million; integers keep scores totally
/// ordered and identical on every platform.
fn ppm(used: u64, capacity: u64) -> u64 {
    if capacity == 0 {
        return 0;
    }
    (u128::from(used) * 1_000_000 / u128::from(capacity)) as u64
}

#[cfg(test)]
mod tests;
