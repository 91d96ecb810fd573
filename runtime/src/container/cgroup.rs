//! A container's cgroup, as the OCI runtime makes it: where it is, and
//! what it says — CPU and memory in use (v1 or v2), and whether the OOM
//! killer struck. Readers return `None`/`false` for what this kernel does
//! not have; the parsers are plain functions.

/// Where the runtime puts each container's cgroup (relative to the
/// hierarchy's root).
pub(crate) fn cgroups_path(id: &str) -> String {
    format!("/atoll/{id}")
}

/// A container's CPU time (µs, cumulative) and memory in use (bytes).
pub(crate) fn usage(id: &str) -> (Option<u64>, Option<u64>) {
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

/// The container's cgroup directories that still exist, in every
/// hierarchy (v1 controllers, the v2 root, a hybrid's `unified`).
fn leftover_dirs(id: &str) -> Vec<std::path::PathBuf> {
    let rel = cgroups_path(id);
    let root = std::path::Path::new("/sys/fs/cgroup");
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(rel.trim_start_matches('/')))
        .collect();
    dirs.push(root.join(rel.trim_start_matches('/')));
    dirs.retain(|d| d.is_dir());
    dirs
}

/// Removes what the runtime left of a container's cgroups: a container
/// with thousands of processes (a fork bomb at its pids limit) takes longer
/// to die than the runtime's `delete` waits, and its cgroups would stay
/// for good. Kills what is still inside and removes the directories,
/// waiting at most `limit`. Blocking; returns the directories left.
pub(crate) fn remove_leftovers(id: &str, limit: std::time::Duration) -> Vec<std::path::PathBuf> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let dirs = leftover_dirs(id);
        for dir in &dirs {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: kill(2) with a pid read from the container's own
                // cgroup; a pid that exited meanwhile only fails.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = std::fs::remove_dir(dir);
        }
        let left = leftover_dirs(id);
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `usage_usec` of a cgroup v2 `cpu.stat`.
fn cpu_stat_usage_us(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether the kernel's OOM killer ended a process of the container's
/// memory cgroup (v1 `memory.oom_control`, v2 `memory.events`).
pub(crate) fn oom_killed(id: &str) -> bool {
    let rel = cgroups_path(id);
    let files = [
        format!("/sys/fs/cgroup/memory{rel}/memory.oom_control"),
        format!("/sys/fs/cgroup{rel}/memory.events"),
        format!("/sys/fs/cgroup/unified{rel}/memory.events"),
    ];
    files.iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|text| {
            text.lines().any(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_v2_cpu_stat() {
        let text = "usage_usec 12345\nuser_usec 10000\nsystem_usec 2345\n";
        assert_eq!(cpu_stat_usage_us(text), Some(12345));
        assert_eq!(cpu_stat_usage_us("nothing 1\n"), None);
    }
}
