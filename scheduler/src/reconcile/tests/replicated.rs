//! Replicated services: spreading, scaling, constraints and
//! `max_replicas_per_node` applied to instances already running.

use super::*;

fn two_hosts() -> Vec<HostSnapshot> {
    vec![host("h1"), host("h2")]
}

#[test]
fn four_replicas_over_two_equal_hosts_go_two_and_two() {
    let mut c = Cluster::new(
        two_hosts(),
        vec![app("shop", vec![service("api").replicas(4)])],
    );
    let plan = c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 2), ("h2", 2)]));
    assert_eq!(kinds(&plan), ["place"; 4]);
    assert!(plan.unplaced.is_empty());
}

#[test]
fn scaling_up_keeps_running_instances_and_fills_the_emptiest_hosts() {
    let hosts = vec![host("h1"), host("h2"), host("h3")];
    let mut c = Cluster::new(hosts, vec![app("shop", vec![service("api").replicas(2)])]);
    c.step();
    let before = c.all_ids();
    c.deploy(app("shop", vec![service("api").replicas(5)]));
    let plan = c.step();
    assert_eq!(kinds(&plan), ["place"; 3]);
    assert!(
        before.iter().all(|id| c.all_ids().contains(id)),
        "scaling replaced instances"
    );
    assert_eq!(
        c.spread("shop", "api"),
        counts(&[("h1", 2), ("h2", 2), ("h3", 1)])
    );
}

#[test]
fn scaling_down_stops_from_the_busiest_host_first() {
    let mut c = Cluster::new(
        two_hosts(),
        vec![app("shop", vec![service("api").replicas(3)])],
    );
    c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 2), ("h2", 1)]));

    c.deploy(app("shop", vec![service("api").replicas(2)]));
    let plan = c.step();
    assert_eq!(kinds(&plan), ["stop"]);
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 1), ("h2", 1)]));

    // Equal hosts: the first by name gives one up.
    c.deploy(app("shop", vec![service("api").replicas(1)]));
    c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h2", 1)]));
}

#[test]
fn scaling_to_zero_stops_everything() {
    let mut c = Cluster::new(
        two_hosts(),
        vec![app("shop", vec![service("api").replicas(2)])],
    );
    c.step();
    c.deploy(app("shop", vec![service("api").replicas(0)]));
    let plan = c.step();
    assert_eq!(kinds(&plan), ["stop", "stop"]);
    assert!(c.all_ids().is_empty());
    assert_eq!(
        plan.assignments["h1"].instances,
        vec![],
        "h1 is told to stop"
    );
}

#[test]
fn instances_on_hosts_that_stop_matching_move() {
    let hosts = vec![
        host("h1").label("zone", "east"),
        host("h2").label("zone", "west"),
    ];
    let svc = || service("api").replicas(2);
    let mut c = Cluster::new(hosts, vec![app("shop", vec![svc()])]);
    c.step();
    let on_h1 = c.ids_on("h1");

    c.deploy(app(
        "shop",
        vec![svc().constraint("node.labels.zone == east")],
    ));
    let plan = c.step();
    assert_eq!(kinds(&plan), ["stop", "place"]);
    assert!(
        plan.events[0].message.contains("no longer matches"),
        "{:?}",
        plan.events
    );
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 2)]));
    assert!(
        c.ids_on("h1").starts_with(&on_h1),
        "the matching instance stayed"
    );
}

#[test]
fn a_relabelled_host_loses_its_instances() {
    let hosts = vec![
        host("h1").label("zone", "east"),
        host("h2").label("zone", "east"),
    ];
    let svc = service("api")
        .replicas(2)
        .constraint("node.labels.zone == east");
    let mut c = Cluster::new(hosts, vec![app("shop", vec![svc])]);
    c.step();
    c.snap.hosts[1] = host("h2").label("zone", "west");
    c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 2)]));
}

#[test]
fn lowering_max_replicas_per_node_moves_the_surplus() {
    let hosts = vec![host("h1"), host("h2"), host("h3")];
    let svc = || service("api").replicas(4);
    let mut c = Cluster::new(hosts, vec![app("shop", vec![svc()])]);
    c.step();
    assert_eq!(
        c.spread("shop", "api"),
        counts(&[("h1", 2), ("h2", 1), ("h3", 1)])
    );

    c.deploy(app("shop", vec![svc().replicas(3).max_per_node(1)]));
    let plan = c.step();
    assert_eq!(
        kinds(&plan),
        ["stop"],
        "one surplus on h1, and 3 replicas remain"
    );
    assert_eq!(
        c.spread("shop", "api"),
        counts(&[("h1", 1), ("h2", 1), ("h3", 1)])
    );
}

#[test]
fn max_replicas_per_node_leaves_the_rest_unplaced() {
    let svc = service("api").replicas(3).max_per_node(1);
    let mut c = Cluster::new(two_hosts(), vec![app("shop", vec![svc])]);
    let plan = c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 1), ("h2", 1)]));
    assert_eq!(
        plan.unplaced["shop"]["api"],
        "0/2 hosts available: 2 at max_replicas_per_node (1)"
    );
    assert_eq!(kinds(&plan), ["place", "place", "unplaceable"]);
}

#[test]
fn spread_over_zones_balances_the_zones() {
    let hosts = vec![
        host("a1").label("zone", "a"),
        host("a2").label("zone", "a"),
        host("b1").label("zone", "b"),
    ];
    let svc = service("api").replicas(4).spread("node.labels.zone");
    let mut c = Cluster::new(hosts, vec![app("shop", vec![svc])]);
    c.step();
    assert_eq!(
        c.spread("shop", "api"),
        counts(&[("a1", 1), ("a2", 1), ("b1", 2)])
    );
}

#[test]
fn services_of_one_app_share_the_hosts() {
    let apps = vec![app(
        "shop",
        vec![service("api").replicas(2), service("web").replicas(2)],
    )];
    let mut c = Cluster::new(two_hosts(), apps);
    c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 1), ("h2", 1)]));
    assert_eq!(c.spread("shop", "web"), counts(&[("h1", 1), ("h2", 1)]));
}
