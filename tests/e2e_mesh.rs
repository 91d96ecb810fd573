//! Calls by service name between components on two hosts: balanced over
//! the callee's instances wherever they run, and failing clearly — an
//! unknown name, a callee that hangs, a value too large for the store —
//! without disturbing the rest.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[test]
fn service_calls_balance_across_hosts_and_fail_clearly() {
    let mut c = Cluster::start();
    c.start_host("m1", "127.0.9.2", &[]);
    c.start_host("m2", "127.0.9.3", &[]);
    let port = free_port();
    let file = c.compose(
        "mesh.yaml",
        &format!(
            "name: mesh
services:
  front:
    x-atoll:
      component: {front}
    ports: [\"{port}:80\"]
    deploy:
      placement:
        constraints: [node.hostname == m1]
  hello:
    x-atoll:
      component: {hello}
    deploy:
      replicas: 3
  slow:
    x-atoll:
      component: {faulty}
      timeout: 1s
  data:
    x-atoll:
      component: {data}
",
            front = sample_wasm("three_tier_front").display(),
            hello = sample_wasm("hello").display(),
            faulty = sample_wasm("faulty").display(),
            data = sample_wasm("three_tier_data").display(),
        ),
    );
    c.deploy_wait(&file);
    let front = format!("127.0.9.2:{port}");
    let hello: Vec<(String, String)> = c
        .running("mesh")
        .into_iter()
        .filter(|(id, _)| id.starts_with("mesh-hello-"))
        .collect();
    assert_eq!(hello.len(), 3);
    let hosts: std::collections::BTreeSet<&str> = hello.iter().map(|(_, h)| h.as_str()).collect();
    assert_eq!(hosts.len(), 2, "the callee runs on both hosts: {hello:?}");

    // An unknown name: 502, naming it.
    let (status, body) = http_request(&front, "GET", "/svc/nope/", b"");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("no service \"nope\""), "{body}");

    // A callee that hangs: 504 after its 1 s timeout, not the caller's 30 s.
    let started = Instant::now();
    let (status, body) = http_request(&front, "GET", "/svc/slow/loop", b"");
    assert_eq!(status, 504, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // A value over the store's limit: refused, saying so.
    let big = vec![b'x'; 1_200_000];
    let (status, body) = http_request(&front, "PUT", "/svc/data/items/big", &big);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("over the limit of 1048576 bytes"), "{body}");
    let (status, body) = http_request(&front, "PUT", "/svc/data/items/small", b"{\"ok\":1}");
    assert_eq!(status, 201, "a value under the limit is kept: {body}");

    // The rest keeps serving, and 1,000 calls spread over the 3 callee
    // instances on both hosts: each gets 25% to 40%.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..1000 {
        let (status, body) = http_request(&front, "GET", "/svc/hello/", b"");
        assert_eq!(status, 200, "{body}");
        let id = body
            .strip_prefix("hello from ")
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected answer: {body}"))
            .to_string();
        *counts.entry(id).or_default() += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    for (id, n) in &counts {
        assert!((250..=400).contains(n), "{id} got {n} of 1000: {counts:?}");
    }
}
