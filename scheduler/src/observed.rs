//! Observed state: what hosts say in their heartbeats. Plain data; the
//! caller passes the time, so host-loss detection is unit-tested.

use crate::snapshot::HostSnapshot;
use atoll_sdk::cluster::{HostInfo, HostState, InstanceStatus};
use atoll_sdk::protocol::Heartbeat;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct SeenHost {
    info: HostInfo,
    state: HostState,
    last_seen: Instant,
    last_seen_ms: u64,
    instances: Vec<InstanceStatus>,
}

/// Hosts and their instances as last reported.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    hosts: BTreeMap<String, SeenHost>,
}

/// What a heartbeat or a sweep changed, so the controller wakes only when
/// something it decides on moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    pub hosts_up: Vec<String>,
    pub hosts_down: Vec<String>,
    /// Some instance changed state (or appeared, or vanished).
    pub instances: bool,
}

impl Changes {
    pub(crate) fn any(&self) -> bool {
        self.instances || !self.hosts_up.is_empty() || !self.hosts_down.is_empty()
    }
}

impl Observed {
    /// Takes a heartbeat in.
    pub(crate) fn record(&mut self, hb: Heartbeat, now: Instant, now_ms: u64) -> Changes {
        let mut changes = Changes::default();
        let name = hb.host.name.clone();
        match self.hosts.get_mut(&name) {
            Some(seen) => {
                if seen.state == HostState::Down || seen.info.started_at_ms != hb.host.started_at_ms
                {
                    changes.hosts_up.push(name.clone());
                }
                changes.instances = !same_states(&seen.instances, &hb.instances);
                seen.info = hb.host;
                seen.state = HostState::Ready;
                seen.last_seen = now;
                seen.last_seen_ms = now_ms;
                seen.instances = hb.instances;
            }
            None => {
                changes.hosts_up.push(name.clone());
                changes.instances = !hb.instances.is_empty();
                self.hosts.insert(
                    name,
                    SeenHost {
                        info: hb.host,
                        state: HostState::Ready,
                        last_seen: now,
                        last_seen_ms: now_ms,
                        instances: hb.instances,
                    },
                );
            }
        }
        changes
    }

    /// Marks hosts silent for longer than `timeout` as down.
    pub(crate) fn sweep(&mut self, now: Instant, timeout: Duration) -> Changes {
        let mut changes = Changes::default();
        for (name, seen) in &mut self.hosts {
            if seen.state == HostState::Ready && now.duration_since(seen.last_seen) > timeout {
                seen.state = HostState::Down;
                changes.hosts_down.push(name.clone());
            }
        }
        changes
    }

    /// Counts every host as heard from now (used while the server itself
    /// is cut off from NATS, when silence says nothing about the hosts).
    pub(crate) fn touch_all(&mut self, now: Instant) {
        for seen in self.hosts.values_mut() {
            seen.last_seen = now;
        }
    }

    pub(crate) fn knows(&self, host: &str) -> bool {
        self.hosts.contains_key(host)
    }

    pub(crate) fn hosts(&self) -> Vec<HostSnapshot> {
        self.hosts
            .values()
            .map(|s| HostSnapshot {
                info: s.info.clone(),
                state: s.state,
            })
            .collect()
    }

    pub(crate) fn last_seen_ms(&self, host: &str) -> u64 {
        self.hosts.get(host).map_or(0, |s| s.last_seen_ms)
    }

    /// Instance statuses by id, from hosts that are up. Instances of a down
    /// host are absent: the controller treats them as lost.
    pub(crate) fn instances(&self) -> BTreeMap<String, InstanceStatus> {
        self.hosts
            .values()
            .filter(|s| s.state == HostState::Ready)
            .flat_map(|s| s.instances.iter().cloned())
            .map(|i| (i.id.clone(), i))
            .collect()
    }
}

fn same_states(a: &[InstanceStatus], b: &[InstanceStatus]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.id == y.id && x.state == y.state && x.reason == y.reason && x.health == y.health
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::cluster::{Capacity, InstanceState};

    fn hb(host: &str, started: u64, states: &[(&str, InstanceState)]) -> Heartbeat {
        Heartbeat {
            v: 1,
            seq: 1,
            host: HostInfo {
                name: host.into(),
                address: "127.0.0.2".into(),
                mesh_port: atoll_sdk::cluster::DEFAULT_MESH_PORT,
                labels: Default::default(),
                arch: "x86_64".into(),
                os: "linux".into(),
                capacity: Capacity::default(),
                started_at_ms: started,
                version: "test".into(),
            },
            instances: states
                .iter()
                .map(|(id, st)| InstanceStatus {
                    id: (*id).into(),
                    app: "a".into(),
                    service: "s".into(),
                    revision: 1,
                    state: *st,
                    reason: None,
                    since_ms: 0,
                    restarts: 0,
                    pull: None,
                    health: None,
                    gave_up: false,
                })
                .collect(),
        }
    }

    #[test]
    fn a_silent_host_goes_down_and_comes_back() {
        let mut o = Observed::default();
        let t0 = Instant::now();
        let c = o.record(hb("h1", 1, &[("i1", InstanceState::Running)]), t0, 0);
        assert_eq!(c.hosts_up, vec!["h1".to_string()]);
        assert_eq!(o.instances().len(), 1);

        let timeout = Duration::from_secs(3);
        assert!(!o.sweep(t0 + Duration::from_secs(2), timeout).any());
        let c = o.sweep(t0 + Duration::from_secs(4), timeout);
        assert_eq!(c.hosts_down, vec!["h1".to_string()]);
        assert!(
            o.instances().is_empty(),
            "a down host's instances are not observed"
        );
        assert_eq!(o.hosts()[0].state, HostState::Down);

        let c = o.record(hb("h1", 1, &[]), t0 + Duration::from_secs(5), 0);
        assert_eq!(c.hosts_up, vec!["h1".to_string()]);
    }

    #[test]
    fn only_state_changes_count_as_changes() {
        let mut o = Observed::default();
        let t0 = Instant::now();
        o.record(hb("h1", 1, &[("i1", InstanceState::Starting)]), t0, 0);
        let same = o.record(hb("h1", 1, &[("i1", InstanceState::Starting)]), t0, 0);
        assert!(!same.any());
        let moved = o.record(hb("h1", 1, &[("i1", InstanceState::Running)]), t0, 0);
        assert!(moved.instances);
        let restarted = o.record(hb("h1", 2, &[("i1", InstanceState::Running)]), t0, 0);
        assert_eq!(restarted.hosts_up, vec!["h1".to_string()]);
    }
}
