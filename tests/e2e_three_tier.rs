//! The three-tier sample on four hosts, each in its own network namespace
//! with its own address: items created, read, updated and deleted through
//! the front end on any host, the tiers calling each other by service
//! name across hosts; the API's host killed and the API re-placed with
//! the items intact; everything (NATS included) stopped and started again
//! with the items still there.

mod common;
#[path = "mesh/net.rs"]
mod net;

use common::*;
use net::TestNet;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// [`http_request`] with a text body.
fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    http_request(addr, method, path, body.as_bytes())
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn names(items: &Value) -> BTreeSet<String> {
    items
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|i| i["name"].as_str().map(str::to_string))
        .collect()
}

fn start_hosts(c: &mut Cluster, net: &TestNet, which: &[usize]) {
    const TIERS: [&str; 4] = ["front", "api", "data", "api"];
    for &i in which {
        let name = format!("h{}", i + 1);
        let data = c.dir.path().join(format!("host-{name}"));
        let label = format!("tier={}", TIERS[i]);
        let ns = net.namespaces[i].clone();
        let bind = net.addresses[i].clone();
        c.start_host_in(Some(&ns), &name, &bind, &data, &["--label", &label]);
    }
}

#[test]
fn three_tiers_on_separate_hosts_keep_their_items_through_host_loss_and_full_restart() {
    let net = TestNet::new(77, 4);
    let mut c = Cluster::start_at(&net.gateway);
    start_hosts(&mut c, &net, &[0, 1, 2, 3]);
    let compose = repo().join("samples/three-tier/compose.yaml");
    c.deploy_wait(&compose);
    let front = |i: usize| format!("{}:8080", net.addresses[i]);

    // The tiers run where their labels say, and call across hosts.
    let who = json(&request(&front(3), "GET", "/api/whoami", "").1);
    assert_eq!(who["front"]["host"], "h1", "{who}");
    assert!(
        who["api"]["host"] == "h2" || who["api"]["host"] == "h4",
        "{who}"
    );
    assert_eq!(who["data"]["host"], "h3", "{who}");

    // CRUD through the front end, each step through another host.
    let (status, created) = request(&front(0), "POST", "/api/items", r#"{"name":"tea"}"#);
    assert_eq!(status, 201, "{created}");
    let id = json(&created)["id"].as_str().expect("an id").to_string();
    let (status, got) = request(&front(1), "GET", &format!("/api/items/{id}"), "");
    assert_eq!((status, json(&got)["name"].clone()), (200, "tea".into()));
    let (status, _) = request(
        &front(2),
        "PUT",
        &format!("/api/items/{id}"),
        r#"{"name":"green tea"}"#,
    );
    assert_eq!(status, 200);
    let (_, got) = request(&front(3), "GET", &format!("/api/items/{id}"), "");
    assert_eq!(json(&got)["name"], "green tea");
    let (status, _) = request(&front(0), "DELETE", &format!("/api/items/{id}"), "");
    assert_eq!(status, 204);
    let (status, _) = request(&front(1), "GET", &format!("/api/items/{id}"), "");
    assert_eq!(status, 404, "deleted");
    for name in ["bread", "milk", "honey"] {
        let (status, body) = request(
            &front(2),
            "POST",
            "/api/items",
            &format!(r#"{{"name":"{name}"}}"#),
        );
        assert_eq!(status, 201, "{body}");
    }
    let expected: BTreeSet<String> = ["bread", "honey", "milk"].map(String::from).into();
    assert_eq!(
        names(&json(&request(&front(0), "GET", "/api/items", "").1)),
        expected
    );

    // The API's first host dies: its replica moves to the other API host,
    // and the items are all there.
    c.host("h2").kill9();
    wait_until("the API to run on h4 only", Duration::from_secs(20), || {
        let api: Vec<(String, String)> = c
            .instances("three-tier")
            .iter()
            .filter(|i| i["service"] == "api" && i["state"] == "running")
            .map(|i| {
                (
                    i["id"].to_string(),
                    i["host"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        (api.len() == 2 && api.iter().all(|(_, h)| h == "h4")).then_some(())
    });
    let items = wait_until(
        "the items through the surviving hosts",
        Duration::from_secs(10),
        || {
            let (status, body) = request(&front(0), "GET", "/api/items", "");
            (status == 200).then(|| json(&body))
        },
    );
    assert_eq!(names(&items), expected);

    // Everything stops, NATS included; everything starts again on the
    // same data dirs: the items are still there.
    for (_, h) in c.hosts.iter_mut() {
        h.kill9();
    }
    if let Some(s) = c.server.as_mut() {
        s.kill9();
    }
    if let Some(n) = c.nats.as_mut() {
        n.kill9();
    }
    c.hosts.clear();
    c.start_nats();
    c.start_server();
    start_hosts(&mut c, &net, &[0, 1, 2, 3]);
    let items = wait_until(
        "the app to serve its items again",
        Duration::from_secs(30),
        || {
            let (status, body) =
                std::panic::catch_unwind(|| request(&front(0), "GET", "/api/items", "")).ok()?;
            (status == 200).then(|| json(&body))
        },
    );
    assert_eq!(names(&items), expected);
}
