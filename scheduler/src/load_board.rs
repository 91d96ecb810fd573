//! The load board: the hosts' load samples turned into rates, per instance
//! and summed per service, for the autoscaler, `atoll top` and `/metrics`.
//!
//! Plain data in, plain data out: the server feeds it the samples it
//! receives and reads the sums.

use atoll_sdk::metrics::{
    HostSample, InstanceSample, LATENCY_BOUNDS_MS, Rates, quantile_ms, rates,
};
use atoll_sdk::spec::ScaleMetric;
use std::collections::BTreeMap;

/// A host's samples older than this are left out of the sums (the host is
/// down, or its samples stopped) — unless the last one was quiet (see
/// [`LoadBoard::fresh`]).
pub(crate) const STALE_MS: u64 = 3_000;

/// One service's load: the sum over its instances.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ServiceLoad {
    /// Instances that reported.
    pub instances: u32,
    pub rps: f64,
    /// Average requests in flight, summed.
    pub concurrency: f64,
    /// Percent of one CPU, summed.
    pub cpu_percent: f64,
    pub memory: u64,
    /// Finished requests per latency bucket over the last interval.
    pub latency: [u64; LATENCY_BOUNDS_MS.len() + 1],
    /// Counters of every request the service answered since this server
    /// started (for the Prometheus histogram): they only grow, whatever
    /// instances come and go.
    pub totals: Totals,
}

/// A service's requests since the server started.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Totals {
    pub requests: u64,
    pub busy_us: u64,
    pub latency: [u64; LATENCY_BOUNDS_MS.len() + 1],
}

impl ServiceLoad {
    /// The value `x-atoll.autoscale.target` compares against, summed over
    /// the instances.
    pub(crate) fn metric(&self, m: ScaleMetric) -> f64 {
        match m {
            ScaleMetric::Inflight => self.concurrency,
            ScaleMetric::Rps => self.rps,
            ScaleMetric::Cpu => self.cpu_percent,
        }
    }

    pub(crate) fn p99_ms(&self) -> Option<u64> {
        quantile_ms(&self.latency, 0.99)
    }

    fn add(&mut self, r: &Rates) {
        self.instances += 1;
        self.rps += r.rps;
        self.concurrency += r.concurrency;
        self.cpu_percent += r.cpu_percent;
        self.memory += r.memory;
        for (sum, n) in self.latency.iter_mut().zip(r.latency) {
            *sum += n;
        }
    }
}

impl Totals {
    fn add(&mut self, r: &Rates) {
        for (sum, n) in self.latency.iter_mut().zip(r.latency) {
            *sum += n;
        }
        self.requests += r.latency.iter().sum::<u64>();
        self.busy_us += (r.busy_s * 1e6) as u64;
    }
}

/// One host's machine load.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostLoad {
    pub at_ms: u64,
    /// Percent of the whole machine (all CPUs).
    pub cpu_percent: f64,
    pub memory_used: u64,
    pub memory_total: u64,
}

#[derive(Debug, Clone)]
struct Latest {
    /// When this server received it (Unix ms, the server's clock: hosts'
    /// clocks may be off).
    received_ms: u64,
    sample: HostSample,
    /// Instance rates against the sample before (none for a first sample).
    rates: Vec<Rates>,
    cpu_percent: f64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct LoadBoard {
    hosts: BTreeMap<String, Latest>,
    totals: BTreeMap<(String, String), Totals>,
}

impl LoadBoard {
    /// Takes a host's new sample, received at `received_ms`. Its first
    /// sample, and an instance's first appearance, only set a baseline.
    /// The interval is measured on the host's clock when it moved forward
    /// (samples are stamped when taken), else on the server's.
    pub(crate) fn record(&mut self, sample: HostSample, received_ms: u64) {
        let before = self.hosts.get(&sample.host);
        let (rates, cpu_percent) = match before {
            None => (Vec::new(), 0.0),
            Some(b) => {
                let ms = match sample.at_ms.checked_sub(b.sample.at_ms) {
                    Some(ms) if ms > 0 => ms,
                    _ => received_ms.saturating_sub(b.received_ms).max(1),
                };
                let secs = ms as f64 / 1000.0;
                let prev: BTreeMap<&str, &InstanceSample> = (b.sample.instances.iter())
                    .map(|i| (i.id.as_str(), i))
                    .collect();
                let rates = (sample.instances.iter())
                    .map(|i| match prev.get(i.id.as_str()) {
                        Some(p) => rates(Some(p), i, secs),
                        None => Rates {
                            concurrency: i.inflight as f64,
                            memory: i.memory,
                            ..Rates::default()
                        },
                    })
                    .collect();
                let busy = sample.cpu_busy_us.saturating_sub(b.sample.cpu_busy_us) as f64;
                let all = secs * 1e6 * f64::from(sample.cpus.max(1));
                (rates, (busy / all * 100.0).min(100.0))
            }
        };
        for (s, r) in sample.instances.iter().zip(&rates) {
            let key = (s.app.clone(), s.service.clone());
            self.totals.entry(key).or_default().add(r);
        }
        let latest = Latest {
            received_ms,
            sample,
            rates,
            cpu_percent,
        };
        self.hosts.insert(latest.sample.host.clone(), latest);
    }

    /// Every service's load, from the hosts that reported in the last
    /// [`STALE_MS`].
    pub(crate) fn services(&self, now_ms: u64) -> BTreeMap<(String, String), ServiceLoad> {
        let mut out: BTreeMap<(String, String), ServiceLoad> = BTreeMap::new();
        for h in self.fresh(now_ms) {
            for (i, s) in h.sample.instances.iter().enumerate() {
                let r = h.rates.get(i).copied().unwrap_or_default();
                let key = (s.app.clone(), s.service.clone());
                out.entry(key).or_default().add(&r);
            }
        }
        for (key, load) in out.iter_mut() {
            load.totals = self.totals.get(key).cloned().unwrap_or_default();
        }
        out
    }

    /// Every host's machine load, from the hosts that reported lately.
    pub(crate) fn hosts(&self, now_ms: u64) -> BTreeMap<String, HostLoad> {
        (self.fresh(now_ms))
            .map(|h| {
                let load = HostLoad {
                    at_ms: h.received_ms,
                    cpu_percent: h.cpu_percent,
                    memory_used: h.sample.memory_used,
                    memory_total: h.sample.memory_total,
                };
                (h.sample.host.clone(), load)
            })
            .collect()
    }

    /// The hosts whose last sample still holds: for [`STALE_MS`], or, when
    /// it was quiet (nothing served or in flight, next to no CPU), for as
    /// long as the host said it may wait before the next
    /// (`next_ms`): a quiet host sends one a minute, and its figures are
    /// zeros anyway, so a quiet host gone counts as quiet a little longer
    /// while a busy one gone drops out at once.
    fn fresh(&self, now_ms: u64) -> impl Iterator<Item = &Latest> {
        (self.hosts.values()).filter(move |h| {
            let quiet = (h.rates.iter())
                .all(|r| r.rps == 0.0 && r.concurrency == 0.0 && r.cpu_percent < 1.0);
            let holds = match quiet {
                true => h.sample.next_ms.max(1_000) + STALE_MS,
                false => STALE_MS,
            };
            now_ms.saturating_sub(h.received_ms) <= holds
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, service: &str, requests: u64, busy_us: u64) -> InstanceSample {
        InstanceSample {
            id: id.into(),
            app: "a".into(),
            service: service.into(),
            requests,
            busy_us,
            latency: vec![requests],
            ..Default::default()
        }
    }

    fn host(name: &str, at_ms: u64, instances: Vec<InstanceSample>) -> HostSample {
        HostSample {
            v: 1,
            host: name.into(),
            at_ms,
            cpu_busy_us: at_ms * 500,
            cpus: 2,
            memory_used: 1,
            memory_total: 2,
            instances,
            next_ms: 0,
        }
    }

    fn web(b: &LoadBoard, now_ms: u64) -> ServiceLoad {
        b.services(now_ms)[&("a".into(), "web".into())].clone()
    }

    #[test]
    fn services_sum_their_instances_over_hosts() {
        let mut b = LoadBoard::default();
        let first = vec![inst("i1", "web", 0, 0), inst("i2", "db", 0, 0)];
        b.record(host("h1", 1_000, first), 1_000);
        b.record(host("h2", 1_000, vec![inst("i3", "web", 0, 0)]), 1_000);
        assert_eq!(web(&b, 1_000).rps, 0.0, "a baseline only");
        let second = vec![inst("i1", "web", 100, 2_000_000), inst("i2", "db", 10, 0)];
        b.record(host("h1", 2_000, second), 2_000);
        b.record(
            host("h2", 2_000, vec![inst("i3", "web", 50, 1_000_000)]),
            2_000,
        );
        let s = b.services(2_000);
        let web = &s[&("a".into(), "web".into())];
        assert_eq!((web.instances, web.rps, web.concurrency), (2, 150.0, 3.0));
        assert_eq!(s[&("a".into(), "db".into())].rps, 10.0);
        assert_eq!(web.metric(ScaleMetric::Inflight), 3.0);
        assert_eq!(b.hosts(2_000)["h1"].cpu_percent, 25.0);
    }

    #[test]
    fn freshness_is_judged_on_the_servers_clock() {
        let mut b = LoadBoard::default();
        // The host's clock is an hour behind.
        b.record(host("h1", 1_000, vec![inst("i1", "web", 0, 0)]), 3_600_000);
        b.record(host("h1", 2_000, vec![inst("i1", "web", 10, 0)]), 3_601_000);
        assert_eq!(web(&b, 3_601_000 + STALE_MS).rps, 10.0);
        assert!(b.services(3_601_001 + STALE_MS).is_empty());
        assert!(b.hosts(3_601_001 + STALE_MS).is_empty());
    }

    #[test]
    fn a_quiet_host_holds_until_its_next_sample_is_due_and_a_busy_one_drops_at_once() {
        let mut b = LoadBoard::default();
        let quiet = |at| {
            let mut h = host("h1", at, vec![inst("i1", "web", 5, 0)]);
            h.next_ms = 60_000;
            h
        };
        b.record(quiet(1_000), 1_000);
        b.record(quiet(2_000), 2_000);
        assert_eq!(web(&b, 2_000 + 60_000).instances, 1, "quiet: a minute");
        assert!(b.services(2_001 + 60_000 + STALE_MS).is_empty());
        let mut busy = host("h1", 3_000, vec![inst("i1", "web", 50, 0)]);
        busy.next_ms = 60_000;
        b.record(busy, 3_000);
        assert_eq!(web(&b, 3_000 + STALE_MS).rps, 45.0);
        assert!(b.services(3_001 + STALE_MS).is_empty(), "busy: as before");
    }

    #[test]
    fn a_host_clock_that_steps_back_falls_back_to_the_servers() {
        let mut b = LoadBoard::default();
        b.record(host("h1", 5_000, vec![inst("i1", "web", 0, 0)]), 1_000);
        b.record(host("h1", 1_000, vec![inst("i1", "web", 20, 0)]), 3_000);
        assert_eq!(web(&b, 3_000).rps, 10.0, "20 requests over 2 s");
    }

    #[test]
    fn a_new_instance_starts_from_a_baseline() {
        let mut b = LoadBoard::default();
        b.record(host("h1", 1_000, vec![]), 1_000);
        // Its first sample shows all it did since it started: not a rate.
        let mut fresh = inst("i1", "web", 500, 9_000_000);
        fresh.cpu_us = 5_000_000;
        fresh.inflight = 2;
        b.record(host("h1", 2_000, vec![fresh]), 2_000);
        let w = web(&b, 2_000);
        assert_eq!((w.rps, w.cpu_percent, w.concurrency), (0.0, 0.0, 2.0));
    }

    #[test]
    fn totals_only_grow_as_instances_come_and_go() {
        let mut b = LoadBoard::default();
        b.record(host("h1", 1_000, vec![inst("i1", "web", 0, 0)]), 1_000);
        b.record(host("h1", 2_000, vec![inst("i1", "web", 30, 3_000)]), 2_000);
        assert_eq!(web(&b, 2_000).totals.requests, 30);
        // i1 stopped, i2 started.
        b.record(host("h1", 3_000, vec![inst("i2", "web", 5, 0)]), 3_000);
        b.record(host("h1", 4_000, vec![inst("i2", "web", 15, 0)]), 4_000);
        let t = web(&b, 4_000).totals;
        assert_eq!((t.requests, t.busy_us), (40, 3_000));
    }
}
