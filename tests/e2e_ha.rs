//! The control plane on a NATS cluster: three routed nats-servers, two
//! `atoll server`s, two hosts and a 4-replica component under constant
//! load. A leader killed with -9 is replaced within the lease's TTL, a
//! leader paused past its lease is fenced (none of its writes lands after
//! the other took over), a NATS node killed with -9 loses nothing
//! acknowledged and rejoins, and a single NATS restarted under load stops
//! nothing. Requests through the hosts never fail meanwhile.

mod common;
use atoll_sdk::cluster::Assignment;
use atoll_sdk::nats::testing::TestCluster;
use atoll_sdk::protocol::Names;
use common::load::Load;
use common::*;
use futures::StreamExt;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The lease's TTL (the default): a dead leader is replaced within it
/// and a second (the 5 s).
const LEASE_TTL: Duration = Duration::from_secs(4);

fn hello(c: &Cluster, port: u16, replicas: u32, version: &str) -> std::path::PathBuf {
    let wasm = sample_wasm("hello");
    c.compose(
        "hello.yaml",
        &format!(
            "name: hello
services:
  hello:
    x-atoll:
      component: {}
    environment:
      VERSION: \"{version}\"
    ports:
      - \"{port}:80\"
    deploy:
      replicas: {replicas}
",
            wasm.display()
        ),
    )
}

/// A NATS cluster of three, ready to place replicas on every node.
fn nats_cluster(rt: &tokio::runtime::Runtime) -> TestCluster {
    let nats = TestCluster::start(3);
    rt.block_on(nats.wait_ready());
    nats
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `atoll servers -o json` asked of the server at `api_port`.
/// What it answered last is printed when it changes, so a wait that
/// times out shows what the server saw instead.
fn servers(api_port: u16) -> Vec<Value> {
    static LAST: Mutex<String> = Mutex::new(String::new());
    let started = Instant::now();
    let out = std::process::Command::new(atoll_bin())
        .args(["servers", "-o", "json"])
        .env("ATOLL_SERVER", format!("http://127.0.0.1:{api_port}"))
        .output()
        .expect("run atoll servers");
    // Ages change on every call: left out of what is compared.
    let rows: Vec<Value> = serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let said = format!(
        "{:?} {}",
        (rows.iter())
            .map(|r| (&r["name"], &r["leader"], &r["epoch"]))
            .collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if *last != said {
        println!("servers on :{api_port} ({:?}): {said}", started.elapsed());
        *last = said;
    }
    rows
}

/// The leader's name and epoch, as the server at `api_port` sees them.
fn leader(api_port: u16) -> Option<(String, u64)> {
    let rows = servers(api_port);
    let lead: Vec<&Value> = rows.iter().filter(|r| r["leader"] == true).collect();
    match lead[..] {
        [row] => Some((row["name"].as_str()?.to_string(), row["epoch"].as_u64()?)),
        _ => None,
    }
}

/// Every assignment written while the test runs, in the order NATS
/// applied them: (host, epoch of the leader that wrote it).
type Written = Arc<Mutex<Vec<(String, u64)>>>;

/// Watches the assignments bucket from now on, on `rt`.
fn watch_assignments(rt: &tokio::runtime::Runtime, urls: &str) -> Written {
    let written: Written = Arc::default();
    let out = written.clone();
    let urls = atoll_sdk::nats::parse_urls(urls).expect("urls");
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = ready.clone();
    rt.spawn(async move {
        let client = atoll_sdk::nats::connect(&urls, "test-watch")
            .await
            .expect("connect");
        let js = async_nats::jetstream::new(client);
        let kv = (js
            .get_key_value(Names::new("default").assignments_bucket())
            .await)
            .expect("assignments bucket");
        let mut watch = kv.watch_all_from_revision(1).await.expect("watch");
        started.store(true, std::sync::atomic::Ordering::SeqCst);
        while let Some(Ok(entry)) = watch.next().await {
            if let Ok(a) = serde_json::from_slice::<Assignment>(&entry.value) {
                let mut w = out.lock().unwrap_or_else(|e| e.into_inner());
                w.push((a.host, a.epoch));
            }
        }
    });
    wait_until("the assignments watch", Duration::from_secs(10), || {
        ready
            .load(std::sync::atomic::Ordering::SeqCst)
            .then_some(())
    });
    written
}

/// The instances of hello, once exactly `n` run, all of revision
/// `revision`, and nothing else is left.
fn settled(c: &Cluster, n: usize, revision: u64) -> Vec<Value> {
    wait_until(
        &format!("exactly {n} instances of revision {revision}"),
        Duration::from_secs(30),
        || {
            let rows = c.instances("hello");
            (rows.len() == n
                && rows
                    .iter()
                    .all(|r| r["state"] == "running" && r["revision"] == revision))
            .then_some(rows)
        },
    )
}

/// Every host state `atoll hosts` shows during `span`, polled.
fn host_states_for(c: &Cluster, span: Duration, states: &mut std::collections::BTreeSet<String>) {
    let from = Instant::now();
    while from.elapsed() < span {
        let hosts = c.json(&["hosts", "-o", "json"]);
        for h in hosts.as_array().into_iter().flatten() {
            states.insert(h["state"].as_str().unwrap_or_default().to_string());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn two_hosts(c: &mut Cluster, prefix: &str) -> Vec<String> {
    c.start_host("h1", &format!("{prefix}.2"), &[]);
    c.start_host("h2", &format!("{prefix}.3"), &[]);
    vec![format!("{prefix}.2"), format!("{prefix}.3")]
}

/// Waits until every replica of KV bucket `bucket` is current (a node
/// that came back caught up).
async fn replicas_current(urls: &str, bucket: &str) {
    let urls = atoll_sdk::nats::parse_urls(urls).expect("urls");
    let client = (atoll_sdk::nats::connect(&urls, "test-replicas").await).expect("connect");
    let js = async_nats::jetstream::new(client);
    let started = Instant::now();
    loop {
        let info = match js.get_stream(format!("KV_{bucket}")).await {
            Ok(mut s) => s.info().await.ok().map(|i| i.cluster.clone()),
            Err(_) => None,
        };
        let replicas = info.and_then(|c| c.map(|c| c.replicas));
        if replicas
            .as_ref()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|p| p.current))
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the replicas of {bucket} did not catch up: {replicas:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_killed_leader_is_replaced_within_the_lease_and_a_paused_one_is_fenced() {
    let rt = runtime();
    let nats = nats_cluster(&rt);
    let mut c = Cluster::on_nats(&nats.urls());
    let (p1, p2) = (c.api_port, free_port());
    let mut s1 = c.spawn_server("s1", p1, &[]);
    wait_until("s1 to lead", Duration::from_secs(15), || {
        leader(p1).filter(|(n, _)| n == "s1")
    });
    let s2 = c.spawn_server("s2", p2, &[]);
    let binds = two_hosts(&mut c, "127.0.11");
    let port = free_port();
    c.deploy_wait(&hello(&c, port, 4, "1"));
    settled(&c, 4, 1);
    let addrs: Vec<String> = binds.iter().map(|b| format!("{b}:{port}")).collect();
    let load = Load::start(&addrs, "/", 8, |_| "ok".to_string());
    wait_until("load to flow", Duration::from_secs(10), || {
        (load.ok() > 100).then_some(())
    });

    // kill -9 of the leader: the other leads within the TTL (and its
    // renewal period), and takes deploys through its own API.
    let (_, first_epoch) = leader(p1).expect("a leader");
    s1.kill9();
    let killed = Instant::now();
    let (_, epoch2) = wait_until("s2 to lead", Duration::from_secs(10), || {
        leader(p2).filter(|(n, _)| n == "s2")
    });
    let takeover = killed.elapsed();
    println!("takeover after kill -9: {takeover:?}");
    assert!(
        takeover <= LEASE_TTL + Duration::from_secs(1),
        "s2 led only after {takeover:?}"
    );
    assert!(
        epoch2 > first_epoch,
        "a new epoch: {epoch2} > {first_epoch}"
    );
    c.api = format!("http://127.0.0.1:{p2}");
    c.deploy_wait(&hello(&c, port, 4, "2"));
    settled(&c, 4, 2);

    // s1 comes back as a follower; then the leader (s2) is paused past
    // its lease. s1 takes over and deploys go on through it; s2, resumed,
    // writes nothing more.
    let s1 = c.spawn_server("s1", p1, &[]);
    wait_until("s1 to see s2 lead", Duration::from_secs(10), || {
        leader(p1).filter(|(n, _)| n == "s2")
    });
    let written = watch_assignments(&rt, &nats.urls());
    s2.pause(true);
    let paused = Instant::now();
    let (_, epoch3) = wait_until("s1 to lead", Duration::from_secs(10), || {
        leader(p1).filter(|(n, _)| n == "s1")
    });
    assert!(epoch3 > epoch2, "a new epoch: {epoch3} > {epoch2}");
    c.api = format!("http://127.0.0.1:{p1}");
    c.deploy_wait(&hello(&c, port, 5, "3"));
    settled(&c, 5, 3);
    let pause = Duration::from_secs(10).saturating_sub(paused.elapsed());
    std::thread::sleep(pause);
    s2.pause(false);
    // Its lease task notices first thing after waking; its controller's
    // next pass (within a second) would write if anything did not fence it.
    wait_until("s2 to follow", Duration::from_secs(10), || {
        s2.log().contains("no longer leading").then_some(())
    });
    wait_until("s2 to say so", Duration::from_secs(10), || {
        let rows = servers(p2);
        let me = rows.iter().find(|r| r["name"] == "s2")?;
        (me["leader"] == false && leader(p2)? == ("s1".to_string(), epoch3)).then_some(())
    });
    // A last change through s1: the old leader has seen it (its mirror
    // follows NATS) and had its chance to act on it.
    c.deploy_wait(&hello(&c, port, 4, "3"));
    let rows = settled(&c, 4, 3);
    let seen = written.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let first_new = seen.iter().position(|(_, e)| *e == epoch3);
    let first_new = first_new.unwrap_or_else(|| panic!("s1 wrote assignments: {seen:?}"));
    let stale: Vec<_> = seen[first_new..]
        .iter()
        .filter(|(_, e)| *e < epoch3)
        .collect();
    assert!(
        stale.is_empty(),
        "writes of an old epoch after epoch {epoch3}: {stale:?} in {seen:?}"
    );
    assert_eq!(rows.len(), 4, "exactly the replicas run: {rows:?}");

    let seen = load.finish();
    assert_eq!(seen.failed, 0, "{:?}", seen.failures);
    println!("{} requests, none failed", seen.ok);
    drop(c);
    drop((s1, s2));
}

#[test]
fn a_nats_node_killed_loses_nothing_acknowledged_and_rejoins() {
    let rt = runtime();
    let mut nats = nats_cluster(&rt);
    let mut c = Cluster::on_nats(&nats.urls());
    let s1 = c.spawn_server("s1", c.api_port, &[]);
    let binds = two_hosts(&mut c, "127.0.13");
    let port = free_port();
    c.deploy_wait(&hello(&c, port, 4, "1"));
    settled(&c, 4, 1);
    let follower = c.follow_events();
    let addrs: Vec<String> = binds.iter().map(|b| format!("{b}:{port}")).collect();
    let load = Load::start(&addrs, "/", 8, |_| "ok".to_string());
    wait_until("load to flow", Duration::from_secs(10), || {
        (load.ok() > 100).then_some(())
    });

    // One node of three gone: a majority keeps JetStream writing.
    nats.nodes[0].stop();
    c.deploy_wait(&hello(&c, port, 4, "2"));
    settled(&c, 4, 2);
    // Back, it rejoins: its replicas of the buckets catch up with what
    // was acknowledged while it was away.
    nats.nodes[0].resume();
    rt.block_on(nats.wait_ready());
    rt.block_on(replicas_current(&nats.urls(), "atoll-default-apps"));
    c.deploy_wait(&hello(&c, port, 4, "3"));
    settled(&c, 4, 3);
    let history = c.json(&["history", "hello", "-o", "json"]);
    let revisions: Vec<u64> = (history.as_array().cloned().unwrap_or_default())
        .iter()
        .filter_map(|r| r["revision"].as_u64())
        .collect();
    assert_eq!(revisions, vec![1, 2, 3], "every revision kept: {history}");

    let seen = load.finish();
    assert_eq!(seen.failed, 0, "{:?}", seen.failures);
    let events: Vec<Value> = follower.json_lines();
    let disconnected: Vec<&Value> = (events.iter())
        .filter(|e| e["kind"] == "disconnected" || e["kind"] == "lost")
        .collect();
    assert!(disconnected.is_empty(), "no host trouble: {disconnected:?}");
    drop(s1);
}

#[test]
fn a_single_nats_restarted_under_load_stops_nothing() {
    let mut c = Cluster::start();
    let binds = two_hosts(&mut c, "127.0.14");
    let port = free_port();
    c.deploy_wait(&hello(&c, port, 4, "1"));
    let before = settled(&c, 4, 1);
    let addrs: Vec<String> = binds.iter().map(|b| format!("{b}:{port}")).collect();
    let load = Load::start(&addrs, "/", 8, |_| "ok".to_string());
    wait_until("load to flow", Duration::from_secs(10), || {
        (load.ok() > 100).then_some(())
    });

    c.nats.take();
    // Five seconds down, watching what the server says of the hosts.
    let mut states = std::collections::BTreeSet::new();
    host_states_for(&c, Duration::from_secs(5), &mut states);
    c.start_nats();
    // The reconnect grace (10 s) is the window in which a host could be
    // judged wrongly: watch it whole.
    host_states_for(&c, Duration::from_secs(12), &mut states);
    assert_eq!(
        states,
        std::collections::BTreeSet::from(["ready".to_string()]),
        "no host shown otherwise"
    );
    let after = settled(&c, 4, 1);
    let key = |rows: &[Value]| -> Vec<(String, u64)> {
        rows.iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap_or_default().to_string(),
                    r["restarts"].as_u64().unwrap_or(u64::MAX),
                )
            })
            .collect()
    };
    assert_eq!(key(&after), key(&before), "no restart, no new id");
    let seen = load.finish();
    assert_eq!(seen.failed, 0, "{:?}", seen.failures);
}
