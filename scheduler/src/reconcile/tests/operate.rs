//! `atoll stop` / `start` and `restart` as the reconciler sees them: a
//! stopped app keeps its revision and runs nothing; started, it is placed
//! again; a restarted service is replaced like an update.

use super::*;

#[test]
fn a_stopped_app_runs_nothing_and_starts_again() {
    let shop = || {
        app(
            "shop",
            vec![service("web").replicas(2), service("agent").global()],
        )
    };
    let mut c = Cluster::new(vec![host("h1"), host("h2")], vec![shop()]);
    c.step();
    c.start_all();
    assert_eq!(c.all_ids().len(), 4);
    let mut stopped = shop();
    stopped.stopped = true;
    c.deploy(stopped);
    let plan = c.step();
    assert!(c.all_ids().is_empty(), "{:?}", c.all_ids());
    assert!(
        (plan.events.iter()).all(|e| e.message.contains("app stopped")),
        "{:?}",
        plan.events
    );
    assert!(
        c.step().events.is_empty(),
        "nothing more to do while stopped"
    );
    c.deploy(shop());
    c.step();
    assert_eq!(c.all_ids().len(), 4, "placed again once started");
}

#[test]
fn a_restarted_service_is_replaced_one_at_a_time() {
    let shop = |restarted: Option<u64>| {
        let mut web = service("web").replicas(2);
        web.restarted_at_ms = restarted;
        app("shop", vec![web, service("db")])
    };
    let mut c = Cluster::new(vec![host("h1"), host("h2")], vec![shop(None)]);
    c.step();
    c.start_all();
    let before = c.all_ids();
    c.deploy(shop(Some(1)));
    c.step();
    let during = c.all_ids();
    assert_eq!(
        during.len(),
        4,
        "one new web beside the old two: {during:?}"
    );
    for _ in 0..6 {
        c.start_all();
        c.step();
    }
    let after = c.all_ids();
    assert_eq!(after.len(), 3);
    let kept: Vec<&String> = after.iter().filter(|id| before.contains(id)).collect();
    assert_eq!(kept.len(), 1, "only db's instance stays: {kept:?}");
}
