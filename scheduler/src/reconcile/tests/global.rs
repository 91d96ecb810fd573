//! Global services: one instance on every ready host that matches.

use super::*;

fn edge() -> Vec<HostSnapshot> {
    vec![
        host("e1").label("site", "edge"),
        host("e2").label("site", "edge"),
        host("c1").label("site", "cloud"),
    ]
}

fn agent() -> atoll_sdk::spec::Service {
    service("agent")
        .global()
        .constraint("node.labels.site == edge")
}

#[test]
fn one_instance_on_every_matching_host() {
    let mut c = Cluster::new(edge(), vec![app("fleet", vec![agent()])]);
    let plan = c.step();
    assert_eq!(c.spread("fleet", "agent"), counts(&[("e1", 1), ("e2", 1)]));
    assert!(
        plan.unplaced.is_empty(),
        "c1 not matching is no problem: {:?}",
        plan.unplaced
    );
}

#[test]
fn a_host_joining_later_gets_its_instance() {
    let mut c = Cluster::new(edge(), vec![app("fleet", vec![agent()])]);
    c.step();
    c.add_host(host("e3").label("site", "edge"));
    let plan = c.step();
    assert_eq!(kinds(&plan), ["place"]);
    assert_eq!(plan.assignments.keys().collect::<Vec<_>>(), ["e3"]);
    assert_eq!(c.spread("fleet", "agent").len(), 3);
}

#[test]
fn a_host_that_stops_matching_loses_it() {
    let mut c = Cluster::new(edge(), vec![app("fleet", vec![agent()])]);
    c.step();
    c.snap.hosts[1] = host("e2").label("site", "cloud");
    let plan = c.step();
    assert_eq!(kinds(&plan), ["stop"]);
    assert_eq!(c.spread("fleet", "agent"), counts(&[("e1", 1)]));
}

#[test]
fn a_silent_host_keeps_its_instance_and_runs_it_on_when_back() {
    let mut c = Cluster::new(edge(), vec![app("fleet", vec![agent()])]);
    c.step();
    let before = c.ids_on("e1");
    c.set_state("e1", HostState::Disconnected);
    c.snap.now_ms += 3_600_000;
    let plan = c.step();
    assert!(
        plan.changes_nothing(),
        "a global instance is never replaced: {plan:?}"
    );
    c.set_state("e1", HostState::Ready);
    assert!(c.step().changes_nothing());
    assert_eq!(c.ids_on("e1"), before, "the same instance, never restarted");
}

#[test]
fn max_replicas_per_node_is_irrelevant() {
    let svc = service("agent").global().max_per_node(5);
    let mut c = Cluster::new(edge(), vec![app("fleet", vec![svc])]);
    c.step();
    assert_eq!(c.spread("fleet", "agent").values().sum::<usize>(), 3);
}

#[test]
fn switching_from_replicated_keeps_one_per_host() {
    let hosts = vec![host("h1"), host("h2")];
    let mut c = Cluster::new(
        hosts,
        vec![app("fleet", vec![service("agent").replicas(4)])],
    );
    c.step();
    let kept: Vec<String> = ["h1", "h2"]
        .iter()
        .map(|h| c.ids_on(h)[0].clone())
        .collect();
    c.deploy(app("fleet", vec![service("agent").global()]));
    let plan = c.step();
    assert_eq!(kinds(&plan), ["stop", "stop"]);
    assert_eq!(c.all_ids(), kept);
}

#[test]
fn a_matching_host_without_room_is_explained() {
    let hosts = vec![host("h1"), host("h2"), host("h3").capacity(32 * MIB, 4000)];
    let svc = service("agent").global().reserve(64 * MIB, 0);
    let mut c = Cluster::new(hosts, vec![app("fleet", vec![svc])]);
    let plan = c.step();
    assert_eq!(c.spread("fleet", "agent"), counts(&[("h1", 1), ("h2", 1)]));
    assert_eq!(
        plan.unplaced["fleet"]["agent"],
        "2/3 hosts available: 1 insufficient memory (need 64.0 MiB, 32.0 MiB free)"
    );
}

#[test]
fn no_matching_host_at_all_is_explained() {
    let svc = service("agent")
        .global()
        .constraint("node.labels.site == moon");
    let mut c = Cluster::new(edge(), vec![app("fleet", vec![svc])]);
    let plan = c.step();
    assert!(c.all_ids().is_empty());
    assert_eq!(
        plan.unplaced["fleet"]["agent"],
        "0/3 hosts available: 3 failed constraint node.labels.site == moon"
    );
}

/// Instances of fleet/agent by revision: (old, new).
fn by_revision(c: &Cluster) -> (usize, usize) {
    let revs: Vec<u64> = (c.snap.assignments.values().flat_map(|a| &a.instances))
        .map(|i| i.revision)
        .collect();
    let count = |r| revs.iter().filter(|&&x| x == r).count();
    (count(1), count(2))
}

fn all_running(c: &mut Cluster) {
    for id in c.all_ids() {
        if !c.snap.observed.contains_key(&id) {
            c.report(&id, InstanceState::Running);
        }
    }
}

fn updated_fleet() -> Cluster {
    let hosts = vec![
        host("e1").label("site", "edge"),
        host("e2").label("site", "edge"),
        host("e3").label("site", "edge"),
    ];
    let mut c = Cluster::new(hosts, vec![app("fleet", vec![agent()])]);
    c.step();
    all_running(&mut c);
    c.deploy(app("fleet", vec![agent().env("V", "2")]));
    c
}

#[test]
fn an_update_goes_host_by_host() {
    let mut c = updated_fleet();
    let plan = c.step();
    assert_eq!(by_revision(&c), (2, 1), "one host at a time");
    assert_eq!(plan.rollouts["fleet"]["agent"].replicas, 3);
    c.step();
    assert_eq!(by_revision(&c), (2, 1), "waits for the new one to be ready");
    let mut seen = vec![by_revision(&c)];
    for _ in 0..3 {
        all_running(&mut c);
        c.step();
        seen.push(by_revision(&c));
    }
    assert_eq!(seen, [(2, 1), (1, 2), (0, 3), (0, 3)]);
    assert_eq!(c.spread("fleet", "agent").len(), 3, "one on each host");
    assert!(c.step().rollouts.is_empty(), "done");
}

#[test]
fn a_failing_global_update_stops_and_asks_for_its_action() {
    let mut c = updated_fleet();
    c.step();
    let new = (c.snap.assignments.values().flat_map(|a| &a.instances))
        .find(|i| i.revision == 2)
        .map(|i| i.id.clone())
        .expect("a new instance");
    c.report(&new, InstanceState::Failed);
    let plan = c.step();
    let progress = &plan.rollouts["fleet"]["agent"];
    let (why, action) = progress.failed.clone().expect("stopped");
    assert!(why.contains(&new), "{why}");
    assert_eq!(action, atoll_sdk::spec::FailureAction::Rollback);
    assert_eq!(by_revision(&c), (2, 1), "the other hosts keep the old one");
}
