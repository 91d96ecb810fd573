//! `atoll hosts cordon` and `drain`: a cordoned host takes no new
//! instance and keeps what it runs; a drained one has its instances
//! replaced elsewhere, each new one ready before the old one stops.

use super::*;
use atoll_sdk::protocol::Availability;

fn set(c: &mut Cluster, host: &str, a: Availability) {
    let h = c.snap.hosts.iter_mut().find(|h| h.name() == host);
    h.expect("known host").availability = a;
}

fn three_on_three() -> Cluster {
    let web = service("web").replicas(3);
    let mut c = Cluster::new(
        vec![host("h1"), host("h2"), host("h3")],
        vec![app("shop", vec![web])],
    );
    c.step();
    c.start_all();
    assert_eq!(c.spread("shop", "web").len(), 3);
    c
}

#[test]
fn a_cordoned_host_keeps_its_instances_and_takes_no_new_one() {
    let mut c = three_on_three();
    set(&mut c, "h3", Availability::Cordoned);
    let plan = c.step();
    assert!(
        plan.assignments.is_empty(),
        "nothing moves: {:?}",
        plan.assignments
    );
    c.deploy(app("shop", vec![service("web").replicas(6)]));
    c.step();
    let spread = c.spread("shop", "web");
    assert_eq!(
        spread.get("h3"),
        Some(&1),
        "no new instance on h3: {spread:?}"
    );
    assert_eq!(spread.values().sum::<usize>(), 6);
}

#[test]
fn a_drained_host_is_emptied_one_ready_replacement_at_a_time() {
    let mut c = three_on_three();
    let old = c.ids_on("h3");
    set(&mut c, "h3", Availability::Draining);
    c.step();
    // The replacement first, elsewhere; the old one still serves.
    assert_eq!(
        c.ids_on("h3"),
        old,
        "nothing stops before its replacement is ready"
    );
    assert_eq!(c.all_ids().len(), 4);
    let plan = c.step();
    assert!(plan.assignments.is_empty(), "waits for the replacement");
    c.start_all();
    let plan = c.step();
    assert!(
        c.ids_on("h3").is_empty(),
        "h3 emptied once the replacement runs"
    );
    assert_eq!(c.all_ids().len(), 3);
    let spread = c.spread("shop", "web");
    assert!(!spread.contains_key("h3"), "{spread:?}");
    assert!(
        plan.rollouts.is_empty(),
        "a drain is no update: {:?}",
        plan.rollouts
    );
    assert!(
        plan.events
            .iter()
            .any(|e| e.message.contains("being drained")),
        "the stop says why: {:?}",
        plan.events
    );
    // Back to active: nothing moves back by itself.
    set(&mut c, "h3", Availability::Active);
    let plan = c.step();
    assert!(plan.assignments.is_empty());
}

#[test]
fn a_failing_replacement_stops_the_drain_and_keeps_the_old_instance() {
    let mut c = three_on_three();
    let old = c.ids_on("h3");
    set(&mut c, "h3", Availability::Draining);
    c.step();
    let new: Vec<String> = c
        .all_ids()
        .into_iter()
        .filter(|id| !c.snap.observed.contains_key(id))
        .collect();
    assert_eq!(new.len(), 1);
    c.report(&new[0], InstanceState::Failed);
    for _ in 0..3 {
        c.step();
        assert_eq!(c.ids_on("h3"), old, "the old instance keeps serving");
    }
}

#[test]
fn a_global_service_stops_on_a_drained_host_and_skips_a_cordoned_one() {
    let agent = service("agent").global();
    let mut c = Cluster::new(
        vec![host("h1"), host("h2"), host("h3")],
        vec![app("ops", vec![agent])],
    );
    c.step();
    c.start_all();
    set(&mut c, "h3", Availability::Draining);
    c.step();
    assert!(c.ids_on("h3").is_empty());
    set(&mut c, "h3", Availability::Cordoned);
    c.step();
    assert!(c.ids_on("h3").is_empty(), "a cordoned host gets none");
    set(&mut c, "h3", Availability::Active);
    c.step();
    assert_eq!(c.ids_on("h3").len(), 1);
}

fn with_volume(name: &str) -> atoll_sdk::spec::Service {
    let mut db = service(name);
    db.volumes = vec![atoll_sdk::spec::VolumeMount {
        name: Some("data".into()),
        target: "/data".into(),
        read_only: false,
        nocopy: false,
    }];
    db
}

#[test]
fn a_drain_leaves_a_volume_service_unless_told_to_move_it() {
    let mut c = Cluster::new(
        vec![host("h1"), host("h2")],
        vec![app("shop", vec![with_volume("db")])],
    );
    c.step();
    c.start_all();
    let (home, _) = c.spread("shop", "db").pop_first().expect("placed");
    let other = if home == "h1" { "h2" } else { "h1" };
    let old = c.ids_on(&home);
    set(&mut c, &home, Availability::Draining);
    for _ in 0..3 {
        let plan = c.step();
        assert!(plan.assignments.is_empty(), "its data is there");
        assert_eq!(c.ids_on(&home), old);
    }
    // `--volumes`: stopped first (never two on one volume), then started
    // on the other host.
    let h = c.snap.hosts.iter_mut().find(|h| h.name() == home);
    h.expect("known host").drain_volumes = true;
    let plan = c.step();
    let kinds: Vec<&str> = plan.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["stop", "place"], "{:?}", plan.events);
    assert!(c.ids_on(&home).is_empty());
    assert_eq!(c.ids_on(other).len(), 1);
    assert!(
        plan.events
            .iter()
            .any(|e| e.message.contains("being drained")),
        "{:?}",
        plan.events
    );
}

#[test]
fn a_volume_service_updated_on_a_cordoned_or_plainly_drained_host_stays_with_its_data() {
    for availability in [Availability::Cordoned, Availability::Draining] {
        let mut c = Cluster::new(
            vec![host("h1"), host("h2")],
            vec![app("shop", vec![with_volume("db")])],
        );
        c.step();
        c.start_all();
        let home = c.spread("shop", "db");
        let (h, _) = home.first_key_value().expect("placed");
        set(&mut c, &h.clone(), availability);
        c.deploy(app("shop", vec![with_volume("db").env("V", "2")]));
        // Unsettled: the host takes no new instance, and no other may.
        let plan = c.plan();
        c.snap = apply(&c.snap, &plan);
        assert!(
            !c.spread("shop", "db").keys().any(|k| !home.contains_key(k)),
            "{availability}: never moved off its data by an update: {:?}",
            c.spread("shop", "db")
        );
    }
}

#[test]
fn a_drain_names_the_volume_services_a_host_runs_once_each() {
    let web = service("web").replicas(2);
    let db = with_volume("db").replicas(2);
    let mut c = Cluster::new(vec![host("h1")], vec![app("shop", vec![web, db])]);
    c.step();
    let found = crate::host_availability::Found::of(&c.snap.assignments["h1"].instances);
    assert_eq!(found.instances, 4);
    assert_eq!(found.volume_services, ["shop/db"]);
}
