//! Resource accounting across services, apps and the plan itself.

use super::*;

#[test]
fn memory_exhaustion_leaves_the_rest_unplaced_with_reasons() {
    let hosts = vec![
        host("h1").capacity(256 * MIB, 4000),
        host("h2").capacity(256 * MIB, 4000),
    ];
    let svc = service("api").replicas(5).reserve(100 * MIB, 0);
    let mut c = Cluster::new(hosts, vec![app("shop", vec![svc])]);
    let plan = c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 2), ("h2", 2)]));
    let why = "0/2 hosts available: 2 insufficient memory (need 100.0 MiB, at most 56.0 MiB free)";
    assert_eq!(plan.unplaced["shop"]["api"], why);
    let last = plan.events.last().unwrap();
    assert_eq!(last.kind, event_kind::UNPLACEABLE);
    assert_eq!(last.message, format!("cannot place api: {why}"));
}

#[test]
fn cpu_exhaustion_is_explained() {
    let hosts = vec![host("h1").capacity(1024 * MIB, 1000)];
    let svc = service("api").replicas(3).reserve(0, 400);
    let mut c = Cluster::new(hosts, vec![app("shop", vec![svc])]);
    let plan = c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 2)]));
    assert_eq!(
        plan.unplaced["shop"]["api"],
        "0/1 hosts available: 1 insufficient cpu (need 0.4 CPU, 0.2 CPU free)"
    );
}

#[test]
fn other_apps_reservations_count() {
    let hosts = vec![host("h1").capacity(128 * MIB, 4000)];
    let apps = vec![
        app("a", vec![service("big").reserve(100 * MIB, 0)]),
        app("b", vec![service("small").reserve(64 * MIB, 0)]),
    ];
    let mut c = Cluster::new(hosts, apps);
    let plan = c.step();
    assert_eq!(
        c.spread("a", "big").len(),
        1,
        "apps are placed in name order"
    );
    assert_eq!(
        plan.unplaced["b"]["small"],
        "0/1 hosts available: 1 insufficient memory (need 64.0 MiB, 28.0 MiB free)"
    );
    // Removing the first app frees the room for the second.
    c.snap.apps.retain(|a| a.spec.name != "a");
    let plan = c.step();
    assert!(plan.unplaced.is_empty());
    assert_eq!(c.spread("b", "small").len(), 1);
}

#[test]
fn room_freed_by_the_plan_is_reused_in_the_same_plan() {
    // One host, just big enough for one instance: a changed service can only
    // be replaced if the old instance's reservation is released first (a
    // stop-first update; start-first needs room for one more).
    let hosts = vec![host("h1").capacity(128 * MIB, 4000)];
    let svc = || {
        let mut s = service("api").reserve(100 * MIB, 0);
        s.deploy.update.order = atoll_sdk::spec::UpdateOrder::StopFirst;
        s
    };
    let mut c = Cluster::new(hosts, vec![app("shop", vec![svc()])]);
    c.step();
    c.deploy(app("shop", vec![svc().env("V", "2")]));
    let plan = c.step();
    assert_eq!(kinds(&plan), ["stop", "place"]);
    assert!(plan.unplaced.is_empty());
}

#[test]
fn a_lost_hosts_reservations_do_not_count() {
    let hosts = vec![
        host("h1").capacity(128 * MIB, 4000),
        host("h2").capacity(128 * MIB, 4000),
    ];
    let svc = service("api").replicas(2).reserve(100 * MIB, 0);
    let mut c = Cluster::new(hosts, vec![app("shop", vec![svc])]);
    c.step();
    c.set_state("h1", HostState::Down);
    let plan = c.step();
    assert_eq!(
        plan.unplaced["shop"]["api"],
        "0/2 hosts available: 1 down, 1 insufficient memory (need 100.0 MiB, 28.0 MiB free)"
    );
    c.set_state("h1", HostState::Ready);
    c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 1), ("h2", 1)]));
}
