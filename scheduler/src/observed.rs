//! Observed state: what hosts say in their heartbeats. Plain data; the
//! caller passes the time, so host-loss detection is unit-tested.
//!
//! Every duration is judged on the server's clock: when a host was first
//! heard in this run (`joined_ms`), when it went silent, and when each
//! instance was first seen in its current state (`seen_since`). What a
//! host says of its own clock is shown, never compared.

use crate::snapshot::HostSnapshot;
use atoll_sdk::cluster::{HealthState, HostInfo, HostState, InstanceState, InstanceStatus};
use atoll_sdk::protocol::{Heartbeat, Held, Pulse, Verdict, judge};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct SeenHost {
    info: HostInfo,
    state: HostState,
    last_seen: Instant,
    last_seen_ms: u64,
    /// When this run of the host was first heard (server clock, ms).
    joined_ms: u64,
    /// When it was declared silent (server clock, ms), while it is.
    silent_since_ms: Option<u64>,
    instances: Vec<InstanceStatus>,
    /// The full heartbeat this state came from, which pulses vouch for.
    held: Held,
}

impl SeenHost {
    /// The host was heard from now: it is ready (again). Whether it was
    /// not before.
    fn heard(&mut self, now: Instant, now_ms: u64) -> bool {
        let back = self.state != HostState::Ready;
        self.state = HostState::Ready;
        self.silent_since_ms = None;
        self.last_seen = now;
        self.last_seen_ms = now_ms;
        back
    }
}

/// Hosts and their instances as last reported.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    hosts: BTreeMap<String, SeenHost>,
    /// Instance id → its state and health, and since when the server has
    /// seen them so (server clock, ms).
    seen: BTreeMap<String, (InstanceState, Option<HealthState>, u64)>,
    /// No host is declared silent before this (after this server's own
    /// connection to NATS came back, hosts need time to reconnect too).
    not_before: Option<Instant>,
}

/// What a heartbeat or a sweep changed, so the controller wakes only when
/// something it decides on moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    pub hosts_up: Vec<String>,
    /// Hosts that stopped heartbeating (now `disconnected`).
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
        let held = Held {
            run: hb.run,
            full: hb.seq,
        };
        for i in &hb.instances {
            let entry = self
                .seen
                .entry(i.id.clone())
                .or_insert((i.state, i.health, now_ms));
            if (entry.0, entry.1) != (i.state, i.health) {
                *entry = (i.state, i.health, now_ms);
            }
        }
        match self.hosts.get_mut(&name) {
            Some(seen) => {
                let new_run = seen.info.started_at_ms != hb.host.started_at_ms;
                if seen.heard(now, now_ms) || new_run {
                    changes.hosts_up.push(name.clone());
                }
                if new_run {
                    seen.joined_ms = now_ms;
                }
                changes.instances = !same_states(&seen.instances, &hb.instances);
                // What this host no longer reports is forgotten.
                for gone in
                    (seen.instances.iter()).filter(|o| !hb.instances.iter().any(|i| i.id == o.id))
                {
                    self.seen.remove(&gone.id);
                }
                seen.info = hb.host;
                seen.instances = hb.instances;
                seen.held = held;
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
                        joined_ms: now_ms,
                        silent_since_ms: None,
                        instances: hb.instances,
                        held,
                    },
                );
            }
        }
        changes
    }

    /// Takes a pulse of `host` in: when it vouches for the state held, the
    /// host is heard (and back, if it was silent); otherwise the state held
    /// is not the host's (a full heartbeat was missed, or this is a new
    /// run of it) and nothing changes until the whole state comes.
    pub(crate) fn pulse(
        &mut self,
        host: &str,
        pulse: &Pulse,
        now: Instant,
        now_ms: u64,
    ) -> (Changes, Verdict) {
        let mut changes = Changes::default();
        let seen = self.hosts.get_mut(host);
        let verdict = judge(seen.as_ref().map(|s| s.held), pulse);
        if let (Some(seen), Verdict::Current) = (seen, verdict)
            && seen.heard(now, now_ms)
        {
            changes.hosts_up.push(host.to_string());
        }
        (changes, verdict)
    }

    /// Marks hosts silent for longer than `timeout` as disconnected (not
    /// before the reconnect grace, if one runs).
    pub(crate) fn sweep(&mut self, now: Instant, now_ms: u64, timeout: Duration) -> Changes {
        let mut changes = Changes::default();
        if self.not_before.is_some_and(|t| now < t) {
            return changes;
        }
        for (name, seen) in &mut self.hosts {
            if seen.state == HostState::Ready && now.duration_since(seen.last_seen) > timeout {
                seen.state = HostState::Disconnected;
                seen.silent_since_ms = Some(now_ms);
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

    /// After this server's connection to NATS came back: no host is
    /// declared silent before `until`, and each has its full timeout from
    /// when it is heard again.
    pub(crate) fn grace(&mut self, now: Instant, until: Instant) {
        self.touch_all(now);
        self.not_before = Some(until);
    }

    pub(crate) fn knows(&self, host: &str) -> bool {
        self.hosts.contains_key(host)
    }

    /// Whether `host` is heard from (not silent).
    pub(crate) fn is_ready(&self, host: &str) -> bool {
        (self.hosts.get(host)).is_some_and(|s| s.state == HostState::Ready)
    }

    pub(crate) fn hosts(&self) -> Vec<HostSnapshot> {
        self.hosts
            .values()
            .map(|s| HostSnapshot {
                info: s.info.clone(),
                state: s.state,
                joined_ms: s.joined_ms,
                silent_since_ms: s.silent_since_ms,
                availability: Default::default(),
                drain_volumes: false,
            })
            .collect()
    }

    pub(crate) fn last_seen_ms(&self, host: &str) -> u64 {
        self.hosts.get(host).map_or(0, |s| s.last_seen_ms)
    }

    /// Instance statuses by id, from hosts that are up. Instances of a
    /// silent host are not observed: see [`Observed::unconfirmed`].
    pub(crate) fn instances(&self) -> BTreeMap<String, InstanceStatus> {
        self.statuses(|s| s.state == HostState::Ready)
    }

    /// How many instances hosts that are up report ([`Observed::instances`]
    /// without copying them).
    pub(crate) fn instance_count(&self) -> usize {
        (self.hosts.values())
            .filter(|s| s.state == HostState::Ready)
            .map(|s| s.instances.len())
            .sum()
    }

    /// The host that reported each instance, by id, for hosts that are up.
    pub(crate) fn locations(&self) -> BTreeMap<String, String> {
        (self.hosts.iter())
            .filter(|(_, s)| s.state == HostState::Ready)
            .flat_map(|(host, s)| (s.instances.iter()).map(|i| (i.id.clone(), host.clone())))
            .collect()
    }

    /// The last statuses silent hosts reported, by id: what their
    /// instances were doing when last heard of.
    pub(crate) fn unconfirmed(&self) -> BTreeMap<String, InstanceStatus> {
        self.statuses(|s| s.state != HostState::Ready)
    }

    fn statuses(&self, which: impl Fn(&SeenHost) -> bool) -> BTreeMap<String, InstanceStatus> {
        self.hosts
            .values()
            .filter(|s| which(s))
            .flat_map(|s| s.instances.iter().cloned())
            .map(|i| (i.id.clone(), i))
            .collect()
    }

    /// Since when (server clock, ms) each instance of a host that is up has
    /// been in its current state and health.
    pub(crate) fn seen_since(&self) -> BTreeMap<String, u64> {
        let here = self.instances();
        (self.seen.iter())
            .filter(|(id, _)| here.contains_key(*id))
            .map(|(id, (_, _, since))| (id.clone(), *since))
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
            run: started,
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
                .map(|(id, st)| InstanceStatus::new(id, "a", "s", 1, *st))
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
        assert!(!o.sweep(t0 + Duration::from_secs(2), 2_000, timeout).any());
        let c = o.sweep(t0 + Duration::from_secs(4), 4_000, timeout);
        assert_eq!(c.hosts_down, vec!["h1".to_string()]);
        assert!(
            o.instances().is_empty(),
            "a silent host's instances are not observed"
        );
        assert_eq!(o.unconfirmed().len(), 1, "but their last state is kept");
        assert_eq!(o.hosts()[0].state, HostState::Disconnected);
        assert_eq!(
            o.hosts()[0].silent_since_ms,
            Some(4_000),
            "on the server's clock"
        );

        let c = o.record(hb("h1", 1, &[]), t0 + Duration::from_secs(5), 5_000);
        assert_eq!(c.hosts_up, vec!["h1".to_string()]);
        assert_eq!(o.hosts()[0].silent_since_ms, None);
        assert_eq!(o.hosts()[0].joined_ms, 0, "the same run of the host");
    }

    #[test]
    fn after_a_reconnect_no_host_is_silent_before_the_grace_ends() {
        let mut o = Observed::default();
        let t0 = Instant::now();
        o.record(hb("h1", 1, &[]), t0, 0);
        o.record(hb("h2", 1, &[]), t0, 0);
        let timeout = Duration::from_secs(3);
        // The server's link came back at t0 + 1 s; hosts get until t0 + 11 s.
        let back = t0 + Duration::from_secs(1);
        o.grace(back, back + Duration::from_secs(10));
        assert!(
            !o.sweep(t0 + Duration::from_secs(6), 6_000, timeout).any(),
            "within the grace"
        );
        // h1 is heard at 8 s: it has its full timeout from then.
        o.record(hb("h1", 1, &[]), t0 + Duration::from_secs(8), 8_000);
        let c = o.sweep(t0 + Duration::from_secs(11), 11_000, timeout);
        assert_eq!(
            c.hosts_down,
            vec!["h2".to_string()],
            "h2 was never heard again"
        );
        assert!(!o.sweep(t0 + Duration::from_secs(11), 11_000, timeout).any());
        let c = o.sweep(t0 + Duration::from_millis(11_100), 11_100, timeout);
        assert_eq!(c.hosts_down, vec!["h1".to_string()]);
    }

    #[test]
    fn instances_are_timed_on_the_servers_clock() {
        let mut o = Observed::default();
        let t0 = Instant::now();
        // The host's own clock says 999_999: it is shown, never compared.
        let mut beat = hb("h1", 1, &[("i1", InstanceState::Starting)]);
        beat.instances[0].since_ms = 999_999;
        o.record(beat, t0, 100);
        o.record(hb("h1", 1, &[("i1", InstanceState::Starting)]), t0, 200);
        assert_eq!(o.seen_since()["i1"], 100, "unchanged state: first seen");
        o.record(hb("h1", 1, &[("i1", InstanceState::Running)]), t0, 300);
        assert_eq!(o.seen_since()["i1"], 300);
        o.record(hb("h1", 2, &[("i1", InstanceState::Running)]), t0, 400);
        assert_eq!(o.hosts()[0].joined_ms, 400, "a new run of the host joined");
        o.record(hb("h1", 2, &[]), t0, 500);
        assert!(o.seen.is_empty(), "no longer reported: forgotten");
    }

    fn pulse(full: u64, run: u64) -> Pulse {
        Pulse {
            v: 1,
            seq: full + 1,
            full,
            run,
        }
    }

    #[test]
    fn a_pulse_keeps_a_host_heard_only_while_it_vouches_for_the_state_held() {
        let mut o = Observed::default();
        let t0 = Instant::now();
        let timeout = Duration::from_secs(3);
        let (c, v) = o.pulse("h1", &pulse(1, 1), t0, 0);
        assert_eq!(v, Verdict::Resync, "a host never heard in full");
        assert!(!c.any() && !o.knows("h1"));

        let mut beat = hb("h1", 1, &[("i1", InstanceState::Running)]);
        beat.seq = 5;
        o.record(beat, t0, 0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let (c, v) = o.pulse("h1", &pulse(5, 1), at(2), 2_000);
        assert_eq!((c.any(), v), (false, Verdict::Current));
        assert!(!o.sweep(at(4), 4_000, timeout).any(), "heard at 2 s");

        // Full heartbeat 6 (i1 failed) was lost: the next pulse names it.
        let (_, v) = o.pulse("h1", &pulse(6, 1), at(5), 5_000);
        assert_eq!(v, Verdict::Resync);
        let c = o.sweep(at(6), 6_000, timeout);
        assert_eq!(
            c.hosts_down,
            vec!["h1".to_string()],
            "a pulse for a state not held does not keep the host up"
        );
        assert_eq!(o.unconfirmed()["i1"].state, InstanceState::Running);

        let (_, v) = o.pulse("h1", &pulse(5, 2), at(6), 6_000);
        assert_eq!(v, Verdict::Resync, "another run of the host");

        let mut beat = hb("h1", 1, &[("i1", InstanceState::Failed)]);
        beat.seq = 8;
        let c = o.record(beat, at(7), 7_000);
        assert_eq!(c.hosts_up, vec!["h1".to_string()]);
        assert!(c.instances);
        let (c, v) = o.pulse("h1", &pulse(8, 1), at(8), 8_000);
        assert_eq!((c.any(), v), (false, Verdict::Current));
        assert_eq!(o.instances()["i1"].state, InstanceState::Failed);
    }

    #[test]
    fn a_pulse_brings_a_silent_host_back() {
        let mut o = Observed::default();
        let t0 = Instant::now();
        o.record(hb("h1", 1, &[]), t0, 0);
        o.sweep(t0 + Duration::from_secs(4), 4_000, Duration::from_secs(3));
        let (c, v) = o.pulse("h1", &pulse(1, 1), t0 + Duration::from_secs(5), 5_000);
        assert_eq!((c.hosts_up, v), (vec!["h1".to_string()], Verdict::Current));
        assert!(o.is_ready("h1"));
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
