//! The resources filter: reservations against capacity.

use super::*;
use atoll_sdk::spec::ResourceSpec;

fn reserved(memory: u64, cpus_milli: u32) -> ResourceSpec {
    ResourceSpec {
        memory: Some(memory),
        cpus_milli: Some(cpus_milli),
        pids: None,
    }
}

#[test]
fn memory_exhaustion_is_explained() {
    let hosts = vec![host("h1").capacity(100 * MIB, 4000)];
    let mut cands = empty(&hosts);
    cands[0].add("other", "cache", &reserved(90 * MIB, 0));
    let svc = service("api").reserve(64 * MIB, 0);
    let err = place(&cands, &demand(&svc)).unwrap_err();
    assert_eq!(
        err.rejected["h1"],
        Rejection::Memory {
            need: 64 * MIB,
            free: 10 * MIB
        }
    );
    assert_eq!(
        err.to_string(),
        "0/1 hosts available: 1 insufficient memory (need 64.0 MiB, 10.0 MiB free)"
    );
}

#[test]
fn cpu_exhaustion_is_explained() {
    let hosts = vec![
        host("h1").capacity(1024 * MIB, 1000),
        host("h2").capacity(1024 * MIB, 500),
    ];
    let mut cands = empty(&hosts);
    cands[0].add("other", "cache", &reserved(0, 750));
    let svc = service("api").reserve(0, 600);
    let err = place(&cands, &demand(&svc)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/2 hosts available: 2 insufficient cpu (need 0.6 CPU, at most 0.5 CPU free)"
    );
}

#[test]
fn instances_fill_hosts_until_nothing_fits() {
    let hosts = vec![
        host("h1").capacity(256 * MIB, 4000),
        host("h2").capacity(256 * MIB, 4000),
    ];
    let svc = service("api").reserve(100 * MIB, 0);
    let mut cands = empty(&hosts);
    let chosen = place_n(&mut cands, &svc, 4);
    assert_eq!(tally(&chosen), BTreeMap::from([("h1", 2), ("h2", 2)]));
    let err = place(&cands, &demand(&svc)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/2 hosts available: 2 insufficient memory (need 100.0 MiB, at most 56.0 MiB free)"
    );
}

#[test]
fn reservations_of_every_app_count() {
    let h1 = host("h1").capacity(128 * MIB, 1000);
    let mut cands = vec![Candidate::new(&h1)];
    let svc = service("api").reserve(128 * MIB, 1000);
    assert!(place(&cands, &demand(&svc)).is_ok(), "exactly full fits");
    cands[0].add("other", "x", &reserved(1, 0));
    assert!(place(&cands, &demand(&svc)).is_err());
}

#[test]
fn an_instance_reserving_nothing_fits_anywhere() {
    let hosts = vec![host("h1").capacity(64 * MIB, 1000)];
    let mut cands = empty(&hosts);
    // Overcommitted, e.g. after the host came back with less memory.
    cands[0].add("other", "x", &reserved(128 * MIB, 2000));
    assert!(place(&cands, &demand(&service("api"))).is_ok());
}

#[test]
fn memory_is_checked_before_cpu() {
    let hosts = vec![host("h1").capacity(MIB, 100)];
    let svc = service("api").reserve(2 * MIB, 200);
    let err = choose(&hosts, &svc).unwrap_err();
    assert!(matches!(err.rejected["h1"], Rejection::Memory { .. }));
    assert!(err.rejected["h1"].is_resources());
}
