use super::*;
use crate::snapshot::fixtures::*;
use atoll_sdk::spec::PortMapping;

/// One ready host and app `shop` with two replicas of `web` on port 8080.
fn shop() -> Snapshot {
    let mut web = service("web").replicas(2);
    web.ports = vec![PortMapping {
        published: 8080,
        target: 80,
    }];
    snapshot(vec![host("h1")], vec![app("shop", vec![web])])
}

fn plan_for(snap: &Snapshot) -> Plan {
    let mut n = 0;
    crate::reconcile::reconcile(snap, &mut |_, _| {
        n += 1;
        format!("i{n}")
    })
}

/// What the buckets hold once `w` is written over `before`.
fn written<V: Clone>(before: &BTreeMap<String, V>, changes: &KeyChanges<V>) -> BTreeMap<String, V> {
    let mut out = before.clone();
    out.extend(changes.put.iter().cloned());
    for k in &changes.delete {
        out.remove(k);
    }
    out
}

fn rollout(failed: Option<(&str, FailureAction)>) -> Progress {
    Progress {
        updated: 1,
        replicas: 3,
        failed: failed.map(|(why, action)| (why.to_string(), action)),
    }
}

#[test]
fn only_changed_keys_are_written_and_missing_ones_deleted() {
    let current = BTreeMap::from([("a".to_string(), 1), ("b".to_string(), 2)]);
    let wanted = BTreeMap::from([
        ("a".to_string(), 1),
        ("b".to_string(), 3),
        ("c".to_string(), 4),
    ]);
    let ch = key_changes(&wanted, &current);
    assert_eq!(ch.put, vec![("b".to_string(), 3), ("c".to_string(), 4)]);
    assert!(ch.delete.is_empty());
    let ch = key_changes(&BTreeMap::new(), &current);
    assert_eq!((ch.put.len(), ch.delete), (0, vec!["a".into(), "b".into()]));
}

#[test]
fn a_first_pass_writes_endpoints_status_and_tells_of_each_placement() {
    let snap = shop();
    let plan = plan_for(&snap);
    let after = after(snap, &plan);
    let w = decide(&after, &plan, &BTreeMap::new(), &BTreeMap::new());
    assert_eq!(w.placed, 2);
    assert_eq!(w.events.len(), 2, "{:?}", w.events);
    assert!(w.rollbacks.is_empty());
    let (key, eps) = &w.endpoints.put[0];
    assert_eq!(
        (key.as_str(), eps.instances.len()),
        ("shop.web", 0),
        "none ready yet"
    );
    let (app, status) = &w.statuses.put[0];
    assert_eq!(app, "shop");
    assert_eq!(status.revision, 1);
    assert_eq!(status.assigned, BTreeMap::from([("web".to_string(), 2)]));
    assert!(status.unplaced.is_empty() && status.rollouts.is_empty());
}

#[test]
fn a_pass_over_its_own_writes_writes_nothing() {
    let snap = shop();
    let plan = plan_for(&snap);
    let first = after(snap, &plan);
    let w = decide(&first, &plan, &BTreeMap::new(), &BTreeMap::new());
    let statuses = written(&BTreeMap::new(), &w.statuses);
    let endpoints = written(&BTreeMap::new(), &w.endpoints);
    let again = plan_for(&first);
    assert!(again.changes_nothing());
    let w = decide(&after(first, &again), &again, &statuses, &endpoints);
    assert_eq!((w.endpoints.put.len(), w.endpoints.delete.len()), (0, 0));
    assert_eq!((w.statuses.put.len(), w.statuses.delete.len()), (0, 0));
    assert_eq!((w.events.len(), w.placed), (0, 0));
}

#[test]
fn a_removed_apps_status_and_endpoints_are_deleted() {
    let snap = shop();
    let plan = plan_for(&snap);
    let w = decide(
        &after(snap, &plan),
        &plan,
        &BTreeMap::new(),
        &BTreeMap::new(),
    );
    let statuses = written(&BTreeMap::new(), &w.statuses);
    let endpoints = written(&BTreeMap::new(), &w.endpoints);
    let gone = snapshot(vec![host("h1")], Vec::new());
    let plan = plan_for(&gone);
    let w = decide(&after(gone, &plan), &plan, &statuses, &endpoints);
    assert_eq!(w.statuses.delete, vec!["shop".to_string()]);
    assert_eq!(w.endpoints.delete, vec!["shop.web".to_string()]);
}

#[test]
fn an_unplaceable_service_is_told_of_once_per_reason() {
    let big = service("web").reserve(64 * 1024 * MIB, 0);
    let snap = snapshot(vec![host("h1")], vec![app("shop", vec![big])]);
    let plan = plan_for(&snap);
    let after = after(snap, &plan);
    let w = decide(&after, &plan, &BTreeMap::new(), &BTreeMap::new());
    let unplaceable = |w: &Writes| {
        (w.events.iter())
            .filter(|e| e.kind == event_kind::UNPLACEABLE)
            .count()
    };
    assert_eq!(unplaceable(&w), 1, "new: told");
    let statuses = written(&BTreeMap::new(), &w.statuses);
    let w = decide(&after, &plan, &statuses, &BTreeMap::new());
    assert_eq!(unplaceable(&w), 0, "same reason: the status says it");
    let mut other = statuses.clone();
    if let Some(s) = other.get_mut("shop") {
        s.unplaced.insert("web".into(), "another reason".into());
    }
    assert_eq!(
        unplaceable(&decide(&after, &plan, &other, &BTreeMap::new())),
        1
    );
}

#[test]
fn failed_updates_ask_for_a_rollback_only_when_their_action_says_so() {
    let snap = shop();
    let mut plan = plan_for(&snap);
    let failing = |action| {
        BTreeMap::from([(
            "web".to_string(),
            rollout(Some(("new instance i9 on h1: exit 1", action))),
        )])
    };
    plan.rollouts
        .insert("shop".into(), failing(FailureAction::Rollback));
    plan.rollouts
        .insert("blog".into(), failing(FailureAction::Pause));
    let after = after(snap, &plan);
    let w = decide(&after, &plan, &BTreeMap::new(), &BTreeMap::new());
    assert_eq!(
        w.rollbacks,
        vec![(
            "shop".to_string(),
            "web: new instance i9 on h1: exit 1".to_string()
        )]
    );
    let status = &w.statuses.put[0].1;
    let web = &status.rollouts["web"];
    assert_eq!((web.updated, web.replicas), (1, 3));
    assert_eq!(web.action.as_deref(), Some("rollback"));
    assert_eq!(web.failed.as_deref(), Some("new instance i9 on h1: exit 1"));
}

#[test]
fn an_update_going_well_is_in_the_status_without_an_action() {
    let snap = shop();
    let mut plan = plan_for(&snap);
    let going = BTreeMap::from([("web".to_string(), rollout(None))]);
    plan.rollouts.insert("shop".into(), going);
    let status = app_status(&snap.apps[0], &after(snap.clone(), &plan), &plan, None);
    let web = &status.rollouts["web"];
    assert_eq!((web.failed.as_deref(), web.action.as_deref()), (None, None));
    assert!(
        decide(&snap, &plan, &BTreeMap::new(), &BTreeMap::new())
            .rollbacks
            .is_empty()
    );
}
