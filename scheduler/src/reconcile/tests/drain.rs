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
