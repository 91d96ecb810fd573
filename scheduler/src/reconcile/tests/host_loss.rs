//! Hosts going down: their instances are lost and re-placed on survivors.

use super::*;

#[test]
fn instances_of_a_down_host_are_re_placed_on_survivors() {
    let hosts = vec![host("h1"), host("h2"), host("h3")];
    let mut c = Cluster::new(hosts, vec![app("shop", vec![service("api").replicas(3)])]);
    c.step();
    let lost = c.ids_on("h2");

    c.set_state("h2", HostState::Down);
    let plan = c.step();
    assert_eq!(kinds(&plan), ["lost", "place"]);
    assert_eq!(
        plan.events[0].message,
        format!("{} (api) on h2: host h2 is down", lost[0])
    );
    // The down host's assignment is emptied, so it stops the instance if
    // it comes back.
    assert_eq!(plan.assignments["h2"].instances, vec![]);
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 2), ("h3", 1)]));
    assert!(!c.all_ids().contains(&lost[0]));
}

#[test]
fn a_service_with_a_named_volume_waits_for_its_host() {
    let mut db = service("db");
    db.volumes = vec![atoll_sdk::spec::VolumeMount {
        name: Some("data".into()),
        target: "/data".into(),
        read_only: false,
        nocopy: false,
    }];
    let mut c = Cluster::new(
        vec![host("h1"), host("h2")],
        vec![app("shop", vec![db, service("api").replicas(2)])],
    );
    c.step();
    let db_host = if c.ids_on("h1").iter().any(|i| i.contains("-db-")) {
        "h1"
    } else {
        "h2"
    };
    let before = c.all_ids();
    c.set_state(db_host, HostState::Down);
    c.step();
    let after = c.all_ids();
    let db_ids = |ids: &Vec<String>| {
        ids.iter()
            .filter(|i| i.contains("-db-"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(db_ids(&after), db_ids(&before), "the db instance stays");
    assert_eq!(
        c.spread("shop", "db")[db_host],
        1,
        "still assigned to its host"
    );

    // Once the operator retires that host, the service moves.
    c.remove_host(db_host);
    c.step();
    let other = if db_host == "h1" { "h2" } else { "h1" };
    assert_eq!(c.spread("shop", "db"), counts(&[(other, 1)]));
    assert!(
        db_ids(&c.all_ids())
            .iter()
            .all(|i| !db_ids(&before).contains(i))
    );
    assert_eq!(c.step().assignments.len(), 0, "and stays there");
}

#[test]
fn a_host_coming_back_changes_nothing() {
    let mut c = Cluster::new(
        vec![host("h1"), host("h2")],
        vec![app("shop", vec![service("api").replicas(2)])],
    );
    c.step();
    c.set_state("h1", HostState::Down);
    c.step();
    c.set_state("h1", HostState::Ready);
    let plan = c.step();
    assert!(plan.changes_nothing(), "no rebalancing on return: {plan:?}");
    assert_eq!(c.spread("shop", "api"), counts(&[("h2", 2)]));
}

#[test]
fn an_unknown_host_counts_as_down() {
    let mut c = Cluster::new(
        vec![host("h1"), host("h2")],
        vec![app("shop", vec![service("api").replicas(2)])],
    );
    c.step();
    c.snap.hosts.retain(|h| h.name() != "h1");
    let plan = c.step();
    assert_eq!(kinds(&plan), ["lost", "place"]);
    assert_eq!(c.spread("shop", "api"), counts(&[("h2", 2)]));
}

#[test]
fn with_every_host_down_nothing_can_be_placed() {
    let mut c = Cluster::new(
        vec![host("h1"), host("h2")],
        vec![app("shop", vec![service("api").replicas(2)])],
    );
    c.step();
    c.set_state("h1", HostState::Down);
    c.set_state("h2", HostState::Down);
    let plan = c.step();
    assert_eq!(kinds(&plan), ["lost", "lost", "unplaceable"]);
    assert_eq!(plan.unplaced["shop"]["api"], "0/2 hosts available: 2 down");
    assert!(c.all_ids().is_empty());

    c.set_state("h2", HostState::Ready);
    c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h2", 2)]));
}

#[test]
fn lost_instances_respect_the_constraints_when_moving() {
    let hosts = vec![
        host("h1").label("zone", "east"),
        host("h2").label("zone", "east"),
        host("h3").label("zone", "west"),
    ];
    let svc = service("api")
        .replicas(2)
        .constraint("node.labels.zone == east");
    let mut c = Cluster::new(hosts, vec![app("shop", vec![svc])]);
    c.step();
    c.set_state("h1", HostState::Down);
    c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h2", 2)]));
}
