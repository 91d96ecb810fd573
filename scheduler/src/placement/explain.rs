//! Why hosts were turned away, and the one-line summary `atoll deploy` and
//! the app status show: `0/3 hosts available: 2 failed constraint
//! node.labels.zone == east, 1 insufficient memory (need 64.0 MiB, 10.0 MiB
//! free)` — the shape Nomad and Swarm users know.

use atoll_sdk::spec::Constraint;
use std::collections::BTreeMap;
use std::fmt;

/// Why one host cannot take an instance: the first filter it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// The host is down.
    Down,
    /// An operator cordoned or is draining the host.
    Unavailable(atoll_sdk::protocol::Availability),
    /// The host does not satisfy this placement constraint.
    Constraint(Constraint),
    /// The host already runs `max_replicas_per_node` instances of the
    /// service.
    MaxReplicas(u32),
    /// Not enough unreserved memory, in bytes.
    Memory { need: u64, free: u64 },
    /// Not enough unreserved CPU, in thousandths of a CPU.
    Cpu { need: u32, free: u32 },
}

impl Rejection {
    /// Whether the host would qualify if it had more room: it is up and
    /// matches the placement rules, so the service is short of capacity
    /// rather than of matching hosts.
    pub(crate) fn is_resources(&self) -> bool {
        matches!(self, Rejection::Memory { .. } | Rejection::Cpu { .. })
    }
}

/// Why no host (or not every host, in global mode) could take an instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Explain {
    /// Hosts considered.
    pub hosts: usize,
    /// Hosts that can take (or, in global mode, already run) the instance;
    /// always 0 when [`super::place`] fails.
    pub available: usize,
    /// Why each other host was rejected, by host name.
    pub rejected: BTreeMap<String, Rejection>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Down => f.write_str("down"),
            Rejection::Unavailable(a) => write!(f, "{a}"),
            Rejection::Constraint(c) => write!(f, "failed constraint {c}"),
            Rejection::MaxReplicas(max) => write!(f, "at max_replicas_per_node ({max})"),
            Rejection::Memory { need, free } => {
                write!(
                    f,
                    "insufficient memory (need {}, {} free)",
                    bytes(*need),
                    bytes(*free)
                )
            }
            Rejection::Cpu { need, free } => {
                write!(
                    f,
                    "insufficient cpu (need {} CPU, {} CPU free)",
                    cpus(*need),
                    cpus(*free)
                )
            }
        }
    }
}

/// Rejections that read the same in the summary. Variant order is the
/// order of the filters, so the summary lists reasons in pipeline order.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Down,
    Unavailable(atoll_sdk::protocol::Availability),
    Constraint(String),
    MaxReplicas(u32),
    Memory,
    Cpu,
}

/// Hosts in a group; for resources also the need and the most any of them
/// has free, which tells the user how far off the best host is.
#[derive(Default)]
struct Tally {
    hosts: usize,
    need: u64,
    most_free: u64,
}

impl fmt::Display for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} hosts available", self.available, self.hosts)?;
        if self.hosts == 0 {
            return f.write_str(": no host has joined the cluster");
        }
        let parts: Vec<String> = self.tallies().iter().map(|(g, t)| describe(g, t)).collect();
        if !parts.is_empty() {
            write!(f, ": {}", parts.join(", "))?;
        }
        Ok(())
    }
}

impl Explain {
    fn tallies(&self) -> BTreeMap<Group, Tally> {
        let mut groups: BTreeMap<Group, Tally> = BTreeMap::new();
        for why in self.rejected.values() {
            let (group, need, free) = match why {
                Rejection::Down => (Group::Down, 0, 0),
                Rejection::Unavailable(a) => (Group::Unavailable(*a), 0, 0),
                Rejection::Constraint(c) => (Group::Constraint(c.to_string()), 0, 0),
                Rejection::MaxReplicas(m) => (Group::MaxReplicas(*m), 0, 0),
                Rejection::Memory { need, free } => (Group::Memory, *need, *free),
                Rejection::Cpu { need, free } => (Group::Cpu, (*need).into(), (*free).into()),
            };
            let t = groups.entry(group).or_default();
            t.hosts += 1;
            t.need = t.need.max(need);
            t.most_free = t.most_free.max(free);
        }
        groups
    }
}

fn describe(group: &Group, t: &Tally) -> String {
    let n = t.hosts;
    // With several hosts, the free figure is the best of them.
    let at_most = if n > 1 { "at most " } else { "" };
    match group {
        Group::Down => format!("{n} down"),
        Group::Unavailable(a) => format!("{n} {a}"),
        Group::Constraint(c) => format!("{n} failed constraint {c}"),
        Group::MaxReplicas(max) => format!("{n} at max_replicas_per_node ({max})"),
        Group::Memory => format!(
            "{n} insufficient memory (need {}, {at_most}{} free)",
            bytes(t.need),
            bytes(t.most_free)
        ),
        Group::Cpu => format!(
            "{n} insufficient cpu (need {} CPU, {at_most}{} CPU free)",
            cpus(t.need as u32),
            cpus(t.most_free as u32)
        ),
    }
}

/// `67108864` → `64.0 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Thousandths of a CPU as Compose writes them: `500` → `0.5`, `2000` → `2`.
pub(crate) fn cpus(milli: u32) -> String {
    let whole = milli / 1000;
    let frac = milli % 1000;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:03}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}
