//! What a host says about itself: name, address, labels (with the
//! automatic `arch`, `os` and `hostname`), and schedulable capacity; and
//! what the machine uses now (`/proc`), for the load metrics.

use atoll_sdk::cluster::{Capacity, HostInfo};
use std::collections::BTreeMap;

pub use atoll_sdk::cluster::machine_hostname;

/// Total memory and CPUs of the machine.
pub fn machine_capacity() -> Capacity {
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(1 << 30, |kb| kb * 1024);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Capacity {
        memory,
        cpus_milli: (cpus * 1000) as u32,
    }
}

pub fn build(
    name: &str,
    address: &str,
    user_labels: &BTreeMap<String, String>,
    capacity: Capacity,
    started_at_ms: u64,
) -> HostInfo {
    let arch = std::env::consts::ARCH.to_string();
    let os = std::env::consts::OS.to_string();
    let mut labels = BTreeMap::from([
        ("arch".to_string(), arch.clone()),
        ("os".to_string(), os.clone()),
        ("hostname".to_string(), name.to_string()),
    ]);
    // User labels win: a host may say it is in another zone, or rename itself.
    labels.extend(user_labels.clone());
    HostInfo {
        name: name.to_string(),
        address: address.to_string(),
        mesh_port: atoll_sdk::cluster::DEFAULT_MESH_PORT,
        labels,
        arch,
        os,
        capacity,
        started_at_ms,
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// The machine: busy CPU time (µs, cumulative, all CPUs), CPUs, memory
/// used and total (bytes).
pub(crate) fn machine_usage() -> (u64, u32, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let (busy, cpus) = proc_stat(&stat);
    let (used, total) = proc_meminfo(&meminfo);
    (busy, cpus, used, total)
}

/// Busy time (µs) over all CPUs and the number of CPUs, from `/proc/stat`
/// (ticks of 10 ms: every field but idle and iowait).
fn proc_stat(text: &str) -> (u64, u32) {
    const US_PER_TICK: u64 = 10_000;
    let mut busy = 0;
    let mut cpus = 0;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let ticks: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
                let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
                // guest time is counted in user already.
                let all: u64 = ticks.iter().take(8).sum();
                busy = all.saturating_sub(idle) * US_PER_TICK;
            }
            Some(name) if name.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (busy, cpus)
}

/// Memory used (total − available) and total, in bytes, from
/// `/proc/meminfo`.
fn proc_meminfo(text: &str) -> (u64, u64) {
    let kib = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let total = kib("MemTotal:");
    (total.saturating_sub(kib("MemAvailable:")), total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_counts_busy_ticks_and_cpus() {
        let text = "cpu  100 5 50 1000 20 1 2 3 0 0\ncpu0 50 2 25 500 10 0 1 1 0 0\ncpu1 50 3 25 500 10 1 1 2 0 0\nintr 1 2\n";
        assert_eq!(proc_stat(text), ((100 + 5 + 50 + 1 + 2 + 3) * 10_000, 2));
    }

    #[test]
    fn meminfo_used_is_total_minus_available() {
        let text = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    400 kB\n";
        assert_eq!(proc_meminfo(text), (600 * 1024, 1000 * 1024));
    }
}
