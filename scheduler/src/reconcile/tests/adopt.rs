//! Adoption: NATS replaced (restored from an export), the assignments are
//! gone while hosts run on and report their instances; the control plane
//! gives each host back what it runs instead of placing copies.

use super::*;
use atoll_sdk::cluster::InstanceSpec;

fn two_hosts() -> Vec<HostSnapshot> {
    vec![host("h1"), host("h2")]
}

/// The assignments are lost; every host reports each instance it ran as
/// running (the heartbeats of a fresh control plane). The specs as they
/// were, by host.
fn lose_assignments(c: &mut Cluster) -> BTreeMap<String, Vec<InstanceSpec>> {
    let before: BTreeMap<String, Vec<InstanceSpec>> = (c.snap.assignments.iter())
        .map(|(h, a)| (h.clone(), a.instances.clone()))
        .collect();
    c.snap.assignments.clear();
    c.snap.observed.clear();
    c.snap.seen_since.clear();
    for (host, specs) in &before {
        for spec in specs {
            runs(c, host, spec, InstanceState::Running);
        }
    }
    before
}

/// `host` reports `spec` in `state`, assigned or not.
fn runs(c: &mut Cluster, host: &str, spec: &InstanceSpec, state: InstanceState) {
    c.snap
        .observed
        .insert(spec.id.clone(), status_of(spec, state));
    c.snap.observed_on.insert(spec.id.clone(), host.to_string());
    c.snap.seen_since.insert(spec.id.clone(), 0);
}

/// Reconciles without minting any id.
fn step_without_new_ids(c: &mut Cluster) -> Plan {
    let plan = reconcile(&c.snap, &mut |app, service| {
        panic!("placed a new {app}/{service} instance instead of adopting")
    });
    c.snap = apply(&c.snap, &plan);
    assert_stable(&c.snap);
    plan
}

#[test]
fn hosts_get_back_what_they_run_under_the_same_ids_and_specs() {
    let mut c = Cluster::new(
        two_hosts(),
        vec![app("shop", vec![service("api").replicas(3), service("db")])],
    );
    c.step();
    let before = lose_assignments(&mut c);
    let plan = step_without_new_ids(&mut c);
    assert_eq!(kinds(&plan), ["adopt"; 4]);
    assert!(
        plan.events[0].message.contains(": adopted"),
        "{:?}",
        plan.events
    );
    for (host, specs) in &before {
        let mut now = c.snap.assignments[host].instances.clone();
        let mut was = specs.clone();
        now.sort_by(|a, b| a.id.cmp(&b.id));
        was.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(now, was, "{host}: the very specs it runs");
    }
}

#[test]
fn an_instance_of_an_unchanged_service_keeps_its_older_revision() {
    let mut c = Cluster::new(
        two_hosts(),
        vec![app("shop", vec![service("api"), service("db")])],
    );
    c.step();
    // Revision 2 changes api only: db's instance stays at revision 1.
    c.deploy(app(
        "shop",
        vec![service("api").env("V", "2"), service("db")],
    ));
    // The rolling update runs its course, every new instance running.
    for _ in 0..4 {
        for id in c.all_ids() {
            c.report(&id, InstanceState::Running);
        }
        c.step();
    }
    let db_before = (c.snap.assignments.values().flat_map(|a| &a.instances))
        .find(|i| i.service == "db")
        .cloned()
        .expect("db runs");
    assert_eq!(db_before.revision, 1);
    lose_assignments(&mut c);
    step_without_new_ids(&mut c);
    let db_now = (c.snap.assignments.values().flat_map(|a| &a.instances))
        .find(|i| i.service == "db")
        .cloned()
        .expect("db adopted");
    assert_eq!(db_now, db_before);
}

#[test]
fn an_instance_of_another_spec_is_not_adopted_and_a_new_one_is_placed() {
    let mut c = Cluster::new(two_hosts(), vec![app("shop", vec![service("api")])]);
    c.step();
    let old = lose_assignments(&mut c);
    // The restored state is another version of api than the host runs.
    c.snap.apps = vec![app("shop", vec![service("api").env("V", "restored")])];
    let plan = c.step();
    assert_eq!(kinds(&plan), ["place"]);
    let old_id = &old.values().flatten().next().expect("one").id;
    assert!(!c.all_ids().contains(old_id), "{:?}", c.all_ids());
    let new = c
        .snap
        .assignments
        .values()
        .flat_map(|a| &a.instances)
        .next();
    assert_eq!(
        new.map(|i| i.spec_hash.clone()),
        Some(spec_hash(&service("api").env("V", "restored")))
    );
}

#[test]
fn no_more_than_the_replicas_wanted_are_adopted() {
    let mut c = Cluster::new(
        two_hosts(),
        vec![app("shop", vec![service("api").replicas(4)])],
    );
    c.step();
    lose_assignments(&mut c);
    c.snap.apps = vec![app("shop", vec![service("api").replicas(3)])];
    let plan = step_without_new_ids(&mut c);
    assert_eq!(kinds(&plan), ["adopt"; 3]);
    assert_eq!(c.all_ids().len(), 3);
    assert_eq!(
        c.spread("shop", "api"),
        counts(&[("h1", 2), ("h2", 1)]),
        "hosts in name order"
    );
}

#[test]
fn instances_that_do_not_run_or_hosts_with_an_assignment_are_left_alone() {
    let mut c = Cluster::new(
        two_hosts(),
        vec![app("shop", vec![service("api").replicas(2)])],
    );
    c.step();
    let before = lose_assignments(&mut c);
    let on_h1 = before["h1"][0].clone();
    let on_h2 = before["h2"][0].clone();
    // h1's instance failed; h2 already has an (empty) assignment.
    runs(&mut c, "h1", &on_h1, InstanceState::Failed);
    c.snap.assignments.insert("h2".into(), Default::default());
    let plan = c.step();
    assert!(!kinds(&plan).contains(&"adopt"), "{:?}", kinds(&plan));
    let ids = c.all_ids();
    assert!(
        !ids.contains(&on_h1.id) && !ids.contains(&on_h2.id),
        "{ids:?}"
    );
    assert_eq!(ids.len(), 2, "two new instances");
}

#[test]
fn a_global_service_adopts_one_instance_per_host() {
    let mut c = Cluster::new(
        two_hosts(),
        vec![app("fleet", vec![service("agent").global()])],
    );
    c.step();
    let before = lose_assignments(&mut c);
    // h1 also reports a second copy, as if left over.
    let mut extra = before["h1"][0].clone();
    extra.id = "fleet-agent-999".into();
    runs(&mut c, "h1", &extra, InstanceState::Running);
    let plan = step_without_new_ids(&mut c);
    assert_eq!(kinds(&plan), ["adopt"; 2]);
    assert_eq!(c.spread("fleet", "agent"), counts(&[("h1", 1), ("h2", 1)]));
    assert!(!c.all_ids().contains(&extra.id), "{:?}", c.all_ids());
}
