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
/// down, or its samples stopped).
pub const STALE_MS: u64 = 3_000;

/// One service's load: the sum over its instances.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceLoad {
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
    /// Cumulative counters summed over the instances now running (for
    /// the Prometheus histogram).
    pub totals: Totals,
}

/// Cumulative counters of a service's current instances.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub requests: u64,
    pub busy_us: u64,
    pub latency: [u64; LATENCY_BOUNDS_MS.len() + 1],
}

impl ServiceLoad {
    /// The value `x-atoll.autoscale.target` compares against, summed over
    /// the instances.
    pub fn metric(&self, m: ScaleMetric) -> f64 {
        match m {
            ScaleMetric::Inflight => self.concurrency,
            ScaleMetric::Rps => self.rps,
            ScaleMetric::Cpu => self.cpu_percent,
        }
    }

    pub fn p99_ms(&self) -> Option<u64> {
        quantile_ms(&self.latency, 0.99)
    }

    fn add(&mut self, r: &Rates, s: &InstanceSample) {
        self.instances += 1;
        self.rps += r.rps;
        self.concurrency += r.concurrency;
        self.cpu_percent += r.cpu_percent;
        self.memory += r.memory;
        for (sum, n) in self.latency.iter_mut().zip(r.latency) {
            *sum += n;
        }
        self.totals.requests += s.requests;
        self.totals.busy_us += s.busy_us;
        for (sum, n) in self.totals.latency.iter_mut().zip(&s.latency) {
            *sum += n;
        }
    }
}

/// One host's machine load.
#[derive(Debug, Clone, PartialEq)]
pub struct HostLoad {
    pub at_ms: u64,
    /// Percent of the whole machine (all CPUs).
    pub cpu_percent: f64,
    pub memory_used: u64,
    pub memory_total: u64,
}

#[derive(Debug, Clone)]
struct Latest {
    sample: HostSample,
    /// Instance rates against the sample before (none for a first sample).
    rates: Vec<Rates>,
    cpu_percent: f64,
}

#[derive(Debug, Clone, Default)]
pub struct LoadBoard {
    hosts: BTreeMap<String, Latest>,
}

impl LoadBoard {
    /// Takes a host's new sample. Its first sample only sets the baseline;
    /// one older than the last is ignored.
    pub fn record(&mut self, sample: HostSample) {
        let before = self.hosts.get(&sample.host);
        if before.is_some_and(|b| b.sample.at_ms >= sample.at_ms) {
            return;
        }
        let (rates, cpu_percent) = match before {
            None => (Vec::new(), 0.0),
            Some(b) => {
                let secs = (sample.at_ms - b.sample.at_ms) as f64 / 1000.0;
                let prev: BTreeMap<&str, &InstanceSample> = (b.sample.instances.iter())
                    .map(|i| (i.id.as_str(), i))
                    .collect();
                let rates = (sample.instances.iter())
                    .map(|i| atoll_sdk::metrics::rates(prev.get(i.id.as_str()).copied(), i, secs))
                    .collect();
                let busy = sample.cpu_busy_us.saturating_sub(b.sample.cpu_busy_us) as f64;
                let all = secs * 1e6 * f64::from(sample.cpus.max(1));
                (rates, (busy / all * 100.0).min(100.0))
            }
        };
        let latest = Latest {
            sample,
            rates,
            cpu_percent,
        };
        self.hosts.insert(latest.sample.host.clone(), latest);
    }

    /// Every service's load, from the hosts that reported in the last
    /// [`STALE_MS`].
    pub fn services(&self, now_ms: u64) -> BTreeMap<(String, String), ServiceLoad> {
        let mut out: BTreeMap<(String, String), ServiceLoad> = BTreeMap::new();
        for h in self.fresh(now_ms) {
            for (i, s) in h.sample.instances.iter().enumerate() {
                let r = h
                    .rates
                    .get(i)
                    .copied()
                    .unwrap_or_else(|| rates(Some(s), s, 1.0));
                let key = (s.app.clone(), s.service.clone());
                out.entry(key).or_default().add(&r, s);
            }
        }
        out
    }

    /// Every host's machine load, from the hosts that reported lately.
    pub fn hosts(&self, now_ms: u64) -> BTreeMap<String, HostLoad> {
        (self.fresh(now_ms))
            .map(|h| {
                let load = HostLoad {
                    at_ms: h.sample.at_ms,
                    cpu_percent: h.cpu_percent,
                    memory_used: h.sample.memory_used,
                    memory_total: h.sample.memory_total,
                };
                (h.sample.host.clone(), load)
            })
            .collect()
    }

    fn fresh(&self, now_ms: u64) -> impl Iterator<Item = &Latest> {
        (self.hosts.values()).filter(move |h| now_ms.saturating_sub(h.sample.at_ms) <= STALE_MS)
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
        }
    }

    #[test]
    fn services_sum_their_instances_over_hosts() {
        let mut b = LoadBoard::default();
        b.record(host(
            "h1",
            1_000,
            vec![inst("i1", "web", 0, 0), inst("i2", "db", 0, 0)],
        ));
        b.record(host("h2", 1_000, vec![inst("i3", "web", 0, 0)]));
        assert!(
            b.services(1_000)[&("a".into(), "web".into())].rps == 0.0,
            "a baseline only"
        );
        b.record(host(
            "h1",
            2_000,
            vec![inst("i1", "web", 100, 2_000_000), inst("i2", "db", 10, 0)],
        ));
        b.record(host("h2", 2_000, vec![inst("i3", "web", 50, 1_000_000)]));
        let s = b.services(2_000);
        let web = &s[&("a".into(), "web".into())];
        assert_eq!((web.instances, web.rps, web.concurrency), (2, 150.0, 3.0));
        assert_eq!(s[&("a".into(), "db".into())].rps, 10.0);
        assert_eq!(web.metric(ScaleMetric::Inflight), 3.0);
        assert_eq!(b.hosts(2_000)["h1"].cpu_percent, 25.0);
    }

    #[test]
    fn a_host_that_stopped_reporting_drops_out() {
        let mut b = LoadBoard::default();
        b.record(host("h1", 1_000, vec![inst("i1", "web", 0, 0)]));
        b.record(host("h1", 2_000, vec![inst("i1", "web", 10, 0)]));
        assert_eq!(b.services(2_000 + STALE_MS).len(), 1);
        assert!(b.services(2_001 + STALE_MS).is_empty());
        assert!(b.hosts(2_001 + STALE_MS).is_empty());
    }

    #[test]
    fn an_older_sample_is_ignored() {
        let mut b = LoadBoard::default();
        b.record(host("h1", 1_000, vec![inst("i1", "web", 0, 0)]));
        b.record(host("h1", 2_000, vec![inst("i1", "web", 10, 0)]));
        b.record(host("h1", 1_500, vec![inst("i1", "web", 5, 0)]));
        assert_eq!(b.services(2_000)[&("a".into(), "web".into())].rps, 10.0);
    }
}
