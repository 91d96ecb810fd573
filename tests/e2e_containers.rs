//! Containers and Wasm artifacts from a real registry, side by side: an
//! image built here (busybox's httpd) and the hello component are pushed
//! to Debian's docker-registry with `atoll push`, pulled by two hosts, run
//! through youki and the Wasm driver, and served through both hosts'
//! published ports. A container killed from outside is restarted and
//! counted; `atoll rm` leaves no namespace, veth, overlay or cgroup.

#[path = "containers/cleanup.rs"]
mod cleanup;
mod common;
#[path = "containers/image.rs"]
mod image;
#[path = "containers/registry.rs"]
mod registry;
#[path = "containers/setup.rs"]
mod setup;

use cleanup::HostDirs;
use common::*;
use registry::Registry;
use serde_json::Value;
use setup::{cluster_with_image, push, start_container_host};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

fn instance<'a>(rows: &'a [Value], id: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r["id"] == id)
}

/// Ids answering `/cgi-bin/whoami` through `hostport`, over `n` requests.
fn whoami(hostport: &str, n: usize) -> BTreeSet<String> {
    (0..n)
        .filter_map(|_| http_get(hostport, "/cgi-bin/whoami").ok())
        .map(|(status, body)| {
            assert_eq!(status, 200, "whoami through {hostport}: {body}");
            body.trim().to_string()
        })
        .collect()
}

/// What an instance leaves on the machine while it runs.
fn leftovers(data: &Path, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let netns = Path::new("/var/run/netns").join(format!("atoll-{id}"));
    if netns.exists() {
        found.push(format!("network namespace {}", netns.display()));
    }
    let veth = format!("av{}", &format!("{:x}", Sha256::digest(id.as_bytes()))[..8]);
    let link = std::process::Command::new("ip")
        .args(["link", "show", &veth])
        .output()
        .expect("ip");
    if link.status.success() {
        found.push(format!("veth {veth}"));
    }
    let bundle = data.join("containers").join(id);
    if bundle.exists() {
        found.push(format!("bundle {}", bundle.display()));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if mounts.contains(&bundle.to_string_lossy().to_string()) {
        found.push("overlay mount".into());
    }
    for cg in ["memory", "pids", "cpu", "unified", ""] {
        let p = Path::new("/sys/fs/cgroup").join(cg).join("atoll").join(id);
        if p.exists() {
            found.push(format!("cgroup {}", p.display()));
        }
    }
    let leases = std::fs::read_dir(data.join("net/leases"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|s| s.lines().next() == Some(id)))
        .count();
    if leases > 0 {
        found.push("address lease".into());
    }
    found
}

#[test]
fn containers_and_wasm_artifacts_from_a_registry_serve_side_by_side() {
    let (mut dirs, mut c, registry) = cluster_with_image("hello from a container\n");
    let reg = registry.host.clone();
    push(&c, &sample_wasm("hello"), &format!("{reg}/hello:1"));

    let (d1, d2) = (dirs.data("h1"), dirs.data("h2"));
    let label = ["--label", "role=containers"];
    start_container_host(
        &mut c,
        "h1",
        "127.0.6.2",
        &d1,
        &reg,
        "10.89.206.0/24",
        &label,
    );
    start_container_host(&mut c, "h2", "127.0.6.3", &d2, &reg, "10.89.207.0/24", &[]);
    // A host that runs components only: it makes its service addresses
    // when a component first looks a service up.
    let d3 = dirs.data("h3");
    let comps = ["--label", "role=components"];
    start_container_host(
        &mut c,
        "h3",
        "127.0.6.8",
        &d3,
        &reg,
        "10.89.212.0/24",
        &comps,
    );

    let (web_port, hello_port, front_port, echo_port) =
        (free_port(), free_port(), free_port(), free_port());
    let file = c.compose(
        "mixed.yaml",
        &format!(
            "name: mixed
services:
  web:
    image: {reg}/web:1
    ports: [\"{web_port}:8080\"]
    stop_grace_period: 1s
    deploy:
      replicas: 3
      placement:
        constraints: [node.labels.role == containers]
  hello:
    image: {reg}/hello:1
    ports: [\"{hello_port}:80\"]
    deploy:
      replicas: 2
  front:
    x-atoll:
      component: {front}
    ports: [\"{front_port}:80\"]
    deploy:
      placement:
        constraints: [node.labels.role == components]
  echo:
    image: {reg}/web:1
    entrypoint: [/bin/nc, -ll, -p, \"9000\", -e, /bin/echo1]
    ports: [\"{echo_port}:9000\"]
    stop_grace_period: 0s
    deploy:
      placement:
        constraints: [node.hostname == h2]
",
            front = sample_wasm("three_tier_front").display(),
        ),
    );
    c.deploy_wait(&file);

    let rows = c.instances("mixed");
    let web: BTreeSet<String> = rows
        .iter()
        .filter(|r| r["service"] == "web" && r["state"] == "running")
        .map(|r| {
            assert_eq!(r["host"], "h1", "web is placed by its constraint: {r}");
            r["id"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(web.len(), 3, "3 container replicas on one host: {rows:?}");

    // Both services answer through both hosts' ports; the three replicas
    // share container port 8080, each in its own namespace.
    for bind in ["127.0.6.2", "127.0.6.3"] {
        let (status, body) = http_get(&format!("{bind}:{web_port}"), "/").expect("web");
        assert_eq!((status, body.as_str()), (200, "hello from a container\n"));
        let (status, body) = http_get(&format!("{bind}:{hello_port}"), "/").expect("hello");
        assert_eq!(
            status, 200,
            "the Wasm artifact answers through {bind}: {body}"
        );
        assert!(body.starts_with("hello from"), "{body}");
        let seen = wait_until(
            &format!("every replica to answer through {bind}"),
            Duration::from_secs(10),
            || Some(whoami(&format!("{bind}:{web_port}"), 30)).filter(|s| *s == web),
        );
        assert_eq!(seen, web);
    }

    // A component calls the container service by name, at its container
    // port, from either host.
    for bind in ["127.0.6.2", "127.0.6.3"] {
        let (status, body) =
            http_get(&format!("{bind}:{front_port}"), "/svc/web:8080/").expect("front");
        assert_eq!((status, body.as_str()), (200, "hello from a container\n"));
    }

    // And the other way: a container calls the component by name (its
    // /etc/hosts has the service's virtual IP, the host proxies), and
    // another container service too.
    let (status, body) =
        http_get(&format!("127.0.6.2:{web_port}"), "/cgi-bin/call?hello").expect("call");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("hello from mixed-hello-"),
        "container -> component: {body}"
    );
    let (status, body) =
        http_get(&format!("127.0.6.3:{web_port}"), "/cgi-bin/call?web:8080").expect("call");
    assert_eq!(
        (status, body.as_str()),
        (200, "hello from a container\n"),
        "container -> container"
    );

    // Plain TCP by name, from a container on h1 to one on h2: spliced
    // through the hosts' mesh.
    let (status, body) =
        http_get(&format!("127.0.6.2:{web_port}"), "/cgi-bin/tcp?echo:9000").expect("tcp");
    assert_eq!(
        (status, body.as_str()),
        (200, "echo:ping\n"),
        "container -> container over TCP"
    );

    // And from a component (on the components-only host), by name over
    // plain TCP; nothing but the app's services is reachable that way.
    for bind in ["127.0.6.2", "127.0.6.8"] {
        let (status, body) =
            http_get(&format!("{bind}:{front_port}"), "/tcp/echo:9000").expect("tcp");
        assert_eq!(
            (status, body.as_str()),
            (200, "echo:ping\n"),
            "component -> container over TCP through {bind}"
        );
    }
    // Its own app's service address on a port no `ports:` names reaches
    // the service's instance there (as in Compose), never a daemon of this
    // machine listening on it on every address (the service address is
    // one of the host's).
    let daemon = std::net::TcpListener::bind("0.0.0.0:0").expect("a daemon's port");
    let daemon_port = daemon.local_addr().expect("port").port();
    daemon.set_nonblocking(true).expect("nonblocking");
    let (status, body) = http_get(
        &format!("127.0.6.8:{front_port}"),
        &format!("/tcp/echo:{daemon_port}"),
    )
    .expect("tcp");
    assert!(
        !body.contains("ping"),
        "echo:{daemon_port} answered {status}: {body}"
    );
    assert!(
        matches!(daemon.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the component reached a daemon on the service address"
    );
    drop(daemon);
    // (The published port would answer if the component could reach it.)
    let outside = format!("127.0.6.2:{web_port}");
    for target in ["nope:9000", outside.as_str()] {
        let (status, body) = http_get(
            &format!("127.0.6.8:{front_port}"),
            &format!("/tcp/{target}"),
        )
        .expect("tcp");
        assert_eq!(status, 502, "{target} is refused: {body}");
    }

    // A container's process killed from outside is restarted and counted.
    let victim = web.iter().next().expect("a replica").clone();
    let pid = std::fs::read_to_string(d1.join("containers").join(&victim).join("container.pid"))
        .expect("pid file");
    let killed = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let row = wait_until(
        "the killed container to run again",
        Duration::from_secs(15),
        || {
            let rows = c.instances("mixed");
            instance(&rows, &victim)
                .filter(|r| r["state"] == "running" && r["restarts"].as_u64() >= Some(1))
                .cloned()
        },
    );
    let reason = row["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("signal 9"),
        "the last exit is shown: {reason}"
    );
    wait_until(
        "the restarted replica to serve",
        Duration::from_secs(10),
        || {
            whoami(&format!("127.0.6.3:{web_port}"), 30)
                .contains(&victim)
                .then_some(())
        },
    );

    // Its output reaches `atoll logs`, from the host that runs it.
    let out = c.atoll(&["logs", "mixed/web", "--tail", "50"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(
        logs.contains("url:/cgi-bin/whoami"),
        "httpd's request log: {logs}"
    );

    // `atoll rm`: containers stopped and everything they had removed.
    let out = c.atoll(&["rm", "mixed"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in &web {
        wait_until(
            &format!("{id} to be cleaned up"),
            Duration::from_secs(20),
            || leftovers(&d1, id).is_empty().then_some(()),
        );
    }
    drop(registry);
}

/// Flips every byte of a blob in the registry's storage: same size, wrong
/// digest.
fn corrupt(path: &Path) {
    let bytes: Vec<u8> = std::fs::read(path)
        .expect("blob in the registry")
        .iter()
        .map(|b| !b)
        .collect();
    std::fs::write(path, bytes).expect("corrupt the blob");
}

#[test]
fn bad_images_and_containers_fail_with_a_reason_and_disturb_nothing() {
    let mut dirs = HostDirs::new();
    let mut c = Cluster::start();
    let registry = Registry::start(c.dir.path());
    let reg = registry.host.clone();
    let foreign = if image::host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    for (name, arch, text) in [
        ("web", image::host_arch(), "good\n"),
        ("foreign", foreign, "foreign\n"),
        ("corrupt", image::host_arch(), "corrupt\n"),
    ] {
        let layout = c.dir.path().join(name);
        let built = image::busybox_httpd(&layout, arch, text);
        push(&c, &layout, &format!("{reg}/{name}:1"));
        if name == "corrupt" {
            corrupt(&registry.blob_data(&built.layer_digest));
        }
    }
    let data = dirs.data("h3");
    start_container_host(
        &mut c,
        "h3",
        "127.0.6.4",
        &data,
        &reg,
        "10.89.208.0/24",
        &[],
    );

    let port = free_port();
    let good = c.compose(
        "good.yaml",
        &format!("name: good\nservices:\n  web:\n    image: {reg}/web:1\n    ports: [\"{port}:8080\"]\n    stop_grace_period: 1s\n"),
    );
    c.deploy_wait(&good);
    let down = format!("127.0.0.1:{}", free_port());
    let bad = c.compose(
        "bad.yaml",
        &format!(
            "name: bad
services:
  unknown:
    image: {reg}/nothere:1
  down:
    image: {down}/web:1
  platform:
    image: {reg}/foreign:1
  corrupt:
    image: {reg}/corrupt:1
  nocmd:
    image: {reg}/web:1
    command: [/bin/nope]
  oom:
    image: {reg}/web:1
    entrypoint: [/bin/tail, /dev/zero]
    restart: \"no\"
    stop_grace_period: 1s
    deploy:
      resources:
        limits:
          memory: 16M
"
        ),
    );
    let out = c.atoll(&["deploy", "-f", &bad.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let expected = [
        ("unknown", "not found in registry"),
        ("down", "cannot reach registry"),
        ("platform", "has no linux/"),
        ("corrupt", "failed verification"),
        ("nocmd", "command \"/bin/nope\" not found in the image"),
        ("oom", "OOM killed (memory limit 16 MiB)"),
    ];
    for (service, reason) in expected {
        let row = wait_until(
            &format!("{service} to fail with {reason:?}"),
            Duration::from_secs(30),
            || {
                let rows = c.instances("bad");
                rows.iter()
                    .find(|r| {
                        r["service"] == service
                            && r["state"] == "failed"
                            && r["reason"].as_str().is_some_and(|m| m.contains(reason))
                    })
                    .cloned()
            },
        );
        assert_eq!(row["host"], "h3");
    }

    // Nothing else was disturbed: the good app serves, the host is up.
    for _ in 0..20 {
        let (status, body) = http_get(&format!("127.0.6.4:{port}"), "/").expect("good app");
        assert_eq!((status, body.as_str()), (200, "good\n"));
    }
    let hosts = c.json(&["hosts", "-o", "json"]);
    assert_eq!(hosts[0]["state"], "ready", "{hosts}");

    let ids: Vec<String> = ["bad", "good"]
        .iter()
        .flat_map(|app| c.instances(app))
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    for app in ["bad", "good"] {
        let out = c.atoll(&["rm", app]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for id in &ids {
        wait_until(
            &format!("{id} to be cleaned up"),
            Duration::from_secs(20),
            || leftovers(&data, id).is_empty().then_some(()),
        );
    }
}

/// An OCI runtime that fails every `create` the way a host without a
/// usable cgroup setup does, and then cannot `delete` what it half made:
/// the reason shown must stay the cause, not the clean-up's failure.
const BROKEN_RUNTIME: &str = "#!/bin/sh
for a in \"$@\"; do
  case \"$a\" in
    create) echo 'ERROR libcontainer: cgroup error: failed to detect cgroup setup' >&2; exit 1;;
    delete) echo 'ERROR youki: container is in creating state and cannot be deleted' >&2; exit 1;;
  esac
done
exec youki \"$@\"
";

#[test]
fn a_container_the_runtime_cannot_create_keeps_showing_why() {
    let (mut dirs, mut c, registry) = cluster_with_image("never served\n");
    let runtime = c.dir.path().join("broken-runtime");
    std::fs::write(&runtime, BROKEN_RUNTIME).expect("write the runtime");
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("make it executable");
    let data = dirs.data("h9");
    let flags = ["--oci-runtime", &runtime.to_string_lossy()].map(str::to_string);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    start_container_host(
        &mut c,
        "h9",
        "127.0.6.9",
        &data,
        &registry.host,
        "10.89.219.0/24",
        &flags,
    );
    let file = c.compose(
        "broken.yaml",
        &format!(
            "name: broken\nservices:\n  web:\n    image: {}/web:1\n    deploy:\n      restart_policy:\n        delay: 100ms\n",
            registry.host
        ),
    );
    c.deploy(&file);
    // Restarted twice: both restarts went through the failing delete.
    let row = wait_until("two failed restarts", Duration::from_secs(60), || {
        let rows = c.instances("broken");
        let row = rows.first()?.clone();
        (row["restarts"].as_u64()? >= 2).then_some(row)
    });
    let reason = row["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("cgroup error: failed to detect cgroup setup"),
        "the cause is shown: {row}"
    );
    assert!(
        !reason.contains("delete"),
        "not the clean-up's failure: {row}"
    );
    let id = row["id"].as_str().expect("id").to_string();
    let out = c.atoll(&["rm", "broken"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        &format!("{id} to be cleaned up"),
        Duration::from_secs(20),
        || leftovers(&data, &id).is_empty().then_some(()),
    );
}

/// Container pid of each running instance of `app`, from the host's data.
fn pids(c: &Cluster, data: &Path, app: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = c
        .running(app)
        .into_iter()
        .map(|(id, _)| {
            let pid =
                std::fs::read_to_string(data.join("containers").join(&id).join("container.pid"))
                    .unwrap_or_default();
            (id, pid.trim().to_string())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_restarted_host_adopts_its_containers_and_cleans_up_what_went_away() {
    let (mut dirs, mut c, registry) = cluster_with_image("adopted\n");
    let reg = registry.host.clone();
    let data = dirs.data("h4");
    let start_h4 = |c: &mut Cluster| {
        start_container_host(c, "h4", "127.0.6.5", &data, &reg, "10.89.209.0/24", &[]);
    };
    start_h4(&mut c);
    let port = free_port();
    let file = c.compose(
        "keep.yaml",
        &format!("name: keep\nservices:\n  web:\n    image: {reg}/web:1\n    ports: [\"{port}:8080\"]\n    stop_grace_period: 1s\n    deploy:\n      replicas: 2\n"),
    );
    c.deploy_wait(&file);
    let before = pids(&c, &data, "keep");
    assert_eq!(before.len(), 2);

    // kill -9: the containers outlive their host, and the host's next run
    // takes them over: same instances, same processes, none added.
    c.host("h4").kill9();
    start_h4(&mut c);
    let n = c.hosts.len();
    wait_until(
        "the new host run to adopt both",
        Duration::from_secs(20),
        || {
            let log = c.hosts[n - 1].1.log();
            (log.matches("adopted a running container").count() == 2).then_some(())
        },
    );
    // Its gateway may open before the adoption registered the containers.
    let (status, body) = wait_until("the new run to serve", Duration::from_secs(20), || {
        http_get(&format!("127.0.6.5:{port}"), "/")
            .ok()
            .filter(|(s, _)| *s == 200)
    });
    assert_eq!((status, body.as_str()), (200, "adopted\n"));
    assert_eq!(pids(&c, &data, "keep"), before, "adopted, not restarted");
    let bundles = std::fs::read_dir(data.join("containers"))
        .expect("containers")
        .count();
    assert_eq!(bundles, 2, "no duplicate was started");

    // Removed while its host was down: the host's next run removes it.
    c.hosts[n - 1].1.kill9();
    let out = c.atoll(&["rm", "keep"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    start_h4(&mut c);
    for (id, _) in &before {
        wait_until(
            &format!("{id} to be cleaned up"),
            Duration::from_secs(20),
            || leftovers(&data, id).is_empty().then_some(()),
        );
    }
}

#[test]
fn a_hundred_container_starts_and_stops_leave_nothing_behind() {
    let (mut dirs, mut c, registry) = cluster_with_image("cycle\n");
    let reg = registry.host.clone();
    let data = dirs.data("h5");
    start_container_host(
        &mut c,
        "h5",
        "127.0.6.6",
        &data,
        &reg,
        "10.89.210.0/28",
        &[],
    );
    let scale = |replicas: u32| {
        c.compose(
            "cycle.yaml",
            &format!("name: cycle\nservices:\n  web:\n    image: {reg}/web:1\n    stop_grace_period: 0s\n    deploy:\n      replicas: {replicas}\n"),
        )
    };
    // 20 rounds of 5 new containers, then none: 100 starts and stops. The
    // /28 has 13 addresses, so leaked leases would exhaust it.
    let mut seen = BTreeSet::new();
    for round in 0..20 {
        c.deploy_wait(&scale(5));
        let running = c.running("cycle");
        assert_eq!(running.len(), 5, "round {round}");
        seen.extend(running.into_iter().map(|(id, _)| id));
        c.deploy_wait(&scale(0));
        wait_until(
            "the round's containers to stop",
            Duration::from_secs(20),
            || c.instances("cycle").is_empty().then_some(()),
        );
    }
    assert_eq!(seen.len(), 100, "every round started new containers");
    for id in &seen {
        wait_until(
            &format!("{id} to be cleaned up"),
            Duration::from_secs(20),
            || leftovers(&data, id).is_empty().then_some(()),
        );
    }
}

#[test]
fn a_named_volume_keeps_its_data_through_restarts_and_redeploys() {
    let (mut dirs, mut c, registry) = cluster_with_image("notes\n");
    let reg = registry.host.clone();
    let data = dirs.data("h6");
    start_container_host(
        &mut c,
        "h6",
        "127.0.6.7",
        &data,
        &reg,
        "10.89.211.0/24",
        &[],
    );
    let port = free_port();
    let compose = |version: &str| {
        c.compose(
            "notes.yaml",
            &format!(
                "name: notes\nservices:\n  web:\n    image: {reg}/web:1\n    ports: [\"{port}:8080\"]\n    stop_grace_period: 0s\n    environment:\n      VERSION: \"{version}\"\n    volumes:\n      - notes:/data\nvolumes:\n  notes: {{}}\n"
            ),
        )
    };
    c.deploy_wait(&compose("1"));
    let addr = format!("127.0.6.7:{port}");
    let (status, body) = http_get(&addr, "/cgi-bin/note?kept").expect("write");
    assert_eq!((status, body.as_str()), (200, "kept\n"));
    assert_eq!(
        std::fs::read_to_string(data.join("volumes/notes/notes/note")).expect("on the host"),
        "kept\n"
    );

    // The container dies and comes back: the note is there.
    let id = c.running("notes")[0].0.clone();
    let pid = std::fs::read_to_string(data.join("containers").join(&id).join("container.pid"))
        .expect("pid");
    assert!(
        std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("kill")
            .success()
    );
    let (_, body) = wait_until(
        "the restarted container to read its note",
        Duration::from_secs(15),
        || {
            http_get(&addr, "/cgi-bin/note")
                .ok()
                .filter(|(s, _)| *s == 200)
        },
    );
    assert_eq!(body, "kept\n");

    // A new revision replaces the container: the note is still there.
    c.deploy_wait(&compose("2"));
    let (_, body) = wait_until(
        "the new revision to read the note",
        Duration::from_secs(15),
        || {
            let rows = c.instances("notes");
            let new = rows
                .iter()
                .any(|r| r["state"] == "running" && r["id"] != id.as_str());
            if !new {
                return None;
            }
            http_get(&addr, "/cgi-bin/note")
                .ok()
                .filter(|(s, _)| *s == 200)
        },
    );
    assert_eq!(body, "kept\n");

    // Its host dies: the service waits for it (its data is there) until
    // the operator retires the host; then it starts on another host, from
    // an empty volume.
    let spare = dirs.data("h7");
    start_container_host(
        &mut c,
        "h7",
        "127.0.6.9",
        &spare,
        &reg,
        "10.89.213.0/24",
        &[],
    );
    let refused = c.atoll(&["hosts", "rm", "h7"]);
    assert!(
        !refused.status.success(),
        "a host that is up is not removed"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("host h7 is up"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    c.host("h6").kill9();
    wait_until("h6 to be seen down", Duration::from_secs(15), || {
        let hosts = c.json(&["hosts", "-o", "json"]);
        let h6 = hosts.as_array()?.iter().find(|h| h["name"] == "h6")?;
        (h6["state"] == "down").then_some(())
    });
    let rows = c.instances("notes");
    assert!(
        rows.iter().all(|r| r["host"] == "h6"),
        "the volume service stays on its host: {rows:?}"
    );
    c.atoll_ok(&["hosts", "rm", "h6"]);
    let moved = format!("127.0.6.9:{port}");
    let (_, body) = wait_until("the service to run on h7", Duration::from_secs(30), || {
        let on_h7 = c
            .instances("notes")
            .iter()
            .any(|r| r["host"] == "h7" && r["state"] == "running");
        if !on_h7 {
            return None;
        }
        http_get(&moved, "/cgi-bin/note")
            .ok()
            .filter(|(s, _)| *s == 200)
    });
    assert!(body.contains("No such file"), "a fresh volume: {body}");
    let hosts = c.json(&["hosts", "-o", "json"]);
    let names: Vec<&str> = (hosts.as_array().into_iter().flatten())
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert_eq!(names, ["h7"], "a removed host is not listed");
    let out = c.atoll(&["rm", "notes"]);
    assert!(out.status.success());
}
