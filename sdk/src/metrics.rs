//! Load metrics: what each host publishes about its instances about once a
//! second (on [`crate::protocol::Names::metrics`]), and the plain
//! arithmetic that turns two samples into rates.
//!
//! Counters are cumulative since the instance started, so a lost or late
//! sample only widens the interval the next one is compared over.

use serde::{Deserialize, Serialize};

/// Upper bounds of the latency histogram's buckets, in milliseconds; a last
/// bucket counts everything slower.
pub const LATENCY_BOUNDS_MS: [u64; 13] =
    [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/// [`LATENCY_BOUNDS_MS`] in seconds, as Prometheus histograms name them.
pub fn latency_bounds_s() -> Vec<f64> {
    LATENCY_BOUNDS_MS
        .iter()
        .map(|ms| *ms as f64 / 1000.0)
        .collect()
}

/// A host's sample of itself and of every instance it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSample {
    pub v: u32,
    pub host: String,
    /// Unix milliseconds when it was taken.
    pub at_ms: u64,
    /// CPU time the whole machine spent busy, cumulative, in microseconds
    /// (from `/proc/stat`).
    pub cpu_busy_us: u64,
    /// CPUs of the machine.
    pub cpus: u32,
    pub memory_used: u64,
    pub memory_total: u64,
    pub instances: Vec<InstanceSample>,
    /// The longest the host waits before its next sample (0 from hosts
    /// older than the field: about a second). A quiet host sends one only
    /// this often ([`sample_due`]).
    #[serde(default, skip_serializing_if = "crate::cluster::is_zero_u64")]
    pub next_ms: u64,
}

/// How often a host samples itself.
pub const SAMPLE_MS: u64 = 1_000;
/// How often a quiet host sends a sample (one whose instances served
/// nothing and used next to no CPU since the last it sent): the figures
/// would be the same, and at thousands of hosts the bytes add up.
pub const QUIET_SAMPLE_MS: u64 = 60_000;
/// CPU time per second of an instance below which it counts as quiet
/// (1% of a CPU: an idle container's housekeeping).
const QUIET_CPU_US_PER_S: u64 = 10_000;

/// Whether a host sends `now`, the last sample it sent being `last`: yes
/// unless every instance of both is the same one, quiet since (no request
/// finished or in flight, next to no CPU), and [`QUIET_SAMPLE_MS`] has
/// not passed. Judged on the host's own clock (both samples are its).
pub fn sample_due(last: Option<&HostSample>, now: &HostSample) -> bool {
    let Some(last) = last else { return true };
    let elapsed = now.at_ms.saturating_sub(last.at_ms);
    if elapsed >= QUIET_SAMPLE_MS || last.instances.len() != now.instances.len() {
        return true;
    }
    let cpu_allowed = QUIET_CPU_US_PER_S * elapsed.max(1) / 1000;
    !(last.instances.iter().zip(&now.instances)).all(|(a, b)| {
        a.id == b.id
            && a.requests == b.requests
            && b.inflight == 0
            && b.cpu_us.saturating_sub(a.cpu_us) <= cpu_allowed
    })
}

/// One instance's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceSample {
    pub id: String,
    pub app: String,
    pub service: String,
    /// Requests (or TCP connections) finished.
    pub requests: u64,
    /// Requests in flight right now.
    pub inflight: u64,
    /// Time spent serving requests, summed over requests, in microseconds:
    /// its growth over an interval is the average concurrency.
    pub busy_us: u64,
    /// Finished requests per latency bucket ([`LATENCY_BOUNDS_MS`], then
    /// the slower ones).
    pub latency: Vec<u64>,
    /// CPU time, cumulative, in microseconds: a container's cgroup, a
    /// component's time in Wasm.
    pub cpu_us: u64,
    /// Memory in use: a container's cgroup, a component's largest store.
    pub memory: u64,
}

/// An instance's load over the interval between two samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub rps: f64,
    /// Average requests in flight.
    pub concurrency: f64,
    /// Percent of one CPU.
    pub cpu_percent: f64,
    pub memory: u64,
    /// Finished requests per latency bucket in the interval.
    pub latency: [u64; LATENCY_BOUNDS_MS.len() + 1],
    /// Time spent serving in the interval, in seconds.
    pub busy_s: f64,
}

/// The load between `before` and `now` (same instance), `secs` apart. A
/// counter that went backwards (the instance restarted in place) counts
/// from zero.
pub fn rates(before: Option<&InstanceSample>, now: &InstanceSample, secs: f64) -> Rates {
    let secs = secs.max(0.001);
    let delta = |b: Option<u64>, n: u64| match b {
        Some(b) if b <= n => n - b,
        _ => n,
    };
    let mut latency = [0u64; LATENCY_BOUNDS_MS.len() + 1];
    for (i, slot) in latency.iter_mut().enumerate() {
        let n = now.latency.get(i).copied().unwrap_or(0);
        let b = before.map(|b| b.latency.get(i).copied().unwrap_or(0));
        *slot = delta(b, n);
    }
    let busy = delta(before.map(|b| b.busy_us), now.busy_us) as f64 / 1e6;
    Rates {
        rps: delta(before.map(|b| b.requests), now.requests) as f64 / secs,
        // Requests still in flight have not added their time yet; the
        // gauge keeps a long request from looking idle.
        concurrency: (busy / secs).max(now.inflight as f64),
        cpu_percent: delta(before.map(|b| b.cpu_us), now.cpu_us) as f64 / 1e6 / secs * 100.0,
        memory: now.memory,
        latency,
        busy_s: busy,
    }
}

/// The latency below which `q` (0–1) of the requests counted in `buckets`
/// finished, in milliseconds: the upper bound of the bucket that reaches
/// it (the slowest bucket reports twice the last bound). `None` without
/// requests.
pub fn quantile_ms(buckets: &[u64], q: f64) -> Option<u64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let want = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= want {
            let last = LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1];
            return Some(LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(last * 2));
        }
    }
    None
}

/// The bucket a request that took `ms` falls in.
pub fn bucket_of(ms: u64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|&b| ms <= b)
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(requests: u64, busy_us: u64, cpu_us: u64) -> InstanceSample {
        InstanceSample {
            requests,
            busy_us,
            cpu_us,
            latency: vec![requests],
            ..Default::default()
        }
    }

    fn host(at_ms: u64, instances: Vec<InstanceSample>) -> HostSample {
        HostSample {
            v: 1,
            host: "h1".into(),
            at_ms,
            cpu_busy_us: at_ms * 7,
            cpus: 2,
            memory_used: at_ms,
            memory_total: 1 << 30,
            instances,
            next_ms: QUIET_SAMPLE_MS,
        }
    }

    #[test]
    fn a_quiet_host_sends_a_sample_a_minute_and_a_busy_one_every_time() {
        let quiet = |at| host(at, vec![sample(5, 0, 1_000)]);
        let first = quiet(0);
        assert!(sample_due(None, &first), "the first");
        assert!(!sample_due(Some(&first), &quiet(1_000)), "nothing moved");
        assert!(
            !sample_due(Some(&first), &host(1_000, vec![sample(5, 0, 9_000)])),
            "housekeeping CPU"
        );
        assert!(
            sample_due(Some(&first), &quiet(QUIET_SAMPLE_MS)),
            "a minute"
        );
        let served = host(1_000, vec![sample(6, 10, 2_000)]);
        assert!(sample_due(Some(&first), &served), "a request");
        let mut busy = quiet(1_000);
        busy.instances[0].inflight = 1;
        assert!(sample_due(Some(&first), &busy), "one in flight");
        let spinning = host(1_000, vec![sample(5, 0, 300_000)]);
        assert!(sample_due(Some(&first), &spinning), "CPU without requests");
        assert!(sample_due(Some(&first), &host(1_000, vec![])), "one gone");
        let mut other = quiet(1_000);
        other.instances[0].id = "i2".into();
        assert!(sample_due(Some(&first), &other), "another instance");
    }

    #[test]
    fn rates_are_deltas_over_the_interval() {
        let r = rates(
            Some(&sample(100, 1_000_000, 0)),
            &sample(300, 5_000_000, 500_000),
            2.0,
        );
        assert_eq!(r.rps, 100.0);
        assert_eq!(r.concurrency, 2.0);
        assert_eq!(r.cpu_percent, 25.0);
        assert_eq!(r.latency[0], 200);
    }

    #[test]
    fn a_counter_that_went_back_counts_from_zero() {
        let r = rates(Some(&sample(500, 0, 0)), &sample(20, 0, 0), 1.0);
        assert_eq!(r.rps, 20.0);
    }

    #[test]
    fn requests_in_flight_keep_a_slow_service_busy() {
        let mut now = sample(0, 0, 0);
        now.inflight = 3;
        assert_eq!(rates(Some(&sample(0, 0, 0)), &now, 1.0).concurrency, 3.0);
    }

    #[test]
    fn quantiles_answer_bucket_bounds() {
        let mut b = vec![0u64; LATENCY_BOUNDS_MS.len() + 1];
        b[bucket_of(1)] = 98;
        b[bucket_of(40)] = 1;
        b[bucket_of(60_000)] = 1;
        assert_eq!(quantile_ms(&b, 0.5), Some(1));
        assert_eq!(quantile_ms(&b, 0.99), Some(50));
        assert_eq!(quantile_ms(&b, 1.0), Some(20_000));
        assert_eq!(quantile_ms(&[0, 0], 0.99), None);
        assert_eq!((bucket_of(0), bucket_of(2), bucket_of(3)), (0, 1, 2));
    }
}
