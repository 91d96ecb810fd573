//! Hosts going down: their instances are lost and re-placed on survivors.

use super::*;

#[test]
fn instances_of_a_silent_host_are_replaced_on_survivors_and_stay_assigned_there() {
    let hosts = vec![host("h1"), host("h2"), host("h3")];
    let mut c = Cluster::new(hosts, vec![app("shop", vec![service("api").replicas(3)])]);
    c.step();
    let lost = c.ids_on("h2");

    c.set_state("h2", HostState::Disconnected);
    let plan = c.step();
    assert_eq!(kinds(&plan), ["lost", "replaced"]);
    assert!(
        plan.events[0]
            .message
            .starts_with(&format!("{} (api) on h2: host h2 silent for", lost[0])),
        "{}",
        plan.events[0].message
    );
    // The silent host keeps its assignment: cut off, it runs on, and the
    // pair is settled when it is heard again.
    assert_eq!(c.ids_on("h2"), lost);
    let replacement = (c.snap.assignments.values())
        .flat_map(|a| &a.instances)
        .find(|i| i.replaces.as_deref() == Some(&lost[0]))
        .expect("a replacement names what it replaces");
    assert_ne!(replacement.id, lost[0]);
    assert_eq!(
        c.spread("shop", "api"),
        counts(&[("h1", 2), ("h2", 1), ("h3", 1)])
    );
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
fn a_host_coming_back_after_its_instance_was_replaced_leaves_exactly_the_replicas() {
    let mut c = Cluster::new(
        vec![host("h1"), host("h2")],
        vec![app("shop", vec![service("api").replicas(2)])],
    );
    c.step();
    c.set_state("h1", HostState::Disconnected);
    c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 1), ("h2", 2)]));
    c.set_state("h1", HostState::Ready);
    let plan = c.step();
    // best_score: h1 has none of the service besides the original, h2 has
    // one more: the original stays, the replacement goes.
    assert_eq!(kinds(&plan), ["heal"]);
    assert!(
        plan.events[0].message.starts_with("kept original"),
        "{}",
        plan.events[0].message
    );
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 1), ("h2", 1)]));
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
fn with_every_host_silent_nothing_is_taken_off_and_the_fleet_heals_in_place() {
    let mut c = Cluster::new(
        vec![host("h1"), host("h2")],
        vec![app("shop", vec![service("api").replicas(2)])],
    );
    c.step();
    let before = c.all_ids();
    c.set_state("h1", HostState::Disconnected);
    c.set_state("h2", HostState::Disconnected);
    let plan = c.step();
    assert_eq!(kinds(&plan), ["unplaceable"], "nowhere to put replacements");
    assert_eq!(plan.unplaced["shop"]["api"], "0/2 hosts available: 2 down");
    assert_eq!(c.all_ids(), before, "nothing is taken off a silent host");

    c.set_state("h1", HostState::Ready);
    c.set_state("h2", HostState::Ready);
    let plan = c.step();
    assert!(plan.changes_nothing(), "{plan:?}");
    assert_eq!(c.all_ids(), before, "same instances, nothing restarted");
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
    c.set_state("h1", HostState::Disconnected);
    c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 1), ("h2", 2)]));
}
