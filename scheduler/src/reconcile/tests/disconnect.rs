//! `x-atoll.disconnect`: what a silent host's instances are taken for,
//! the hold after a mass loss, and which copy stays on heal.

use super::*;
use atoll_sdk::spec::{Disconnect, HealPolicy};

fn with_policy(d: Disconnect) -> AppRecord {
    let mut api = service("api").replicas(2);
    api.disconnect = d;
    app("shop", vec![api])
}

fn policy(lost_after_ms: u64, reconcile: HealPolicy) -> Disconnect {
    Disconnect {
        lost_after_ms,
        reconcile,
        ..Disconnect::default()
    }
}

/// Two hosts each running one `api`; h3 is spare.
fn running(d: Disconnect) -> Cluster {
    let mut c = Cluster::new(
        vec![host("h1"), host("h2"), host("h3")],
        vec![with_policy(d)],
    );
    c.step();
    // Pin the layout: one on h1, one on h2 (placement would spread so).
    assert_eq!(c.spread("shop", "api").len(), 2);
    c
}

fn host_of(c: &Cluster, id: &str) -> String {
    (c.snap.assignments.iter())
        .find(|(_, a)| a.instances.iter().any(|i| i.id == id))
        .map(|(h, _)| h.clone())
        .expect("assigned")
}

#[test]
fn within_lost_after_nothing_moves_and_nothing_restarts_on_heal() {
    let mut c = running(policy(30_000, HealPolicy::BestScore));
    let before = c.all_ids();
    let silent = host_of(&c, &before[0]);
    c.set_state(&silent, HostState::Disconnected);
    c.snap.now_ms += 20_000;
    assert!(
        c.step().changes_nothing(),
        "20 s of 30: still counts as running"
    );
    c.set_state(&silent, HostState::Ready);
    assert!(c.step().changes_nothing());
    assert_eq!(c.all_ids(), before);
}

#[test]
fn past_lost_after_it_is_replaced_once() {
    let mut c = running(policy(30_000, HealPolicy::BestScore));
    let ids = c.all_ids();
    let silent = host_of(&c, &ids[0]);
    c.set_state(&silent, HostState::Disconnected);
    c.snap.now_ms += 30_000;
    let plan = c.step();
    assert_eq!(kinds(&plan), ["lost", "replaced"]);
    assert!(
        plan.events[0].message.contains("silent for 30.0s: lost"),
        "{}",
        plan.events[0].message
    );
    c.snap.now_ms += 60_000;
    assert!(c.step().changes_nothing(), "replaced once, not again");
}

#[test]
fn replace_false_waits_for_the_host() {
    let mut c = running(Disconnect {
        replace: false,
        ..Disconnect::default()
    });
    let before = c.all_ids();
    c.set_state(&host_of(&c, &before[0]), HostState::Disconnected);
    c.snap.now_ms += 3_600_000;
    assert!(c.step().changes_nothing());
    assert_eq!(c.all_ids(), before);
}

#[test]
fn a_hold_loses_nothing_until_it_ends() {
    let mut c = running(Disconnect::default());
    let before = c.all_ids();
    c.set_state(&host_of(&c, &before[0]), HostState::Disconnected);
    c.snap.hold = Some("2 of 3 hosts went silent together".into());
    c.snap.now_ms += 600_000;
    assert!(c.step().changes_nothing(), "held: nothing is lost");
    c.snap.hold = None;
    assert_eq!(
        kinds(&c.step()),
        ["lost", "replaced"],
        "judged again once over"
    );
}

/// The pair after h(original) went silent and came back, the replacement
/// reported `running` when `running` says so.
fn healed(reconcile: HealPolicy, replacement_runs: bool) -> (Cluster, String, String, Plan) {
    let mut c = running(policy(0, reconcile));
    let original = c.all_ids()[0].clone();
    let silent = host_of(&c, &original);
    c.set_state(&silent, HostState::Disconnected);
    c.step();
    let replacement = (c.snap.assignments.values())
        .flat_map(|a| &a.instances)
        .find(|i| i.replaces.as_deref() == Some(&original))
        .map(|i| i.id.clone())
        .expect("replaced");
    if replacement_runs {
        c.report(&replacement, InstanceState::Running);
    }
    c.set_state(&silent, HostState::Ready);
    let plan = c.step();
    (c, original, replacement, plan)
}

#[test]
fn keep_original_stops_the_replacement() {
    let (c, original, replacement, plan) = healed(HealPolicy::KeepOriginal, false);
    assert_eq!(kinds(&plan), ["heal"]);
    let ids = c.all_ids();
    assert!(ids.contains(&original) && !ids.contains(&replacement));
    assert_eq!(ids.len(), 2);
}

#[test]
fn keep_replacement_stops_the_original_once_the_replacement_runs() {
    let (mut c, original, replacement, plan) = healed(HealPolicy::KeepReplacement, false);
    assert!(
        plan.changes_nothing(),
        "its replacement does not run yet: both stay"
    );
    c.report(&replacement, InstanceState::Running);
    let plan = c.step();
    assert_eq!(kinds(&plan), ["heal"]);
    assert!(
        plan.events[0].message.starts_with("kept replacement"),
        "{}",
        plan.events[0].message
    );
    let ids = c.all_ids();
    assert!(!ids.contains(&original) && ids.contains(&replacement));
    assert_eq!(ids.len(), 2);
}

#[test]
fn best_score_keeps_the_copy_on_the_host_placement_prefers() {
    // The replacement went to the spare h3, where it is as alone as the
    // original on its own host: a tie, and the original stays.
    let (c, original, replacement, _) = healed(HealPolicy::BestScore, true);
    let ids = c.all_ids();
    assert!(ids.contains(&original) && !ids.contains(&replacement));
    assert_eq!(c.spread("shop", "api").values().sum::<usize>(), 2);
}
