//! Fleet scale, bounded: a thousand simulated hosts (`atoll sim`, one
//! process, each host its own NATS connection speaking the host protocol)
//! on one NATS and one server. A global service reaches every one of
//! them, and hosts killed at once are seen gone.

mod common;
use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const HOSTS: usize = 1000;

fn ready_hosts(c: &Cluster) -> Vec<Value> {
    let out = c.atoll(&["hosts", "-o", "json"]);
    let hosts: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    hosts
        .into_iter()
        .filter(|h| h["state"] == "ready")
        .collect()
}

#[test]
fn a_global_service_reaches_a_thousand_simulated_hosts() {
    let c = Cluster::start();
    let mut cmd = Command::new(atoll_bin());
    cmd.args(["sim", "--nats", &c.nats_url, "--hosts", &HOSTS.to_string()])
        .args([
            "--labels",
            "zone=a|b",
            "--start-delay",
            "50ms",
            "-o",
            "json",
        ]);
    let sim = Proc::spawn("sim", &mut cmd, c.dir.path());
    let joined = sim_line(&sim, "joined", Duration::from_secs(90), |_| true);
    assert_eq!(joined["hosts"], HOSTS);
    let hosts = wait_until(
        "the server to see every simulated host ready",
        Duration::from_secs(30),
        || {
            let ready = ready_hosts(&c);
            (ready.len() == HOSTS).then_some(ready)
        },
    );
    let zones: std::collections::BTreeSet<String> = (hosts.iter())
        .filter_map(|h| h["labels"]["zone"].as_str().map(str::to_string))
        .collect();
    assert_eq!(zones.len(), 2, "labels drawn per host: {zones:?}");

    let file = c.compose(
        "fleet.yaml",
        &format!(
            "name: fleet\nservices:\n  agent:\n    x-atoll:\n      component: {}\n    deploy:\n      mode: global\n",
            sample_wasm("hello").display()
        ),
    );
    let deployed = Instant::now();
    c.atoll_ok(&["deploy", "-f", &file.to_string_lossy()]);
    let settled = sim_line(&sim, "settled", Duration::from_secs(120), |l| {
        l["running"] == HOSTS
    });
    eprintln!(
        "global deploy on {HOSTS} simulated hosts: all running {:?} after the deploy",
        deployed.elapsed()
    );
    assert_eq!(settled["hosts_assigned"], HOSTS, "{settled}");
    assert_eq!(settled["instances"], HOSTS, "one per host: {settled}");
    let running = wait_until(
        "the server to see every instance running",
        Duration::from_secs(30),
        || {
            let n = c.running("fleet").len();
            (n == HOSTS).then_some(n)
        },
    );
    assert_eq!(running, HOSTS);
    let ps = c.atoll_ok(&["ps", "fleet", "-o", "json"]);
    let ps: Vec<Value> = serde_json::from_slice(&ps.stdout).expect("ps json");
    let on: std::collections::BTreeSet<&str> =
        ps.iter().filter_map(|i| i["host"].as_str()).collect();
    assert_eq!(on.len(), HOSTS, "each on its own host");
}

/// The first JSON line of the sim's output with `event` for which `f`
/// holds, waited for up to `limit`.
fn sim_line(sim: &Proc, event: &str, limit: Duration, f: impl Fn(&Value) -> bool) -> Value {
    wait_until(&format!("a {event} line from atoll sim"), limit, || {
        (sim.json_lines().into_iter()).find(|l| l["event"] == event && f(l))
    })
}
