//! What a host says about itself: name, address, labels (with the
//! automatic `arch`, `os` and `hostname`), and schedulable capacity.

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
