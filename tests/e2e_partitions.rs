//! Links that drop: three hosts, each in its own network namespace, NATS
//! and the server in the root namespace; links cut with `ip link set …
//! down` on the host's veth. Silent is not dead: within `lost_after` a
//! cut-off host keeps serving and nothing moves; past it, its instances
//! are replaced and, when the link heals, exactly `replicas` stay; when
//! every host (or NATS itself) goes away, nothing is stopped, moved or
//! restarted.

mod common;
#[path = "mesh/net.rs"]
mod net;

use common::*;
use net::TestNet;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A cluster of three component hosts on `net`.
fn fleet(net: &TestNet) -> Cluster {
    let mut c = Cluster::start_at(&net.gateway);
    for i in 0..3 {
        let name = format!("h{}", i + 1);
        let data = c.dir.path().join(format!("host-{name}"));
        let (ns, bind) = (net.namespaces[i].clone(), net.addresses[i].clone());
        c.start_host_in(Some(&ns), &name, &bind, &data, &[]);
    }
    c
}

/// Deploys `web` (the hello component) with `replicas`, at most one per
/// host, published on `port`, with `disconnect` under `x-atoll`.
fn deploy_web(c: &Cluster, port: u16, replicas: u32, disconnect: &str) {
    let text = format!(
        "name: edge
services:
  web:
    x-atoll:
      component: {}
      disconnect: {disconnect}
    ports: [\"{port}:80\"]
    deploy:
      replicas: {replicas}
      placement:
        max_replicas_per_node: 1
",
        sample_wasm("hello").display()
    );
    let file = c.compose("edge.yaml", &text);
    c.deploy_wait(&file);
}

/// id → (host, since_ms, restarts, state) of every instance.
fn instances(c: &Cluster) -> BTreeMap<String, (String, u64, u64, String)> {
    c.instances("edge")
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            let n = |k: &str| i[k].as_u64().unwrap_or_default();
            (
                s("id"),
                (s("host"), n("since_ms"), n("restarts"), s("state")),
            )
        })
        .collect()
}

fn host_states(c: &Cluster) -> BTreeMap<String, String> {
    let hosts = c.json(&["hosts", "-o", "json"]);
    hosts
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    (
                        h["name"].as_str().unwrap_or_default().to_string(),
                        h["state"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn index_of(host: &str) -> usize {
    host.trim_start_matches('h').parse::<usize>().expect("hN") - 1
}

/// What `atoll events` printed so far, one JSON object a line.
fn events(follower: &Proc) -> String {
    follower.log()
}

#[test]
fn a_cut_off_host_keeps_serving_and_nothing_moves_within_lost_after() {
    let net = TestNet::new(78, 3);
    let c = fleet(&net);
    let follower = c.follow_events();
    let port = free_port();
    deploy_web(&c, port, 3, "{lost_after: 30s}");
    let before = instances(&c);
    assert_eq!(before.len(), 3);

    net.cut(2);
    let cut_at = Instant::now();
    let own = format!("http://{}:{port}/", net.addresses[2]);
    // Cut off for 20 s: it serves its own instance the whole time.
    while cut_at.elapsed() < Duration::from_secs(20) {
        assert_eq!(
            net.get_from(2, &own),
            200,
            "h3 serves while cut off ({:?} in)",
            cut_at.elapsed()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    // Long past the 3 s heartbeat timeout: silent, not dead.
    assert_eq!(host_states(&c)["h3"], "disconnected");
    let during = c.instances("edge");
    let on_h3 = during
        .iter()
        .find(|i| i["host"] == "h3")
        .expect("still assigned to h3");
    assert_eq!(on_h3["state"], "running");
    assert_eq!(on_h3["unconfirmed"], true, "{on_h3}");
    assert_eq!(instances(&c).len(), 3, "nothing was re-placed");

    net.heal(2);
    wait_until("h3 to be heard again", Duration::from_secs(20), || {
        (host_states(&c)["h3"] == "ready").then_some(())
    });
    let after = wait_until("h3's instance confirmed", Duration::from_secs(10), || {
        let now = instances(&c);
        now.values().all(|v| v.3 == "running").then_some(now)
    });
    assert_eq!(
        after, before,
        "same ids, since_ms and restart counts: nothing restarted"
    );
    assert!(
        !events(&follower).contains("replaced"),
        "nothing was replaced"
    );
}

#[test]
fn past_lost_after_replacements_run_elsewhere_and_heal_leaves_exactly_the_replicas() {
    let net = TestNet::new(79, 3);
    let c = fleet(&net);
    let follower = c.follow_events();
    let port = free_port();
    deploy_web(&c, port, 2, "{lost_after: 0s}");
    let before = instances(&c);
    let (victim_id, (victim, ..)) = before
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("one");
    net.cut(index_of(&victim));
    let cut_at = Instant::now();
    let replacement = wait_until(
        "a replacement running elsewhere",
        Duration::from_secs(15),
        || {
            c.instances("edge").into_iter().find(|i| {
                i["replaces"] == victim_id.as_str()
                    && i["state"] == "running"
                    && i["host"] != victim.as_str()
            })
        },
    );
    let took = cut_at.elapsed();
    // The heartbeat timeout (3 s) plus the replacement's start.
    assert!(
        took < Duration::from_secs(8),
        "replaced {took:?} after the cut: {replacement}"
    );

    net.heal(index_of(&victim));
    let settled = wait_until(
        "exactly 2 instances after the heal",
        Duration::from_secs(30),
        || {
            let now = instances(&c);
            (host_states(&c)[&victim] == "ready"
                && now.len() == 2
                && now.values().all(|v| v.3 == "running"))
            .then_some(now)
        },
    );
    let kept_original = settled.contains_key(&victim_id);
    let kept_replacement = settled.contains_key(replacement["id"].as_str().unwrap_or_default());
    assert!(
        kept_original != kept_replacement,
        "exactly one of the pair stays: {settled:?}"
    );
    let ev = events(&follower);
    assert!(
        ev.contains("kept original") || ev.contains("kept replacement"),
        "{ev}"
    );
}

/// Every instance's (id, host, since_ms, restarts) stays through `outage`,
/// and no host is ever shown `down`.
fn nothing_changes_through(
    c: &Cluster,
    net: &TestNet,
    follower: &Proc,
    outage: impl FnOnce(&Cluster, &TestNet),
) {
    let before = instances(c);
    outage(c, net);
    wait_until("every host heard again", Duration::from_secs(30), || {
        let states = host_states(c);
        (states.len() == 3 && states.values().all(|s| s == "ready")).then_some(())
    });
    let after = wait_until("every instance confirmed", Duration::from_secs(15), || {
        let now = instances(c);
        now.values().all(|v| v.3 == "running").then_some(now)
    });
    assert_eq!(after, before, "no restart, no move, no new id");
    let ev = events(follower);
    assert!(!ev.contains("replaced") && !ev.contains(": lost"), "{ev}");
}

#[test]
fn every_host_cut_off_stops_nothing() {
    let net = TestNet::new(80, 3);
    let c = fleet(&net);
    let follower = c.follow_events();
    deploy_web(&c, free_port(), 3, "{lost_after: 0s}");
    nothing_changes_through(&c, &net, &follower, |c, net| {
        (0..3).for_each(|i| net.cut(i));
        std::thread::sleep(Duration::from_secs(15));
        let states = host_states(c);
        assert!(
            states.values().all(|s| s == "disconnected"),
            "held, not down: {states:?}"
        );
        assert!(events(&follower).contains("mass loss: holding"));
        (0..3).for_each(|i| net.heal(i));
    });
}

#[test]
fn nats_stopped_and_started_again_stops_nothing() {
    let net = TestNet::new(81, 3);
    let mut c = fleet(&net);
    deploy_web(&c, free_port(), 3, "{lost_after: 0s}");
    let before = instances(&c);
    c.nats.take();
    std::thread::sleep(Duration::from_secs(15));
    c.start_nats();
    wait_until("every host heard again", Duration::from_secs(40), || {
        let states = host_states(&c);
        (states.len() == 3 && states.values().all(|s| s == "ready")).then_some(())
    });
    let after = wait_until("every instance confirmed", Duration::from_secs(15), || {
        let now = instances(&c);
        now.values().all(|v| v.3 == "running").then_some(now)
    });
    assert_eq!(after, before, "no restart, no move, no new id");
}
