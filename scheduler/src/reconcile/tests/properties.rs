//! Properties every plan has: idempotence, determinism, minimal writes.

use super::*;

/// A cluster with a bit of everything.
fn busy() -> Cluster {
    let hosts = vec![
        host("a1").label("zone", "a"),
        host("a2").label("zone", "a").arch("aarch64"),
        host("b1").label("zone", "b").capacity(256 * MIB, 2000),
        host("b2").label("zone", "b").down(),
    ];
    let apps = vec![
        app(
            "shop",
            vec![
                service("api")
                    .replicas(5)
                    .spread("node.labels.zone")
                    .reserve(64 * MIB, 250),
                service("web").replicas(3).max_per_node(1),
                service("db").constraint("node.platform.arch == aarch64"),
            ],
        ),
        app(
            "fleet",
            vec![service("agent").global().reserve(16 * MIB, 100)],
        ),
        app(
            "big",
            vec![service("batch").replicas(2).reserve(900 * MIB, 0)],
        ),
    ];
    Cluster::new(hosts, apps)
}

#[test]
fn reconciling_an_applied_plan_changes_nothing() {
    let mut c = busy();
    c.step(); // asserts the second reconcile is empty
    // And keeps being empty across host churn.
    c.set_state("a1", HostState::Down);
    c.step();
    c.set_state("b2", HostState::Ready);
    c.step();
    c.set_state("a1", HostState::Ready);
    c.step();
}

#[test]
fn the_same_snapshot_gives_the_same_plan() {
    let first = busy().plan();
    let second = busy().plan();
    assert_eq!(first, second);
}

#[test]
fn input_order_does_not_matter() {
    let first = busy().plan();
    let mut shuffled = busy();
    shuffled.snap.apps.reverse();
    shuffled.snap.hosts.reverse();
    assert_eq!(shuffled.plan(), first);
}

#[test]
fn an_assignment_stored_in_another_order_is_not_rewritten() {
    let mut c = busy();
    c.step();
    for a in c.snap.assignments.values_mut() {
        a.instances.reverse();
    }
    assert_stable(&c.snap);
}

#[test]
fn unplaceable_instances_ask_for_no_ids() {
    let svc = service("api").constraint("node.hostname == nowhere");
    let snap = snapshot(vec![host("h1")], vec![app("shop", vec![svc])]);
    let plan = reconcile(&snap, &mut |_, _| panic!("no instance fits"));
    assert!(plan.changes_nothing());
    assert_eq!(
        plan.unplaced["shop"]["api"],
        "0/1 hosts available: 1 failed constraint node.hostname == nowhere"
    );
}

#[test]
fn only_changed_hosts_are_in_the_plan() {
    let mut c = busy();
    c.step();
    c.add_host(host("c1").label("zone", "c"));
    let plan = c.step();
    assert_eq!(
        plan.assignments.keys().collect::<Vec<_>>(),
        ["c1"],
        "the new host gets its agent"
    );
}

#[test]
fn an_empty_cluster_plans_nothing() {
    let plan = reconcile(&Snapshot::default(), &mut |_, _| unreachable!());
    assert_eq!(plan, Plan::default());
}

#[test]
fn plans_sort_instances_by_id() {
    let mut c = busy();
    let plan = c.step();
    for a in plan.assignments.values() {
        let ids: Vec<&str> = a.instances.iter().map(|i| i.id.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
