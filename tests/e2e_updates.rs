//! Rolling updates without downtime: under constant load (50 clients
//! over two hosts' published ports), a new version of a 4-replica
//! component service and of a 3-replica container service replaces the
//! old one with no failed request, and the answers switch from v1 to v2.
//! A v2 that fails its health check is rolled back by itself, with no
//! failed request either. A container whose health check turns unhealthy
//! leaves the endpoints and is restarted.

#[path = "containers/cleanup.rs"]
mod cleanup;
mod common;
// Shared with the container tests, which use all of them.
#[allow(dead_code)]
#[path = "containers/image.rs"]
mod image;
#[allow(dead_code)]
#[path = "containers/registry.rs"]
mod registry;
#[allow(dead_code)]
#[path = "containers/setup.rs"]
mod setup;

use common::load::Load;
use common::*;
use setup::{cluster_with_image, start_container_host};
use std::time::Duration;

const CLIENTS: usize = 50;

/// `(v1)` / `(v2)` at the end of the hello component's answer.
fn hello_version(body: &str) -> String {
    match body.trim_end().rsplit_once(" (") {
        Some((_, v)) => v.trim_end_matches(')').to_string(),
        None => "none".into(),
    }
}

fn hello_compose(port: u16, version: &str, unhealthy: bool) -> String {
    let sick = if unhealthy {
        "\n      UNHEALTHY: \"1\""
    } else {
        ""
    };
    format!(
        "name: roll
services:
  web:
    x-atoll:
      component: {wasm}
      health: {{ http: /health, interval: 200ms, timeout: 1s, retries: 2 }}
    ports: [\"{port}:80\"]
    environment:
      VERSION: {version}{sick}
    deploy:
      replicas: 4
",
        wasm = sample_wasm("hello").display()
    )
}

/// Waits until every client got answers for a while, so that the update
/// runs under load.
fn warm_up(load: &Load) {
    let base = load.ok();
    wait_until("the load to get going", Duration::from_secs(10), || {
        (load.ok() > base + 200).then_some(())
    });
}

/// Keeps the load on until `n` requests were answered in all.
fn until_answered(load: &Load, n: u64) {
    wait_until(&format!("{n} answers"), Duration::from_secs(60), || {
        (load.ok() >= n).then_some(())
    });
}

/// Deploys `file` (v2) while `CLIENTS` clients send `GET path` over `addrs`
/// until `answers` were answered; checks that no request failed, that v1
/// answered at first and every client was on v2 at the end; what they saw.
fn update_under_load(
    c: &Cluster,
    file: &std::path::Path,
    addrs: &[String],
    path: &str,
    classify: fn(&str) -> String,
    answers: u64,
) -> common::load::Seen {
    let load = Load::start(addrs, path, CLIENTS, classify);
    warm_up(&load);
    c.deploy_wait(file);
    warm_up(&load);
    until_answered(&load, answers);
    // The update is done when the old instances are stopped; a gateway
    // may still route to one while it drains (its table follows NATS, which
    // lags under load; the old instance answers correctly). Within a
    // bounded time v1 stops answering: 300 answers and 2 s without it.
    let (mut v1, mut since, mut at) = (load.count("v1"), load.ok(), std::time::Instant::now());
    wait_until("v1 to stop answering", Duration::from_secs(30), || {
        if load.count("v1") != v1 {
            (v1, since, at) = (load.count("v1"), load.ok(), std::time::Instant::now());
        }
        (load.ok() >= since + 300 && at.elapsed() >= Duration::from_secs(2)).then_some(())
    });
    let seen = load.finish();
    assert_eq!(
        seen.failed, 0,
        "failed requests during the update: {:?}",
        seen.failures
    );
    assert!(seen.kinds.get("v1").is_some_and(|&n| n > 0), "{seen:?}");
    assert!(
        seen.last.iter().all(|v| v == "v2"),
        "all on v2 at the end: {seen:?}"
    );
    seen
}

/// `host:port` of `port` on each host.
fn published(hosts: &[&str], port: u16) -> Vec<String> {
    hosts.iter().map(|h| format!("{h}:{port}")).collect()
}

/// Whether every instance in `rows` runs `revision` and is ready.
fn all_ready_at(rows: &[serde_json::Value], revision: u64) -> bool {
    (rows.iter()).all(|r| r["revision"] == revision && r["ready"] == true)
}

#[test]
fn a_component_service_is_updated_and_a_failing_update_rolled_back_without_a_failed_request() {
    let mut c = Cluster::start();
    c.start_host("h1", "127.0.8.2", &[]);
    c.start_host("h2", "127.0.8.3", &[]);
    let port = free_port();
    let v1 = c.compose("roll.yaml", &hello_compose(port, "v1", false));
    c.deploy_wait(&v1);
    let addrs = published(&["127.0.8.2", "127.0.8.3"], port);

    // v1 → v2 under load.
    let v2 = c.compose("roll.yaml", &hello_compose(port, "v2", false));
    let seen = update_under_load(&c, &v2, &addrs, "/", hello_version, 3000);
    assert!(seen.ok > 2000, "several thousand requests: {seen:?}");
    assert!(seen.kinds.get("v2").is_some_and(|&n| n > 0), "{seen:?}");
    let rows = c.instances("roll");
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(all_ready_at(&rows, 2), "{rows:?}");

    // A v3 whose health check fails: the update stops at its first new
    // instance and rolls back by itself; nothing fails meanwhile.
    let load = Load::start(&addrs, "/", CLIENTS, hello_version);
    warm_up(&load);
    let bad = c.compose("roll.yaml", &hello_compose(port, "v3", true));
    let out = c.deploy(&bad);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "a rolled-back update fails deploy --wait: {said}"
    );
    let app = wait_until("the rollback to finish", Duration::from_secs(30), || {
        let app = c.json(&["ls", "-o", "json"]);
        let app = app.as_array()?.first()?.clone();
        let rows = c.instances("roll");
        let back = rows.len() == 4 && all_ready_at(&rows, 2) && app["status"] == "running";
        back.then_some(app)
    });
    warm_up(&load);
    let seen = load.finish();
    assert_eq!(
        seen.failed, 0,
        "failed requests during the rollback: {:?}",
        seen.failures
    );
    assert_eq!(
        seen.kinds.get("v3"),
        None,
        "no request reached the unhealthy v3: {seen:?}"
    );
    assert!(seen.last.iter().all(|v| v == "v2"), "{seen:?}");
    let update = app["update"].as_str().unwrap_or_default();
    assert!(
        update.contains("rolled back") && update.contains("GET /health answered 500"),
        "the status says what happened and why: {app}"
    );
    assert_eq!(
        app["revision"], 4,
        "the rollback is a revision of its own: {app}"
    );
    let out = c.atoll(&["ps", "roll"]);
    let ps = String::from_utf8_lossy(&out.stdout);
    assert!(ps.contains("running (healthy)"), "{ps}");

    // The history shows every revision; going back to v1 by hand is a
    // rolling update like any other.
    let history = c.json(&["history", "roll", "-o", "json"]);
    let revisions: Vec<u64> = (history.as_array().into_iter().flatten())
        .filter_map(|r| r["revision"].as_u64())
        .collect();
    assert_eq!(revisions, [1, 2, 3, 4], "{history}");
    assert_eq!(history[3]["rollback_of"], 3, "{history}");
    let load = Load::start(&addrs, "/", CLIENTS, hello_version);
    warm_up(&load);
    c.atoll_ok(&["rollback", "roll/web", "--to", "1", "--wait"]);
    warm_up(&load);
    let seen = load.finish();
    assert_eq!(seen.failed, 0, "{:?}", seen.failures);
    assert!(seen.last.iter().all(|v| v == "v1"), "{seen:?}");
}

#[test]
fn a_container_service_is_updated_without_a_failed_request() {
    let (mut dirs, mut c, registry) = cluster_with_image("web\n");
    let reg = registry.host.clone();
    let (d1, d2) = (dirs.data("h1"), dirs.data("h2"));
    start_container_host(&mut c, "h1", "127.0.8.4", &d1, &reg, "10.89.220.0/24", &[]);
    start_container_host(&mut c, "h2", "127.0.8.5", &d2, &reg, "10.89.221.0/24", &[]);
    let port = free_port();
    let compose = |version: &str| {
        format!(
            "name: boxes
services:
  web:
    image: {reg}/web:1
    ports: [\"{port}:8080\"]
    environment:
      VERSION: {version}
    stop_grace_period: 1s
    x-atoll:
      health: {{ http: /index.html, interval: 200ms, timeout: 1s, retries: 2, start_period: 5s }}
    deploy:
      replicas: 3
"
        )
    };
    let v1 = c.compose("boxes.yaml", &compose("v1"));
    c.deploy_wait(&v1);
    let addrs = published(&["127.0.8.4", "127.0.8.5"], port);
    let v2 = c.compose("boxes.yaml", &compose("v2"));
    let seen = update_under_load(
        &c,
        &v2,
        &addrs,
        "/cgi-bin/version",
        |b| b.trim().to_string(),
        2000,
    );
    assert!(seen.ok > 1000, "{seen:?}");
    let rows = c.instances("boxes");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(all_ready_at(&rows, 2), "{rows:?}");
    drop(registry);
}

#[test]
fn a_container_that_turns_unhealthy_leaves_the_endpoints_and_is_restarted() {
    let (mut dirs, mut c, registry) = cluster_with_image("web\n");
    let reg = registry.host.clone();
    let data = dirs.data("h3");
    start_container_host(
        &mut c,
        "h3",
        "127.0.8.6",
        &data,
        &reg,
        "10.89.222.0/24",
        &[],
    );
    let port = free_port();
    let file = c.compose(
        "sick.yaml",
        &format!(
            "name: sick
services:
  web:
    image: {reg}/web:1
    entrypoint: [/bin/sh, -c, \"touch /tmp/healthy && exec /bin/httpd -f -vv -p 8080 -h /www\"]
    ports: [\"{port}:8080\"]
    stop_grace_period: 1s
    healthcheck:
      test: [CMD, test, -f, /tmp/healthy]
      interval: 300ms
      timeout: 2s
      retries: 2
    deploy:
      replicas: 2
"
        ),
    );
    c.deploy_wait(&file);
    let rows = c.instances("sick");
    assert!(rows.iter().all(|r| r["health"] == "healthy"), "{rows:?}");
    let victim = rows[0]["id"].as_str().unwrap_or_default().to_string();
    let other = rows[1]["id"].as_str().unwrap_or_default().to_string();
    let addr = format!("127.0.8.6:{port}");
    let load = Load::start(std::slice::from_ref(&addr), "/cgi-bin/whoami", 10, |b| {
        b.trim().to_string()
    });
    warm_up(&load);

    // The file its check looks for goes: it turns unhealthy, no request
    // reaches it any more, and it is restarted (healthy again).
    let healthy = data
        .join("containers")
        .join(&victim)
        .join("rootfs/tmp/healthy");
    std::fs::remove_file(&healthy).expect("remove the file the check looks for");
    wait_until(
        "the victim to be restarted",
        Duration::from_secs(30),
        || {
            let rows = c.instances("sick");
            let row = rows.iter().find(|r| r["id"] == victim.as_str())?;
            (row["restarts"].as_u64() >= Some(1) && row["health"] == "healthy").then_some(())
        },
    );
    let seen = load.finish();
    assert_eq!(seen.failed, 0, "{:?}", seen.failures);
    assert!(seen.kinds.contains_key(&other), "{seen:?}");
    let out = c.atoll(&["ps", "sick"]);
    let ps = String::from_utf8_lossy(&out.stdout);
    assert!(
        ps.contains("unhealthy: test -f /tmp/healthy failed"),
        "the last restart's reason: {ps}"
    );

    // A readiness-only check (`liveness: false`): the unhealthy instance
    // stays up, and from the moment it is marked unhealthy no request
    // reaches it; once it passes again it takes requests again. While it
    // is out, the other replica takes all ten clients on a busybox httpd
    // that forks a CGI per request: one slow check must not take it out
    // too, hence three failures in a row (Docker's default).
    let port = free_port();
    let file = c.compose(
        "ready.yaml",
        &format!(
            "name: ready
services:
  web:
    image: {reg}/web:1
    entrypoint: [/bin/sh, -c, \"touch /tmp/healthy && exec /bin/httpd -f -vv -p 8080 -h /www\"]
    ports: [\"{port}:8080\"]
    stop_grace_period: 1s
    x-atoll:
      health: {{ http: /cgi-bin/health, interval: 200ms, timeout: 2s, retries: 3, liveness: false }}
    deploy:
      replicas: 2
"
        ),
    );
    c.deploy_wait(&file);
    let rows = c.instances("ready");
    let victim = rows[0]["id"].as_str().unwrap_or_default().to_string();
    let addr = format!("127.0.8.6:{port}");
    let load = Load::start(std::slice::from_ref(&addr), "/cgi-bin/whoami", 10, |b| {
        b.trim().to_string()
    });
    wait_until("both replicas to answer", Duration::from_secs(10), || {
        (load.count(&victim) > 50).then_some(())
    });
    let healthy = data
        .join("containers")
        .join(&victim)
        .join("rootfs/tmp/healthy");
    std::fs::remove_file(&healthy).expect("remove the file the check looks for");
    wait_until(
        "the victim to be marked unhealthy",
        Duration::from_secs(10),
        || {
            let rows = c.instances("ready");
            let row = rows.iter().find(|r| r["id"] == victim.as_str())?;
            (row["health"] == "unhealthy").then_some(())
        },
    );
    // Requests already in flight at the mark may still be answered by it
    // (one slow CGI fork can outlast a hundred answers of the other):
    // count once every client has sent a request after the mark.
    load.settle(Duration::from_secs(10));
    let at_mark = load.count(&victim);
    let base = load.ok();
    wait_until("more answers", Duration::from_secs(10), || {
        (load.ok() > base + 500).then_some(())
    });
    assert_eq!(
        load.count(&victim),
        at_mark,
        "no request reached it once marked unhealthy"
    );
    std::fs::write(&healthy, b"").expect("put the file back");
    wait_until(
        "the victim to take requests again",
        Duration::from_secs(10),
        || (load.count(&victim) > at_mark).then_some(()),
    );
    let seen = load.finish();
    assert_eq!(seen.failed, 0, "{:?}", seen.failures);
    let rows = c.instances("ready");
    let row = rows
        .iter()
        .find(|r| r["id"] == victim.as_str())
        .expect("victim");
    assert_eq!(row["restarts"], 0, "readiness only: never restarted: {row}");
    drop(registry);
}

/// `ok` is the faulty sample's answer (the canary here); the rest are
/// hello's versions.
fn canary_or_version(body: &str) -> String {
    if body.trim() == "ok" {
        "canary".into()
    } else {
        hello_version(body)
    }
}

/// A GET with `x-atoll-version: canary`: (status, body).
fn pinned_get(addr: &str) -> (u16, String) {
    http_get_with(addr, "/", &[("x-atoll-version", "canary")]).expect("GET")
}

#[test]
fn a_canary_gets_its_weight_a_pinned_tester_and_all_traffic_once_promoted() {
    let mut c = Cluster::start();
    c.start_host("h1", "127.0.8.7", &[]);
    c.start_host("h2", "127.0.8.8", &[]);
    let port = free_port();
    let file = c.compose(
        "canary.yaml",
        &format!(
            "name: bird
services:
  web:
    x-atoll:
      component: {hello}
      canary: {{ component: {faulty}, weight: 20 }}
    ports: [\"{port}:80\"]
    environment:
      VERSION: v1
    deploy:
      replicas: 4
",
            hello = sample_wasm("hello").display(),
            faulty = sample_wasm("faulty").display(),
        ),
    );
    c.deploy_wait(&file);
    let ready_canaries = |c: &Cluster| {
        (c.instances("bird").iter())
            .filter(|r| r["canary"] == true && r["ready"] == true)
            .count()
    };
    wait_until("the canary to be ready", Duration::from_secs(15), || {
        (ready_canaries(&c) == 1).then_some(())
    });
    let addrs = published(&["127.0.8.7", "127.0.8.8"], port);

    // 20% of the traffic, through either host.
    let load = Load::start(&addrs, "/", 10, canary_or_version);
    until_answered(&load, 2000);
    let seen = load.finish();
    assert_eq!(seen.failed, 0, "{:?}", seen.failures);
    let share = seen.kinds.get("canary").copied().unwrap_or(0) as f64 / seen.ok as f64;
    assert!(
        (0.15..=0.25).contains(&share),
        "the canary got {:.1}% of {} requests: {:?}",
        share * 100.0,
        seen.ok,
        seen.kinds
    );
    // A tester pins requests to it.
    for addr in &addrs {
        for _ in 0..20 {
            let (status, body) = pinned_get(addr);
            assert_eq!(status, 200, "{body}");
            assert!(body.contains("ok\n") && !body.contains("hello"), "{body}");
        }
    }

    // Promoted: the canary's version replaces the old one, without a
    // failed request, and then gets every request.
    let load = Load::start(&addrs, "/", CLIENTS, canary_or_version);
    warm_up(&load);
    c.atoll_ok(&["promote", "bird/web", "--wait"]);
    warm_up(&load);
    let seen = load.finish();
    assert_eq!(seen.failed, 0, "{:?}", seen.failures);
    assert!(seen.last.iter().all(|v| v == "canary"), "{seen:?}");
    let rows = c.instances("bird");
    assert_eq!(
        rows.len(),
        4,
        "the canary went with the promotion: {rows:?}"
    );
    assert!(
        rows.iter()
            .all(|r| r["canary"] == false && r["ready"] == true),
        "{rows:?}"
    );
    let load = Load::start(&addrs, "/", 10, canary_or_version);
    until_answered(&load, 500);
    let seen = load.finish();
    assert_eq!(
        seen.kinds.keys().collect::<Vec<_>>(),
        ["canary"],
        "{seen:?}"
    );

    // A new canary, dropped by `atoll rollback APP/SERVICE`.
    c.deploy_wait(&file);
    wait_until(
        "the new canary to be ready",
        Duration::from_secs(15),
        || (ready_canaries(&c) == 1).then_some(()),
    );
    c.atoll_ok(&["rollback", "bird/web", "--wait"]);
    wait_until("the canary to go", Duration::from_secs(15), || {
        let rows = c.instances("bird");
        (rows.len() == 4 && rows.iter().all(|r| r["canary"] == false)).then_some(())
    });
}

/// hello with a liveness check polled every 200 ms, `env` lines added to
/// its environment, `replicas` of it, watched for 30 s after an update.
fn watched_hello(port: u16, replicas: u32, env: &str) -> String {
    format!(
        "name: watch
services:
  web:
    x-atoll:
      component: {wasm}
      health: {{ http: /health, interval: 200ms, timeout: 1s, retries: 1 }}
    ports: [\"{port}:80\"]
    environment:
{env}
    deploy:
      replicas: {replicas}
      update_config:
        monitor: 30s
",
        wasm = sample_wasm("hello").display()
    )
}

fn now_ms() -> u128 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_millis())
}

#[test]
fn an_update_whose_instances_fail_within_monitor_is_rolled_back_after_it_finished() {
    let mut c = Cluster::start();
    c.start_host("h1", "127.0.8.9", &[]);
    c.start_host("h2", "127.0.8.10", &[]);
    let port = free_port();
    let v1 = c.compose("w.yaml", &watched_hello(port, 2, "      VERSION: v1"));
    c.deploy_wait(&v1);
    // v2 passes its checks for 8 s, then fails them: the update itself
    // finishes well before that.
    let sick_at = now_ms() + 8_000;
    let env = format!("      VERSION: v2\n      UNHEALTHY_AFTER: \"{sick_at}\"");
    let v2 = c.compose("w.yaml", &watched_hello(port, 2, &env));
    c.deploy_wait(&v2);
    assert!(
        now_ms() < sick_at,
        "the update took longer than the time v2 stays healthy"
    );
    let rows = c.instances("watch");
    assert!(all_ready_at(&rows, 2), "v2 everywhere first: {rows:?}");
    let app = wait_until(
        "the rollback after monitor",
        Duration::from_secs(40),
        || {
            let app = c.json(&["ls", "-o", "json"]);
            let app = app.as_array()?.first()?.clone();
            let rows = c.instances("watch");
            let back = app["revision"] == 3
                && app["status"] == "running"
                && rows.len() == 2
                && all_ready_at(&rows, 3);
            back.then_some(app)
        },
    );
    let update = app["update"].as_str().unwrap_or_default();
    assert!(
        update.contains("rolled back") && update.contains("within monitor"),
        "the status says it failed after the update: {app}"
    );
    let (_, body) = http_get(&format!("127.0.8.9:{port}"), "/").expect("GET");
    assert_eq!(hello_version(&body), "v1", "{body}");
}

#[test]
fn an_instance_that_keeps_failing_its_liveness_check_moves_to_another_host() {
    let mut c = Cluster::start();
    let events = c.follow_events();
    c.start_host("h1", "127.0.8.11", &[]);
    events.wait_for_event("host-up", "host h1", Duration::from_secs(10));
    c.start_host("h2", "127.0.8.12", &[]);
    let port = free_port();
    let file = c.compose("w.yaml", &watched_hello(port, 1, "      UNHEALTHY: \"1\""));
    // Never ready: no --wait.
    c.atoll_ok(&["deploy", "-f", &file.to_string_lossy()]);
    let first = wait_until("the first instance", Duration::from_secs(10), || {
        c.instances("watch").first().cloned()
    });
    let (first_id, first_host) = (first["id"].clone(), first["host"].clone());
    let other = if first_host == "h1" { "h2" } else { "h1" };
    // Restarted in place three times, then given up on by its host and
    // placed on the other one.
    let moved = wait_until("a replacement elsewhere", Duration::from_secs(30), || {
        let rows = c.instances("watch");
        (rows.iter())
            .find(|r| r["host"] == other && r["attempt"] == 1)
            .cloned()
    });
    assert_ne!(moved["id"], first_id);
    let rows = c.instances("watch");
    assert_eq!(rows.len(), 1, "replaced, not added: {rows:?}");
    let host = first_host.as_str().unwrap_or_default();
    let id = first_id.as_str().unwrap_or_default();
    let e = events.wait_for_event("reschedule", id, Duration::from_secs(5));
    let msg = e["message"].as_str().unwrap_or_default();
    assert!(msg.contains(&format!("failed for good on {host}")), "{e}");
    events.wait_for_event(
        "place",
        "replacement 1 of a failed instance",
        Duration::from_secs(5),
    );
}
