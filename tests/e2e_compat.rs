//! Real images behave as they do under Docker. The Compose keys that
//! shape a container's process (`init`, `stop_signal`, `tmpfs`,
//! `shm_size`, `ulimits`, `sysctls`) checked from inside busybox
//! containers; then real software — nginx, redis, postgres — packaged from
//! Debian's own packages the way a Dockerfile would (`tests/images/`), run
//! under atoll as its users do: workers dropping root, servers running as
//! their own user and writing to a volume the image filled, data kept
//! through a `kill -9` and a new revision.

#[path = "containers/cleanup.rs"]
mod cleanup;
mod common;
#[path = "containers/debian.rs"]
mod debian;
#[allow(dead_code)]
#[path = "containers/image.rs"]
mod image;
#[allow(dead_code)]
#[path = "containers/registry.rs"]
mod registry;
#[allow(dead_code)]
#[path = "containers/setup.rs"]
mod setup;

use cleanup::HostDirs;
use common::*;
use registry::Registry;
use setup::{cluster_with_image, push, start_container_host};
use std::path::Path;
use std::time::{Duration, Instant};

/// The host pid of a running instance's init process.
fn container_pid(data: &Path, id: &str) -> u32 {
    let file = data.join("containers").join(id).join("container.pid");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    text.trim().parse().expect("a pid")
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Deploys `app` (one service, `body` under it) and waits until it runs;
/// its instance id and the host pid of its container.
fn run_one(c: &Cluster, data: &Path, app: &str, body: &str) -> (String, u32) {
    let mut text = format!("name: {app}\nservices:\n  s:\n");
    for line in body.lines() {
        text.push_str(&format!("    {line}\n"));
    }
    let file = c.compose(&format!("{app}.yaml"), &text);
    c.deploy_wait(&file);
    let (id, _) = c.running(app).into_iter().next().expect("an instance");
    (id.clone(), container_pid(data, &id))
}

/// How long the container takes to be gone after `atoll rm`.
fn stop_time(c: &Cluster, app: &str, pid: u32) -> Duration {
    let started = Instant::now();
    c.atoll_ok(&["rm", app]);
    wait_until(
        &format!("{app}'s container to end"),
        Duration::from_secs(30),
        || (!alive(pid)).then_some(()),
    );
    started.elapsed()
}

#[test]
fn init_and_stop_signal_stop_a_container_at_once() {
    let (mut dirs, mut c, registry) = cluster_with_image("keys\n");
    let data = dirs.data("k1");
    start_container_host(
        &mut c,
        "k1",
        "127.0.7.2",
        &data,
        &registry.host,
        "10.89.220.0/24",
        &[],
    );
    let image = format!("image: {}/web:1", registry.host);
    // A shell as PID 1 ignores SIGTERM (the kernel drops signals PID 1 has
    // no handler for): without an init it waits out its grace period.
    let idle = "command: [sh, -c, 'while true; do sleep 1; done']\nstop_grace_period: 5s";
    let (_, pid) = run_one(&c, &data, "plain", &format!("{image}\n{idle}"));
    let plain = stop_time(&c, "plain", pid);
    assert!(
        plain >= Duration::from_secs(4),
        "no init: killed after its grace, took {plain:?}"
    );

    let (_, pid) = run_one(
        &c,
        &data,
        "withinit",
        &format!("{image}\n{idle}\ninit: true"),
    );
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm");
    assert_eq!(comm.trim(), "docker-init", "the init is PID 1");
    let with_init = stop_time(&c, "withinit", pid);
    assert!(
        with_init < Duration::from_secs(1),
        "init: true stops at once, took {with_init:?}"
    );

    // A shell that stops on SIGQUIT only, asked with `stop_signal`.
    let quits = "command: [sh, -c, 'trap \"exit 0\" QUIT; while true; do sleep 1; done']\nstop_signal: SIGQUIT";
    let (_, pid) = run_one(&c, &data, "quits", &format!("{image}\n{quits}"));
    // Running is reported once the process starts: the shell sets its
    // trap a moment later (before, PID 1 ignores SIGQUIT).
    let caught = |pid: u32| -> Result<(), String> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
        let mask = (status.lines().find_map(|l| l.strip_prefix("SigCgt:")))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .ok_or(format!("no SigCgt in {status}"))?;
        match mask & (1 << (libc::SIGQUIT - 1)) {
            0 => Err(format!("SIGQUIT not caught yet: {status}")),
            _ => Ok(()),
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = caught(pid);
    while last.is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        last = caught(pid);
    }
    if let Err(why) = last {
        let ps =
            String::from_utf8_lossy(&c.atoll(&["ps", "quits", "-o", "json"]).stdout).into_owned();
        panic!("the shell never caught SIGQUIT: {why}\nps: {ps}");
    }
    let took = stop_time(&c, "quits", pid);
    assert!(
        took < Duration::from_secs(3),
        "stopped by SIGQUIT, took {took:?}"
    );
}

#[test]
fn tmpfs_shm_ulimits_and_sysctls_are_what_the_container_sees() {
    let (mut dirs, mut c, registry) = cluster_with_image("keys\n");
    let data = dirs.data("k2");
    start_container_host(
        &mut c,
        "k2",
        "127.0.7.3",
        &data,
        &registry.host,
        "10.89.221.0/24",
        &[],
    );
    let port = free_port();
    // The container writes what it sees into its web root, then serves it.
    let body = format!(
        "image: {}/web:1
ports: [\"{port}:8080\"]
command:
  - sh
  - -c
  - cat /proc/self/limits > /www/limits; cat /proc/mounts > /www/mounts; cat /proc/sys/net/core/somaxconn > /www/somaxconn; exec httpd -f -p 8080 -h /www
tmpfs: [\"/scratch:size=2m,mode=1770\"]
shm_size: 128m
ulimits:
  nproc: 321
  nofile: {{soft: 2048, hard: 4096}}
sysctls:
  net.core.somaxconn: 1234
",
        registry.host
    );
    run_one(&c, &data, "seen", &body);
    let get = |path: &str| {
        let (status, text) = http_get(&format!("127.0.7.3:{port}"), path).expect("answer");
        assert_eq!(status, 200, "{path}: {text}");
        text
    };
    let limits = get("/limits");
    let line = |name: &str| {
        let l = limits
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default();
        l.split_whitespace()
            .rev()
            .skip(1)
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    // `Max processes  321  321  processes`: hard then soft, read backwards.
    assert_eq!(line("Max processes"), "321 321", "{limits}");
    assert_eq!(line("Max open files"), "4096 2048", "{limits}");
    let mounts = get("/mounts");
    let scratch = mounts
        .lines()
        .find(|l| l.contains(" /scratch "))
        .unwrap_or_default();
    assert!(
        scratch.starts_with("tmpfs ")
            && scratch.contains("size=2048k")
            && scratch.contains("mode=1770"),
        "{mounts}"
    );
    let shm = mounts
        .lines()
        .find(|l| l.contains(" /dev/shm "))
        .unwrap_or_default();
    assert!(shm.contains("size=131072k"), "{shm}");
    assert_eq!(get("/somaxconn").trim(), "1234");
    // Only the container's own network namespace changed.
    let host = std::fs::read_to_string("/proc/sys/net/core/somaxconn").expect("host value");
    assert_ne!(host.trim(), "1234");

    // A sysctl that would change the host is refused when deploying.
    let bad = c.compose(
        "bad.yaml",
        &format!("name: bad\nservices:\n  s:\n    image: {}/web:1\n    sysctls:\n      kernel.pid_max: 100\n", registry.host),
    );
    let out = c.atoll(&["deploy", "-f", &bad.to_string_lossy()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sysctl kernel.pid_max is not namespaced"),
        "{err}"
    );
}

/// A cluster with a registry and one container host, for the Debian
/// images.
fn debian_cluster(
    host: &str,
    bind: &str,
    subnet: &str,
) -> (HostDirs, Cluster, Registry, std::path::PathBuf) {
    let mut dirs = HostDirs::new();
    let mut c = Cluster::start();
    let registry = Registry::start(c.dir.path());
    let data = dirs.data(host);
    start_container_host(&mut c, host, bind, &data, &registry.host, subnet, &[]);
    (dirs, c, registry, data)
}

/// Builds (or takes from the cache) the Debian image `name` and pushes it
/// as `<registry>/<name>:1`.
fn push_debian(c: &Cluster, registry: &Registry, name: &str) -> String {
    let layout = debian::build(name);
    let reference = format!("{}/{name}:1", registry.host);
    push(c, &layout, &reference);
    reference
}

#[test]
fn nginx_serves_with_non_root_workers() {
    let (_dirs, c, registry, data) = debian_cluster("n1", "127.0.7.4", "10.89.222.0/24");
    let image = push_debian(&c, &registry, "nginx");
    let port = free_port();
    let (_, master) = run_one(
        &c,
        &data,
        "web",
        &format!("image: {image}\nports: [\"{port}:8080\"]"),
    );
    let (status, body) = http_get(&format!("127.0.7.4:{port}"), "/").expect("nginx answers");
    assert_eq!((status, body.as_str()), (200, "hello from nginx\n"));
    // The master runs as root, its workers as www-data (uid 33: host uid
    // 100033 in the container's user namespace).
    let workers: Vec<u32> =
        std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
            .expect("children")
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    assert!(!workers.is_empty(), "nginx has workers");
    for w in workers {
        let status = std::fs::read_to_string(format!("/proc/{w}/status")).expect("status");
        let uid = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap_or_default();
        assert!(
            uid.split_whitespace().nth(1) == Some("100033"),
            "worker {w}: {uid}"
        );
    }
    // Its StopSignal (SIGQUIT, a graceful stop) ends it well within the grace.
    let took = stop_time(&c, "web", master);
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn redis_as_its_own_user_keeps_its_count_across_a_kill() {
    let (_dirs, c, registry, data) = debian_cluster("r1", "127.0.7.5", "10.89.223.0/24");
    let image = push_debian(&c, &registry, "redis");
    let port = free_port();
    let body = format!("image: {image}\nports: [\"{port}:6379\"]\nvolumes: [\"counts:/data\"]");
    let text = format!(
        "name: cache\nservices:\n  redis:\n{}\nvolumes:\n  counts:\n",
        indent(&body)
    );
    let file = c.compose("cache.yaml", &text);
    c.deploy_wait(&file);
    let redis = |args: &[&str]| -> String {
        let out = std::process::Command::new("redis-cli")
            .args(["-h", "127.0.7.5", "-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli (scripts/setup installs redis-tools)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // The image's HEALTHCHECK (redis-cli ping) runs: the instance turns healthy.
    wait_until("redis to be healthy", Duration::from_secs(30), || {
        (c.instances("cache").first()?["health"] == "healthy").then_some(())
    });
    let got = wait_until("redis to answer", Duration::from_secs(20), || {
        Some(redis(&["incr", "n"])).filter(|v| v == "1")
    });
    assert_eq!(got, "1");
    assert_eq!(redis(&["incr", "n"]), "2");
    let volume = data.join("volumes/cache/counts");
    assert!(
        volume.join("appendonlydir").is_dir(),
        "redis, as its own user, wrote its volume"
    );
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&volume).expect("volume"));
    assert_eq!(owner, 999, "the volume took the owner of the image's /data");

    // kill -9 of the server: restarted, and the count is still there.
    let (id, _) = c.running("cache").into_iter().next().expect("instance");
    let pid = container_pid(&data, &id);
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill")
            .success()
    );
    let after = wait_until(
        "redis to come back with its count",
        Duration::from_secs(30),
        || Some(redis(&["incr", "n"])).filter(|v| !v.is_empty()),
    );
    assert_eq!(after, "3", "the appended count survived the kill");
    let row = c.instances("cache").into_iter().next().expect("instance");
    assert!(row["restarts"].as_u64() >= Some(1), "{row}");
}

#[test]
fn postgres_initialises_its_volume_and_keeps_a_row_through_restarts_and_revisions() {
    let (_dirs, c, registry, data) = debian_cluster("p1", "127.0.7.6", "10.89.224.0/24");
    let image = push_debian(&c, &registry, "postgres");
    let port = free_port();
    let compose = |version: &str| {
        let body = format!(
            "image: {image}\nports: [\"{port}:5432\"]\nvolumes: [\"pgdata:/var/lib/postgresql/data\"]\nenvironment:\n  VERSION: \"{version}\""
        );
        format!(
            "name: db\nservices:\n  pg:\n{}\nvolumes:\n  pgdata:\n",
            indent(&body)
        )
    };
    let file = c.compose("db.yaml", &compose("1"));
    c.deploy_wait(&file);
    let psql = |sql: &str| -> Option<String> {
        let out = std::process::Command::new("psql")
            .args([
                "-h",
                "127.0.7.6",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-tA",
                "-c",
                sql,
            ])
            .env("PGCONNECT_TIMEOUT", "3")
            .output()
            .expect("psql (scripts/setup installs postgresql-client)");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    wait_until(
        "postgres to accept a table",
        Duration::from_secs(60),
        || psql("create table if not exists notes (t text)"),
    );
    psql("insert into notes values ('kept')").expect("insert");
    let pgdata = data.join("volumes/db/pgdata");
    assert!(
        pgdata.join("PG_VERSION").is_file(),
        "initialised in the volume"
    );

    // A restart (kill -9) and a new revision keep the row.
    let (id, _) = c.running("db").into_iter().next().expect("instance");
    std::process::Command::new("kill")
        .args(["-9", &container_pid(&data, &id).to_string()])
        .status()
        .expect("kill");
    let row = wait_until("the row after a kill", Duration::from_secs(60), || {
        psql("select t from notes")
    });
    assert_eq!(row, "kept");
    std::fs::write(&file, compose("2")).expect("revision 2");
    c.deploy_wait(&file);
    let row = wait_until("the row in revision 2", Duration::from_secs(60), || {
        psql("select t from notes")
    });
    assert_eq!(row, "kept");
    let revisions: Vec<u64> = c
        .instances("db")
        .iter()
        .filter_map(|i| i["revision"].as_u64())
        .collect();
    assert_eq!(revisions, [2]);
}

fn indent(body: &str) -> String {
    body.lines().map(|l| format!("    {l}\n")).collect()
}
