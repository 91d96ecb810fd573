//! The summary text of an [`Explain`] and the per-host reasons behind it.

use super::*;
use crate::placement::explain::{bytes, cpus};

#[test]
fn reasons_are_grouped_with_counts_in_pipeline_order() {
    let hosts = vec![
        host("h1").label("zone", "west").capacity(74 * MIB, 4000),
        host("h2").label("zone", "east").capacity(10 * MIB, 4000),
        host("h3").label("zone", "west"),
    ];
    let svc = service("api")
        .constraint("node.labels.zone == east")
        .reserve(64 * MIB, 0);
    let err = choose(&hosts, &svc).unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/3 hosts available: 2 failed constraint node.labels.zone == east, \
         1 insufficient memory (need 64.0 MiB, 10.0 MiB free)"
    );
}

#[test]
fn down_hosts_are_listed_too() {
    let hosts = vec![
        host("h1").down(),
        host("h2").down(),
        host("h3").arch("aarch64"),
    ];
    let svc = service("api").constraint("node.platform.arch == x86_64");
    let err = choose(&hosts, &svc).unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/3 hosts available: 2 down, 1 failed constraint node.platform.arch == x86_64"
    );
    assert_eq!(err.hosts, 3);
    assert_eq!(err.available, 0);
    assert_eq!(err.rejected["h1"], Rejection::Down);
    assert_eq!(
        err.rejected["h3"].to_string(),
        "failed constraint node.platform.arch == x86_64"
    );
}

#[test]
fn an_empty_cluster_says_so() {
    let err = choose(&[], &service("api")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/0 hosts available: no host has joined the cluster"
    );
}

#[test]
fn per_host_reasons_read_alone() {
    let memory = Rejection::Memory {
        need: 64 * MIB,
        free: 512,
    };
    assert_eq!(
        memory.to_string(),
        "insufficient memory (need 64.0 MiB, 512 B free)"
    );
    let cpu = Rejection::Cpu {
        need: 1500,
        free: 0,
    };
    assert_eq!(
        cpu.to_string(),
        "insufficient cpu (need 1.5 CPU, 0 CPU free)"
    );
    assert_eq!(
        Rejection::MaxReplicas(2).to_string(),
        "at max_replicas_per_node (2)"
    );
}

#[test]
fn sizes_read_like_compose() {
    assert_eq!(bytes(1023), "1023 B");
    assert_eq!(bytes(1536), "1.5 KiB");
    assert_eq!(bytes(64 * MIB), "64.0 MiB");
    assert_eq!(bytes(3 * 1024 * MIB), "3.0 GiB");
    assert_eq!(cpus(500), "0.5");
    assert_eq!(cpus(1250), "1.25");
    assert_eq!(cpus(2000), "2");
    assert_eq!(cpus(5), "0.005");
}
