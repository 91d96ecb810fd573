//! Edge autonomy, the host's side. A host power-cycled (killed with its
//! containers) while NATS is down serves its cached assignment again
//! within 5 s of its start, a container and a component, and joins with
//! the same instances once NATS is back. A second live host under a name
//! in use is refused, naming the clash. An instance with `stop_after` is
//! stopped by a host cut off from NATS, and runs again when NATS is back.
//! Stopping nats-server is what isolates the hosts here.

#[path = "containers/cleanup.rs"]
mod cleanup;
mod common;
#[allow(dead_code)]
#[path = "containers/image.rs"]
mod image;
#[allow(dead_code)]
#[path = "containers/registry.rs"]
mod registry;
#[allow(dead_code)]
#[path = "containers/setup.rs"]
mod setup;

use common::*;
use setup::cluster_with_image;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Hosts that run components only: no runtime binary, so no container
/// network is made (nothing to clean up).
const NO_CONTAINERS: &[&str] = &["--oci-runtime", "/nonexistent/oci-runtime"];

/// Whether `addr` answers `/` with 200 and a body containing `want`.
fn answers(addr: &str, want: &str) -> bool {
    http_get(addr, "/").is_ok_and(|(status, body)| status == 200 && body.contains(want))
}

/// The ids of `app`'s running instances, sorted.
fn running_ids(c: &Cluster, app: &str) -> Vec<String> {
    let mut ids: Vec<String> = c.running(app).into_iter().map(|(id, _)| id).collect();
    ids.sort();
    ids
}

/// The PIDs of the containers a host's data dir says it runs.
fn container_pids(data: &Path) -> Vec<i32> {
    let dirs = std::fs::read_dir(data.join("containers")).expect("containers dir");
    (dirs.flatten())
        .filter_map(|d| std::fs::read_to_string(d.path().join("container.pid")).ok())
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Gone, or a zombie nobody reaped yet (its host, the parent, is dead).
fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            (stat.rsplit(')').next()).is_some_and(|rest| rest.trim_start().starts_with('Z'))
        }
    }
}

fn kill9(pid: i32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -9 {pid}");
}

fn stop_nats(c: &mut Cluster) {
    c.nats.as_mut().expect("nats runs").kill9();
}

#[test]
fn a_host_power_cycled_without_nats_serves_its_cached_assignment_then_joins() {
    let (mut dirs, mut c, registry) = cluster_with_image("offline web\n");
    let reg = registry.host.clone();
    let data = dirs.data("h1");
    let bind = "127.0.12.2";
    let flags = [
        "--insecure-registry",
        &reg,
        "--container-subnet",
        "10.89.230.0/24",
    ];
    c.start_host_at("h1", bind, &data, &flags);
    let (web_port, hello_port) = (free_port(), free_port());
    let file = c.compose(
        "edge.yaml",
        &format!(
            "name: edge
services:
  web:
    image: {reg}/web:1
    ports: [\"{web_port}:8080\"]
    stop_grace_period: 1s
    x-atoll:
      disconnect:
        lost_after: 1m
  hello:
    x-atoll:
      component: {hello}
      disconnect:
        lost_after: 1m
    ports: [\"{hello_port}:80\"]
",
            hello = sample_wasm("hello").display()
        ),
    );
    c.deploy_wait(&file);
    let (web, hello) = (format!("{bind}:{web_port}"), format!("{bind}:{hello_port}"));
    wait_until("both services to answer", Duration::from_secs(20), || {
        (answers(&web, "offline web") && answers(&hello, "hello from")).then_some(())
    });
    let before = running_ids(&c, "edge");
    assert_eq!(before.len(), 2, "{before:?}");

    // Power cycle: the host and its containers die at once; NATS is down
    // (its store kept) when the host starts again.
    let pids = container_pids(&data);
    assert_eq!(pids.len(), 1, "{pids:?}");
    c.host("h1").kill9();
    for &pid in &pids {
        kill9(pid);
    }
    wait_until("the container to die", Duration::from_secs(10), || {
        pids.iter().all(|&p| process_gone(p)).then_some(())
    });
    stop_nats(&mut c);
    c.hosts.clear();
    drop(registry);

    let started = Instant::now();
    c.spawn_host_in(None, "h1", bind, &data, &flags);
    wait_until(
        "both published ports to answer without NATS",
        Duration::from_secs(5),
        || (answers(&web, "offline web") && answers(&hello, "hello from")).then_some(()),
    );
    let took = started.elapsed();
    eprintln!("served from the cache {took:?} after the start");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // NATS back: the host joins with what it runs, nothing added.
    c.start_nats();
    c.wait_host_ready("h1", Duration::from_secs(30));
    wait_until("the same instances to run", Duration::from_secs(30), || {
        (running_ids(&c, "edge") == before).then_some(())
    });
    assert_eq!(c.instances("edge").len(), 2, "no extra instances");
    assert_eq!(container_pids(&data).len(), 1, "one container");
    assert!(answers(&web, "offline web") && answers(&hello, "hello from"));
}

#[test]
fn a_second_host_with_a_name_in_use_is_refused_and_the_first_keeps_serving() {
    let mut c = Cluster::start();
    let first = c.dir.path().join("host-h1");
    c.start_host_at("h1", "127.0.12.5", &first, NO_CONTAINERS);
    let port = free_port();
    let file = c.compose(
        "one.yaml",
        &format!(
            "name: one\nservices:\n  hello:\n    x-atoll:\n      component: {}\n    ports: [\"{port}:80\"]\n",
            sample_wasm("hello").display()
        ),
    );
    c.deploy_wait(&file);
    let addr = format!("127.0.12.5:{port}");
    assert!(answers(&addr, "hello from"));

    let second = c.dir.path().join("host-h1-second");
    let log = c.dir.path().join("second.log");
    let out = std::fs::File::create(&log).expect("log");
    let mut child = Command::new(atoll_bin())
        .args(["host", "--insecure", "--nats", &c.nats_url, "--name", "h1"])
        .args(["--bind", "127.0.12.6", "--mesh-port", "7422", "--data-dir"])
        .arg(&second)
        .args(NO_CONTAINERS)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("second host");
    let started = Instant::now();
    let status = wait_until("the second host to exit", Duration::from_secs(15), || {
        child.try_wait().expect("wait")
    });
    let took = started.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("error: another host named h1 is running (run ")
            && text.contains("give this one another --name"),
        "{text}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");

    assert!(c.host("h1").is_running(), "the first host keeps running");
    assert!(answers(&addr, "hello from"), "and serving");
    c.wait_host_ready("h1", Duration::from_secs(5));
    assert_eq!(c.running("one").len(), 1);
}

#[test]
fn stop_after_stops_an_instance_on_a_host_cut_off_and_it_runs_again_when_nats_is_back() {
    let mut c = Cluster::start();
    let data = c.dir.path().join("host-h1");
    c.start_host_at("h1", "127.0.12.8", &data, NO_CONTAINERS);
    let (brief, steady) = (free_port(), free_port());
    let hello = sample_wasm("hello");
    let file = c.compose(
        "edge.yaml",
        &format!(
            "name: edge
services:
  brief:
    x-atoll:
      component: {hello}
      disconnect:
        stop_after: 2s
    ports: [\"{brief}:80\"]
  steady:
    x-atoll:
      component: {hello}
    ports: [\"{steady}:80\"]
",
            hello = hello.display()
        ),
    );
    c.deploy_wait(&file);
    let (brief, steady) = (
        format!("127.0.12.8:{brief}"),
        format!("127.0.12.8:{steady}"),
    );
    wait_until("both services to answer", Duration::from_secs(20), || {
        (answers(&brief, "hello from") && answers(&steady, "hello from")).then_some(())
    });

    stop_nats(&mut c);
    let cut = Instant::now();
    assert!(answers(&brief, "hello from"), "not stopped at once");
    let stopped = wait_until(
        "the host to stop the instance after stop_after",
        Duration::from_secs(15),
        || (!answers(&brief, "hello from")).then(|| cut.elapsed()),
    );
    eprintln!("stopped {stopped:?} after NATS went away");
    assert!(
        stopped >= Duration::from_millis(1500) && stopped < Duration::from_secs(8),
        "{stopped:?}"
    );
    assert!(answers(&steady, "hello from"), "the other runs on");

    c.start_nats();
    wait_until(
        "the instance to run again with NATS back",
        Duration::from_secs(30),
        || answers(&brief, "hello from").then_some(()),
    );
    assert!(answers(&steady, "hello from"));
}
