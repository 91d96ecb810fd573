//! Rolling updates: batch by batch, start-first by default, stopped by
//! failures.

use super::*;
use atoll_sdk::spec::{FailureAction, UpdateOrder};

/// Instances of `shop/api` by revision: (v1, v2).
fn by_revision(c: &Cluster) -> (usize, usize) {
    let specs: Vec<&atoll_sdk::cluster::InstanceSpec> = c
        .snap
        .assignments
        .values()
        .flat_map(|a| &a.instances)
        .collect();
    let count = |rev| specs.iter().filter(|s| s.revision == rev).count();
    (count(1), count(2))
}

/// The first instance of revision 2 reports failed; its id.
fn fail_a_new_instance(c: &mut Cluster) -> String {
    let new = (c.snap.assignments.values().flat_map(|a| &a.instances))
        .find(|i| i.revision == 2)
        .map(|i| i.id.clone())
        .expect("a new instance");
    c.report(&new, InstanceState::Failed);
    new
}

fn shop(version: &str, tweak: impl Fn(&mut atoll_sdk::spec::Service)) -> AppRecord {
    let mut api = service("api").replicas(4).env("VERSION", version);
    tweak(&mut api);
    app("shop", vec![api])
}

fn running_v1(tweak: impl Fn(&mut atoll_sdk::spec::Service) + Copy) -> Cluster {
    let mut c = Cluster::new(vec![host("h1"), host("h2")], vec![shop("v1", tweak)]);
    c.step();
    c.start_all();
    c.deploy(shop("v2", tweak));
    c
}

#[test]
fn start_first_adds_one_new_instance_then_stops_an_old_one_per_ready_new_one() {
    let mut c = running_v1(|_| {});
    let plan = c.step();
    assert_eq!(by_revision(&c), (4, 1), "one new instance beside the four");
    assert_eq!(plan.rollouts["shop"]["api"].updated, 0);
    // Not ready yet: nothing more happens (step asserts a second pass is
    // idle too).
    c.step();
    assert_eq!(by_revision(&c), (4, 1));
    let mut seen = vec![by_revision(&c)];
    for _ in 0..4 {
        c.start_all();
        c.step();
        seen.push(by_revision(&c));
    }
    assert_eq!(seen, [(4, 1), (3, 2), (2, 3), (1, 4), (0, 4)]);
    assert!(c.step().rollouts.is_empty(), "done");
}

#[test]
fn stop_first_in_batches_of_two() {
    let mut c = running_v1(|s| {
        s.deploy.update.order = UpdateOrder::StopFirst;
        s.deploy.update.parallelism = 2;
    });
    c.step();
    assert_eq!(by_revision(&c), (2, 2), "two stopped, two started");
    c.step();
    assert_eq!(by_revision(&c), (2, 2), "waits for the batch");
    c.start_all();
    c.step();
    assert_eq!(by_revision(&c), (0, 4));
}

#[test]
fn a_failing_new_instance_halts_the_update_and_asks_for_a_rollback() {
    let mut c = running_v1(|_| {});
    c.step();
    let new = fail_a_new_instance(&mut c);
    let plan = c.step();
    assert_eq!(by_revision(&c), (4, 1), "the old ones keep serving");
    let failed = &plan.rollouts["shop"]["api"].failed;
    let (why, action) = failed.as_ref().expect("the failure is reported");
    assert!(why.contains(&new) && why.contains("exit code 1"), "{why}");
    assert_eq!(*action, FailureAction::Rollback);
}

#[test]
fn continue_goes_on_past_failures() {
    let mut c = running_v1(|s| s.deploy.update.failure_action = FailureAction::Continue);
    c.step();
    fail_a_new_instance(&mut c);
    c.step();
    assert_eq!(
        by_revision(&c),
        (3, 2),
        "the failure counts as done: an old one stops, the next batch starts"
    );
    // And the update finishes, failed instance and all.
    for _ in 0..4 {
        c.start_all();
        c.step();
    }
    assert_eq!(by_revision(&c), (0, 4));
}

#[test]
fn a_canary_runs_beside_the_service_and_its_weight_restarts_nothing() {
    let with_canary = |weight: u8| {
        let mut api = service("api").replicas(4);
        api.canary = Some(atoll_sdk::spec::Canary {
            artifact: atoll_sdk::spec::Artifact::Image("registry.test/api:2".into()),
            weight,
            replicas: 1,
        });
        app("shop", vec![api])
    };
    let mut c = Cluster::new(vec![host("h1"), host("h2")], vec![with_canary(20)]);
    c.step();
    let specs: Vec<atoll_sdk::cluster::InstanceSpec> = (c
        .snap
        .assignments
        .values()
        .flat_map(|a| a.instances.clone()))
    .collect();
    assert_eq!(specs.len(), 5);
    let canaries: Vec<_> = specs.iter().filter(|s| s.canary).collect();
    assert_eq!(canaries.len(), 1);
    assert_eq!(
        canaries[0].service, "api",
        "named and routed as its service"
    );
    assert_eq!(
        canaries[0].artifact,
        atoll_sdk::cluster::ArtifactRef::Image("registry.test/api:2".into())
    );
    c.start_all();
    c.deploy(with_canary(50));
    assert!(c.step().changes_nothing(), "a new weight is routing only");

    // Promoted: the service runs the canary's artifact, the canary goes.
    let mut promoted = service("api").replicas(4);
    promoted.artifact = atoll_sdk::spec::Artifact::Image("registry.test/api:2".into());
    c.deploy(app("shop", vec![promoted]));
    c.step();
    let left = (c.snap.assignments.values().flat_map(|a| &a.instances))
        .filter(|s| s.canary)
        .count();
    assert_eq!(left, 0);
}

#[test]
fn a_service_with_a_named_volume_is_replaced_on_its_host_stop_first() {
    let with_volume = |version: &str| {
        let mut db = service("db").env("VERSION", version);
        db.volumes = vec![atoll_sdk::spec::VolumeMount {
            name: Some("data".into()),
            target: "/data".into(),
            read_only: false,
            nocopy: false,
        }];
        app("shop", vec![db])
    };
    let mut c = Cluster::new(vec![host("h1"), host("h2")], vec![with_volume("v1")]);
    c.step();
    c.start_all();
    let home = c.spread("shop", "db");
    c.deploy(with_volume("v2"));
    let plan = c.step();
    let kinds: Vec<&str> = plan.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["stop", "place"], "never two on one volume");
    assert_eq!(c.spread("shop", "db"), home, "where its data is");
}

#[test]
fn start_first_on_a_full_cluster_falls_back_to_stop_first() {
    // Two hosts with room for exactly two instances each.
    let hosts = vec![
        host("h1").capacity(200 * MIB, 4000),
        host("h2").capacity(200 * MIB, 4000),
    ];
    let full = |version: &str| {
        let api = service("api")
            .replicas(4)
            .env("VERSION", version)
            .reserve(100 * MIB, 0);
        app("shop", vec![api])
    };
    let mut c = Cluster::new(hosts, vec![full("v1")]);
    c.step();
    c.start_all();
    c.deploy(full("v2"));
    let plan = c.step();
    assert_eq!(by_revision(&c), (4, 0), "no room for a fifth");
    assert!(
        plan.unplaced["shop"].contains_key("api"),
        "{:?}",
        plan.unplaced
    );
    // The controller's status says so; the next pass stops one first.
    c.snap.unplaced.insert(("shop".into(), "api".into()));
    let plan = c.plan();
    c.snap = apply(&c.snap, &plan);
    assert_eq!(by_revision(&c), (3, 1), "replaced in place");
    c.snap.unplaced.clear();
    let mut seen = Vec::new();
    for _ in 0..8 {
        c.start_all();
        let plan = c.plan();
        c.snap = apply(&c.snap, &plan);
        let short = plan
            .unplaced
            .get("shop")
            .is_some_and(|u| u.contains_key("api"));
        if short {
            c.snap.unplaced.insert(("shop".into(), "api".into()));
        } else {
            c.snap.unplaced.clear();
        }
        seen.push(by_revision(&c));
    }
    assert_eq!(seen.last(), Some(&(0, 4)), "finished: {seen:?}");
    assert!(seen.iter().all(|(old, new)| old + new <= 4), "{seen:?}");
}

#[test]
fn a_paused_update_keeps_the_count_on_the_old_version() {
    let mut c = running_v1(|s| s.deploy.update.failure_action = FailureAction::Pause);
    c.step();
    let failed = fail_a_new_instance(&mut c);
    let plan = c.step();
    assert!(plan.rollouts["shop"]["api"].failed.is_some(), "paused");
    let failed_host = (c.snap.assignments.iter())
        .find(|(_, a)| a.instances.iter().any(|i| i.id == failed))
        .map(|(h, _)| h.clone())
        .expect("assigned");
    let other = if failed_host == "h1" { "h2" } else { "h1" };
    // The host without the failed instance goes silent: its old instances
    // are lost (they stay assigned there), and come back as old ones on
    // the other host.
    let lost_before = v1_count(&c, other);
    c.set_state(other, HostState::Down);
    let plan = c.step();
    assert!(
        plan.rollouts["shop"]["api"].failed.is_some(),
        "still paused"
    );
    let v1_on = |c: &Cluster, h: &str| {
        (c.snap
            .assignments
            .get(h)
            .into_iter()
            .flat_map(|a| &a.instances))
        .filter(|i| i.revision == 1)
        .count()
    };
    assert_eq!(
        v1_on(&c, &failed_host),
        4,
        "four old ones serve: {:?}",
        c.spread("shop", "api")
    );
    assert_eq!(
        v1_on(&c, other),
        lost_before,
        "still assigned to the silent host"
    );
    assert_eq!(by_revision(&c).1, 1, "no more of the failing version");
}

fn v1_count(c: &Cluster, h: &str) -> usize {
    (c.snap.assignments.get(h).into_iter())
        .flat_map(|a| &a.instances)
        .filter(|i| i.revision == 1)
        .count()
}

mod finished {
    use super::*;
    use crate::reconcile::updates_done;
    use atoll_sdk::protocol::{AppStatus, RolloutStatus, UpdateDone};

    fn status(rolling: &[&str], updated: &[(&str, u64)]) -> AppStatus {
        let rollout = RolloutStatus {
            updated: 0,
            replicas: 1,
            failed: None,
            action: None,
        };
        AppStatus {
            v: 1,
            revision: 2,
            unplaced: Default::default(),
            assigned: Default::default(),
            rollouts: (rolling.iter())
                .map(|s| (s.to_string(), rollout.clone()))
                .collect(),
            updated: (updated.iter())
                .map(|(s, rev)| {
                    (
                        s.to_string(),
                        UpdateDone {
                            revision: *rev,
                            at_ms: 5,
                        },
                    )
                })
                .collect(),
        }
    }

    fn record() -> AppRecord {
        let mut r = app("shop", vec![service("api"), service("web")]);
        r.revision = 2;
        r
    }

    #[test]
    fn an_update_finishes_when_its_rollout_leaves_the_plan() {
        let before = status(&["api", "web"], &[]);
        let still = BTreeMap::from([(
            "web".to_string(),
            Progress {
                updated: 0,
                replicas: 1,
                failed: None,
            },
        )]);
        let done = updates_done(&record(), Some(&before), Some(&still), 100);
        assert_eq!(done.keys().collect::<Vec<_>>(), ["api"]);
        assert_eq!(
            done["api"],
            UpdateDone {
                revision: 2,
                at_ms: 100
            }
        );
        assert!(
            updates_done(&record(), None, None, 100).is_empty(),
            "no status yet"
        );
    }

    #[test]
    fn a_second_end_of_the_same_revision_keeps_the_first_time() {
        // `monitor` reported a failure for api, which then cleared.
        let before = status(&["api"], &[("api", 2)]);
        let done = updates_done(&record(), Some(&before), None, 100);
        assert_eq!(done["api"].at_ms, 5);
    }

    #[test]
    fn services_no_longer_deployed_are_dropped_canaries_kept() {
        let before = status(&[], &[("gone", 1), ("web~canary", 2), ("api", 1)]);
        let done = updates_done(&record(), Some(&before), None, 100);
        assert_eq!(done.keys().collect::<Vec<_>>(), ["api", "web~canary"]);
    }
}
