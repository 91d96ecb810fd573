//! Two hosts on distinct loopback addresses: instances spread over both,
//! every instance reachable through either host's published port, and a
//! host killed with -9 has its replicas re-placed on the survivor.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn hello_compose(c: &Cluster, port: u16) -> std::path::PathBuf {
    let wasm = sample_wasm("hello");
    c.compose(
        "hello.yaml",
        &format!(
            "name: hello\nservices:\n  hello:\n    x-atoll:\n      component: {}\n    ports:\n      - \"{port}:80\"\n    deploy:\n      replicas: 4\n",
            wasm.display()
        ),
    )
}

#[test]
fn replicas_spread_serve_from_every_host_and_survive_a_host_kill() {
    let mut c = Cluster::start();
    c.start_host("h1", "127.0.1.2", &[]);
    c.start_host("h2", "127.0.1.3", &[]);
    let port = free_port();
    let file = hello_compose(&c, port);
    c.deploy_wait(&file);

    let running = c.running("hello");
    assert_eq!(running.len(), 4, "4 replicas run: {running:?}");
    let hosts: BTreeSet<&str> = running.iter().map(|(_, h)| h.as_str()).collect();
    assert_eq!(
        hosts,
        BTreeSet::from(["h1", "h2"]),
        "both hosts run instances"
    );

    // Every host's gateway reaches every instance, wherever it runs.
    let ids: BTreeSet<String> = running.iter().map(|(id, _)| id.clone()).collect();
    // `deploy --wait` returns once every instance runs; each gateway
    // routes to the other host's instances once its table has them (a
    // moment later): every answer is 200 meanwhile, and within 2,000
    // requests each host's gateway has reached every instance.
    for bind in ["127.0.1.2", "127.0.1.3"] {
        let mut seen = BTreeSet::new();
        let mut i = 0;
        while seen != ids && i < 2000 {
            let (status, body) = http_get(&format!("{bind}:{port}"), "/")
                .unwrap_or_else(|e| panic!("request {i} via {bind}: {e}"));
            assert_eq!(status, 200, "request {i} via {bind}: {body}");
            let id = ids
                .iter()
                .find(|id| body.contains(id.as_str()))
                .unwrap_or_else(|| panic!("answer names no instance: {body}"));
            seen.insert(id.clone());
            i += 1;
        }
        assert_eq!(seen, ids, "{i} requests via {bind} reached every instance");
    }

    // Kill h1 as a crash would; the survivor takes all 4 replicas.
    c.host("h1").kill9();
    let killed = Instant::now();
    let mut failures = 0;
    let mut requests = 0;
    let moved = loop {
        requests += 1;
        match http_get(&format!("127.0.1.3:{port}"), "/") {
            Ok((200, _)) => {}
            _ => failures += 1,
        }
        let r = c.running("hello");
        if r.len() == 4 && r.iter().all(|(_, h)| h == "h2") {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "replicas not re-placed: {r:?}"
        );
    };
    println!(
        "re-placed 4 replicas on h2 in {moved:?} ({requests} requests, {failures} failed meanwhile)"
    );
    assert!(
        moved <= Duration::from_secs(5),
        "re-placement took {moved:?}"
    );
    assert_eq!(
        failures, 0,
        "requests through the survivor failed during failover"
    );

    let hosts = c.json(&["hosts", "-o", "json"]);
    let h1 = hosts
        .as_array()
        .and_then(|a| a.iter().find(|h| h["name"] == "h1"))
        .cloned();
    assert_eq!(
        h1.map(|h| h["state"].clone()),
        Some("down".into()),
        "h1 is marked down"
    );

    for i in 0..100 {
        let (status, body) =
            http_get(&format!("127.0.1.3:{port}"), "/").expect("request after failover");
        assert_eq!(status, 200, "request {i} after failover: {body}");
    }
}

#[test]
fn a_server_restart_keeps_desired_state_and_restarts_nothing() {
    let mut c = Cluster::start();
    c.start_host("h1", "127.0.2.2", &[]);
    let port = free_port();
    let file = hello_compose(&c, port);
    c.deploy_wait(&file);
    let before = c.instances("hello");
    assert_eq!(before.len(), 4);

    c.server.as_mut().map(Proc::kill9);
    c.start_server();
    // Give the new server time to hear heartbeats and reconcile.
    let after = wait_until(
        "the restarted server to report 4 running instances",
        Duration::from_secs(15),
        || {
            let r = c.instances("hello");
            (r.iter().filter(|i| i["state"] == "running").count() == 4).then_some(r)
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    let settled = c.instances("hello");
    for (b, a) in before.iter().zip(&settled) {
        assert_eq!(b["id"], a["id"], "instance replaced after restart");
        assert_eq!(
            b["since_ms"], a["since_ms"],
            "instance {} restarted",
            b["id"]
        );
    }
    assert_eq!(after.len(), 4);
    let (status, _) = http_get(&format!("127.0.2.2:{port}"), "/").expect("request");
    assert_eq!(status, 200);
    let apps = c.json(&["ls", "-o", "json"]);
    assert_eq!(apps[0]["name"], "hello");
    assert_eq!(apps[0]["revision"], 1);
    assert_eq!(apps[0]["status"], "running");
}
