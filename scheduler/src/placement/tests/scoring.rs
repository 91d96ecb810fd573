//! Scorers: spread preferences, instances per host, least allocated, name;
//! and the `max_replicas_per_node` filter that shapes spreading.

use super::*;
use atoll_sdk::spec::ResourceSpec;

#[test]
fn spread_balances_label_values_not_hosts() {
    // Two hosts in zone a, one in zone b: per-zone balance puts half the
    // instances on the lone zone-b host.
    let hosts = vec![
        host("a1").label("zone", "a"),
        host("a2").label("zone", "a"),
        host("b1").label("zone", "b"),
    ];
    let svc = service("api").spread("node.labels.zone");
    let mut cands = empty(&hosts);
    let chosen = place_n(&mut cands, &svc, 4);
    assert_eq!(
        tally(&chosen),
        BTreeMap::from([("a1", 1), ("a2", 1), ("b1", 2)])
    );
}

#[test]
fn without_spread_hosts_are_balanced_instead() {
    let hosts = vec![
        host("a1").label("zone", "a"),
        host("a2").label("zone", "a"),
        host("b1").label("zone", "b"),
    ];
    let mut cands = empty(&hosts);
    let chosen = place_n(&mut cands, &service("api"), 3);
    assert_eq!(
        tally(&chosen),
        BTreeMap::from([("a1", 1), ("a2", 1), ("b1", 1)])
    );
}

#[test]
fn hosts_without_the_spread_label_form_one_group() {
    let hosts = vec![host("x1"), host("x2"), host("e1").label("zone", "east")];
    let svc = service("api").spread("node.labels.zone");
    let mut cands = empty(&hosts);
    let chosen = place_n(&mut cands, &svc, 2);
    assert_eq!(tally(&chosen), BTreeMap::from([("e1", 1), ("x1", 1)]));
}

#[test]
fn spread_counts_existing_instances_of_the_same_service_only() {
    let hosts = vec![host("a1").label("zone", "a"), host("b1").label("zone", "b")];
    let mut cands = empty(&hosts);
    let none = ResourceSpec::default();
    cands[1].add(APP, "api", &none);
    cands[0].add(APP, "db", &none);
    cands[0].add("other", "api", &none);
    let svc = service("api").spread("node.labels.zone");
    assert_eq!(place(&cands, &demand(&svc)).unwrap().host, "a1");
}

#[test]
fn fewest_instances_of_the_service_then_least_allocated_then_name() {
    let hosts = vec![host("h1"), host("h2"), host("h3")];
    let mut cands = empty(&hosts);
    cands[0].add(APP, "api", &ResourceSpec::default());
    let busy = ResourceSpec {
        memory: Some(512 * MIB),
        cpus_milli: None,
        pids: None,
    };
    cands[1].add(APP, "db", &busy);
    let svc = service("api");
    // h1 already has one api; h2 is busier than h3.
    assert_eq!(place(&cands, &demand(&svc)).unwrap().host, "h3");
    // Equal hosts: the name decides, so the choice never wobbles.
    assert_eq!(choose(&[host("b"), host("a")], &svc).unwrap(), "a");
}

#[test]
fn least_allocated_counts_cpu_too() {
    let hosts = vec![host("h1"), host("h2")];
    let mut cands = empty(&hosts);
    let cpu = ResourceSpec {
        memory: None,
        cpus_milli: Some(2000),
        pids: None,
    };
    cands[0].add("other", "worker", &cpu);
    assert_eq!(place(&cands, &demand(&service("api"))).unwrap().host, "h2");
}

#[test]
fn max_replicas_per_node_caps_each_host() {
    let hosts = vec![host("h1"), host("h2")];
    let svc = service("api").max_per_node(1);
    let mut cands = empty(&hosts);
    let chosen = place_n(&mut cands, &svc, 2);
    assert_eq!(tally(&chosen), BTreeMap::from([("h1", 1), ("h2", 1)]));
    let err = place(&cands, &demand(&svc)).unwrap_err();
    assert_eq!(err.rejected["h1"], Rejection::MaxReplicas(1));
    assert_eq!(
        err.to_string(),
        "0/2 hosts available: 2 at max_replicas_per_node (1)"
    );
}

#[test]
fn max_replicas_per_node_does_not_apply_to_global_services() {
    let hosts = vec![host("h1")];
    let svc = service("agent").global().max_per_node(1);
    let mut cands = empty(&hosts);
    cands[0].add(APP, "agent", &ResourceSpec::default());
    assert!(filter(&cands[0], &demand(&svc)).is_ok());
}

#[test]
fn hosts_to_avoid_come_last_but_still_serve() {
    // a1 is emptier and first by name; the instance failed there before.
    let hosts = vec![host("a1"), host("a2")];
    let svc = service("api");
    let avoid = vec!["a1".to_string()];
    let with_avoid = Demand {
        avoid: &avoid,
        ..demand(&svc)
    };
    let mut cands = empty(&hosts);
    cands[1].add(APP, "api", &ResourceSpec::default());
    let chosen = place(&cands, &with_avoid).map(|c| c.host);
    assert_eq!(chosen.as_deref(), Ok("a2"));
    // With no other host it goes back where it failed.
    let alone = vec![host("a1")];
    let chosen = place(&empty(&alone), &with_avoid).map(|c| c.host);
    assert_eq!(chosen.as_deref(), Ok("a1"));
}
