//! Instances that failed for good: re-placed elsewhere with a growing
//! delay; and failures within `monitor` after an update, which undo it.

use super::*;
use atoll_sdk::protocol::UpdateDone;
use atoll_sdk::spec::FailureAction;

fn host_of(c: &Cluster, id: &str) -> String {
    (c.snap.assignments.iter())
        .find(|(_, a)| a.instances.iter().any(|i| i.id == id))
        .map(|(h, _)| h.clone())
        .expect("assigned")
}

fn spec_of<'c>(c: &'c Cluster, id: &str) -> &'c atoll_sdk::cluster::InstanceSpec {
    (c.snap.assignments.values().flat_map(|a| &a.instances))
        .find(|i| i.id == id)
        .expect("assigned")
}

fn one_api() -> Cluster {
    let api = service("api");
    let mut c = Cluster::new(vec![host("h1"), host("h2")], vec![app("shop", vec![api])]);
    c.snap.now_ms = 1_000_000;
    c.step();
    c
}

#[test]
fn an_instance_its_host_gave_up_on_is_replaced_on_another_host() {
    let mut c = one_api();
    let first = c.all_ids()[0].clone();
    let first_host = host_of(&c, &first);
    c.give_up(&first, c.snap.now_ms);
    let plan = c.step();
    let ids = c.all_ids();
    assert_eq!(ids.len(), 1, "replaced, not added: {ids:?}");
    assert_ne!(ids[0], first);
    assert_ne!(host_of(&c, &ids[0]), first_host, "placed elsewhere");
    let heir = spec_of(&c, &ids[0]);
    assert_eq!((heir.attempt, heir.avoid.clone()), (1, vec![first_host]));
    assert!(
        (plan.events.iter())
            .any(|e| e.kind == event_kind::RESCHEDULE && e.message.contains(&first)),
        "{:?}",
        plan.events
    );
}

#[test]
fn a_failed_instance_its_host_still_restarts_keeps_its_slot() {
    let mut c = one_api();
    let first = c.all_ids()[0].clone();
    c.report(&first, InstanceState::Failed);
    assert!(c.plan().changes_nothing());
}

#[test]
fn later_replacements_wait_longer_and_avoid_every_host_that_failed() {
    let mut c = one_api();
    let first = c.all_ids()[0].clone();
    c.give_up(&first, c.snap.now_ms);
    c.step();
    let second = c.all_ids()[0].clone();
    let now = c.snap.now_ms;
    c.give_up(&second, now);
    // The second replacement waits 5 s.
    assert!(c.plan().changes_nothing(), "too early");
    c.snap.now_ms = now + 4_999;
    assert!(c.plan().changes_nothing(), "still too early");
    c.snap.now_ms = now + 5_000;
    c.step();
    let third = c.all_ids()[0].clone();
    let heir = spec_of(&c, &third);
    assert_eq!(heir.attempt, 2);
    assert_eq!(heir.avoid, ["h1", "h2"], "both hosts failed it once");
}

#[test]
fn the_delay_grows_to_five_minutes_and_stays_there() {
    use crate::reconcile::decide::replace_after_ms;
    let delays: Vec<u64> = (0..10).map(replace_after_ms).collect();
    assert_eq!(
        delays,
        [
            0, 5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000
        ]
    );
    assert_eq!(replace_after_ms(u32::MAX), 300_000);
}

/// shop/api at revision 2, its update finished at `done_ms`, every
/// instance running.
fn updated(done_ms: u64, tweak: impl Fn(&mut atoll_sdk::spec::Service)) -> Cluster {
    let mut api = service("api").replicas(2);
    tweak(&mut api);
    let mut c = Cluster::new(vec![host("h1"), host("h2")], vec![app("shop", vec![api])]);
    c.snap.apps[0].revision = 2;
    c.snap.now_ms = 1_000_000;
    c.step();
    for id in c.all_ids() {
        c.report(&id, InstanceState::Running);
    }
    let done = UpdateDone {
        revision: 2,
        at_ms: done_ms,
    };
    c.snap.updated = BTreeMap::from([(
        "shop".to_string(),
        BTreeMap::from([("api".to_string(), done)]),
    )]);
    c
}

#[test]
fn a_failure_within_monitor_after_an_update_asks_for_a_rollback() {
    // monitor defaults to 5 s; the update finished 1 s ago.
    let mut c = updated(999_000, |_| {});
    let id = c.all_ids()[0].clone();
    c.give_up(&id, 1_000_000);
    let plan = c.plan();
    let progress = &plan.rollouts["shop"]["api"];
    let (why, action) = progress.failed.clone().expect("a failure");
    assert_eq!(action, FailureAction::Rollback);
    assert!(why.contains(&id) && why.contains("within monitor"), "{why}");
    assert!(
        plan.changes_nothing(),
        "not re-placed: the rollback undoes it"
    );
}

#[test]
fn a_failure_after_monitor_is_replaced_instead() {
    let mut c = updated(990_000, |_| {});
    let id = c.all_ids()[0].clone();
    c.give_up(&id, 1_000_000);
    let plan = c.step();
    assert!(plan.rollouts.is_empty());
    assert!(!c.all_ids().contains(&id), "re-placed");
}

#[test]
fn monitor_only_rolls_back_when_failure_action_says_so() {
    let mut c = updated(999_000, |s| {
        s.deploy.update.failure_action = FailureAction::Pause
    });
    let id = c.all_ids()[0].clone();
    c.report(&id, InstanceState::Failed);
    assert!(c.plan().rollouts.is_empty());
}

#[test]
fn monitor_watches_only_the_revision_the_update_made() {
    let mut c = updated(999_000, |_| {});
    c.snap.apps[0].revision = 3;
    let id = c.all_ids()[0].clone();
    c.report(&id, InstanceState::Failed);
    assert!(c.plan().rollouts.is_empty());
}
