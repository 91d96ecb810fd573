//! CPU and memory in use: a container's cgroup (v1 or v2) and the whole
//! machine (`/proc`). Readers return `None` for what this kernel does not
//! have; the parsers are plain functions.

use crate::container::bundle::cgroups_path;

/// A container's CPU time (µs, cumulative) and memory in use (bytes).
pub fn container(id: &str) -> (Option<u64>, Option<u64>) {
    let rel = cgroups_path(id);
    let read = |p: String| std::fs::read_to_string(p).ok();
    let cpu = read(format!("/sys/fs/cgroup/cpuacct{rel}/cpuacct.usage"))
        .and_then(|t| t.trim().parse::<u64>().ok())
        .map(|ns| ns / 1000)
        .or_else(|| {
            let v2 = read(format!("/sys/fs/cgroup{rel}/cpu.stat"))
                .or_else(|| read(format!("/sys/fs/cgroup/unified{rel}/cpu.stat")));
            v2.as_deref().and_then(cpu_stat_usage_us)
        });
    let memory = read(format!("/sys/fs/cgroup/memory{rel}/memory.usage_in_bytes"))
        .or_else(|| read(format!("/sys/fs/cgroup{rel}/memory.current")))
        .and_then(|t| t.trim().parse().ok());
    (cpu, memory)
}

/// `usage_usec` of a cgroup v2 `cpu.stat`.
fn cpu_stat_usage_us(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
}

/// The machine: busy CPU time (µs, cumulative, all CPUs), CPUs, memory
/// used and total (bytes).
pub fn machine() -> (u64, u32, u64, u64) {
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

    #[test]
    fn cgroup_v2_cpu_stat() {
        let text = "usage_usec 12345\nuser_usec 10000\nsystem_usec 2345\n";
        assert_eq!(cpu_stat_usage_us(text), Some(12345));
        assert_eq!(cpu_stat_usage_us("nothing 1\n"), None);
    }
}
