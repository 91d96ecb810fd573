//! Apps and services coming, changing and going; failed instances; the
//! instance specs reconcile builds.

use super::*;
use atoll_sdk::cluster::ArtifactRef;
use atoll_sdk::spec::{Artifact, PortMapping};

fn two_hosts() -> Vec<HostSnapshot> {
    vec![host("h1"), host("h2")]
}

#[test]
fn removing_an_app_stops_all_its_instances() {
    let apps = vec![
        app("shop", vec![service("api").replicas(2)]),
        app("blog", vec![service("web")]),
    ];
    let mut c = Cluster::new(two_hosts(), apps);
    c.step();
    c.snap.apps.retain(|a| a.spec.name != "shop");
    let plan = c.step();
    assert_eq!(kinds(&plan), ["stop", "stop"]);
    assert!(plan.events.iter().all(|e| e.app == "shop"));
    assert!(plan.events[0].message.ends_with("no longer deployed"));
    assert!(c.spread("shop", "api").is_empty());
    assert_eq!(c.spread("blog", "web").len(), 1, "other apps are untouched");
}

#[test]
fn removing_a_service_stops_only_its_instances() {
    let mut c = Cluster::new(
        two_hosts(),
        vec![app("shop", vec![service("api"), service("web")])],
    );
    c.step();
    let web = c.spread("shop", "web");
    c.deploy(app("shop", vec![service("web")]));
    let plan = c.step();
    assert_eq!(kinds(&plan), ["stop"]);
    assert!(c.spread("shop", "api").is_empty());
    assert_eq!(c.spread("shop", "web"), web);
}

#[test]
fn a_changed_service_gets_new_instances() {
    // All at once, stop first (the rolling default is in `updates.rs`).
    let svc = || {
        let mut s = service("api").replicas(2);
        s.deploy.update.order = atoll_sdk::spec::UpdateOrder::StopFirst;
        s.deploy.update.parallelism = 0;
        s
    };
    let mut c = Cluster::new(two_hosts(), vec![app("shop", vec![svc()])]);
    c.step();
    let old = c.all_ids();

    c.deploy(app("shop", vec![svc().env("LOG", "debug")]));
    let plan = c.step();
    assert_eq!(kinds(&plan), ["stop", "stop", "place", "place"]);
    assert!(plan.events[0].message.ends_with("service changed"));
    let new = c.all_ids();
    assert!(new.iter().all(|id| !old.contains(id)));
    let specs: Vec<_> = c
        .snap
        .assignments
        .values()
        .flat_map(|a| &a.instances)
        .collect();
    assert!(
        specs
            .iter()
            .all(|i| i.revision == 2 && i.env["LOG"] == "debug")
    );
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 1), ("h2", 1)]));
}

#[test]
fn a_redeploy_of_the_same_service_changes_nothing() {
    let mut c = Cluster::new(two_hosts(), vec![app("shop", vec![service("api")])]);
    c.step();
    c.deploy(app("shop", vec![service("api")]));
    assert!(c.step().changes_nothing());
}

#[test]
fn failed_instances_keep_their_slot() {
    let mut c = Cluster::new(
        two_hosts(),
        vec![app("shop", vec![service("api").replicas(2)])],
    );
    c.step();
    let id = c.ids_on("h1")[0].clone();
    c.report(&id, InstanceState::Failed);
    let plan = c.step();
    assert!(plan.changes_nothing() && plan.events.is_empty(), "{plan:?}");
    assert!(c.all_ids().contains(&id));
}

#[test]
fn scaling_down_stops_failed_instances_first() {
    let mut c = Cluster::new(
        two_hosts(),
        vec![app("shop", vec![service("api").replicas(3)])],
    );
    c.step();
    // h1 runs two, but the failed one on h2 is the one worth stopping.
    let failed = c.ids_on("h2")[0].clone();
    c.report(&failed, InstanceState::Failed);
    c.deploy(app("shop", vec![service("api").replicas(2)]));
    c.step();
    assert_eq!(c.spread("shop", "api"), counts(&[("h1", 2)]));
}

#[test]
fn instances_carry_everything_their_host_needs() {
    let mut svc = service("api").reserve(64 * MIB, 250).env("MODE", "prod");
    svc.artifact = Artifact::Stored("sha256:abc".into());
    svc.ports = vec![PortMapping {
        published: 8080,
        target: 80,
    }];
    svc.timeout_ms = 5_000;
    svc.deploy.resources.limits.memory = Some(128 * MIB);
    let mut record = app("shop", vec![svc.clone()]);
    record.revision = 7;
    let mut c = Cluster::new(vec![host("h1")], vec![record]);
    c.step();

    let spec = &c.snap.assignments["h1"].instances[0];
    assert_eq!(spec.id, "shop-api-001");
    assert_eq!((spec.app.as_str(), spec.service.as_str()), ("shop", "api"));
    assert_eq!(spec.revision, 7);
    assert_eq!(spec.spec_hash, spec_hash(&svc));
    assert_eq!(spec.artifact, ArtifactRef::Stored("sha256:abc".into()));
    assert_eq!(spec.env, svc.environment);
    assert_eq!(spec.ports, svc.ports);
    assert_eq!(spec.limits, svc.deploy.resources.limits);
    assert_eq!(spec.reservations, svc.deploy.resources.reservations);
    assert_eq!(spec.timeout_ms, 5_000);
    assert_eq!(c.snap.assignments["h1"].host, "h1");
}

#[test]
fn images_become_image_refs() {
    let mut c = Cluster::new(vec![host("h1")], vec![app("shop", vec![service("api")])]);
    c.step();
    let spec = &c.snap.assignments["h1"].instances[0];
    assert_eq!(
        spec.artifact,
        ArtifactRef::Image("registry.test/api:1".into())
    );
}

#[test]
fn an_unuploaded_component_is_unplaced_not_run() {
    let mut svc = service("api");
    svc.artifact = Artifact::Component("./api.wasm".into());
    let mut c = Cluster::new(two_hosts(), vec![app("shop", vec![svc, service("web")])]);
    let plan = c.step();
    assert!(c.spread("shop", "api").is_empty());
    assert_eq!(
        c.spread("shop", "web").len(),
        1,
        "the other service still runs"
    );
    assert!(plan.unplaced["shop"]["api"].contains("./api.wasm"));
}

#[test]
fn the_spec_hash_ignores_how_many_and_where() {
    let base = service("api");
    let mut autoscaled = service("api");
    autoscaled.autoscale = Some(atoll_sdk::spec::Autoscale {
        min: 0,
        max: 5,
        metric: atoll_sdk::spec::ScaleMetric::Rps,
        target_milli: 1_000,
        scale_up_window_ms: 1,
        scale_down_window_ms: 1,
    });
    let same = [
        service("api").replicas(9),
        autoscaled,
        service("api").global(),
        service("api")
            .constraint("node.hostname == h1")
            .max_per_node(2),
        service("api").spread("node.labels.zone"),
    ];
    for s in &same {
        assert_eq!(spec_hash(s), spec_hash(&base), "{s:?}");
    }
    let different = [
        service("api").env("A", "b"),
        service("api").reserve(MIB, 0),
        service("web"),
    ];
    for s in &different {
        assert_ne!(spec_hash(s), spec_hash(&base), "{s:?}");
    }
}
