//! Workload isolation, end to end with real containers through youki: a
//! default container has neither NET_RAW nor MKNOD, cannot make a user
//! namespace and runs under a pids limit, so a fork bomb stays in its own
//! cgroup while the host and another app keep serving; a capability
//! beyond Docker's defaults is refused at deploy, naming the key, its line
//! and the policy, until the server is started with `--allow-cap`. The
//! host runs with `--no-userns`: what holds without a user namespace
//! (where the kernel allows none) is what is tested here.

#[path = "containers/cleanup.rs"]
mod cleanup;
mod common;
#[allow(dead_code)]
#[path = "containers/image.rs"]
mod image;
#[allow(dead_code)]
#[path = "containers/registry.rs"]
mod registry;
#[path = "containers/setup.rs"]
mod setup;

use common::*;
use setup::{cluster_with_image, start_container_host};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NET_RAW: u32 = 13;
const SYS_ADMIN: u32 = 21;
const MKNOD: u32 = 27;

/// `CapEff` of the CGI behind `hostport` (its shell runs with the
/// container's capabilities). Waits, bounded, for the host's routing
/// table: `deploy --wait` returns once the server sees the instance
/// ready, which the host's gateway may learn a moment later.
fn cap_eff(hostport: &str) -> u64 {
    let body = wait_until(
        &format!("{hostport} to serve"),
        Duration::from_secs(20),
        || {
            http_get(hostport, "/cgi-bin/status")
                .ok()
                .filter(|(status, _)| *status == 200)
                .map(|(_, body)| body)
        },
    );
    let line = (body.lines())
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap_or_else(|| panic!("no CapEff in {body}"));
    u64::from_str_radix(line.trim(), 16).expect("hex")
}

fn has(caps: u64, bit: u32) -> bool {
    caps & (1 << bit) != 0
}

/// The pids cgroup of an instance, v1 or v2.
fn pids_cgroup(id: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/pids/atoll").join(id);
    match v1.exists() {
        true => v1,
        false => Path::new("/sys/fs/cgroup/atoll").join(id),
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn only_instance(c: &Cluster, app: &str) -> String {
    let rows = c.instances(app);
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0]["id"].as_str().expect("id").to_string()
}

#[test]
fn default_containers_are_confined_and_extra_capabilities_need_the_policy() {
    let (mut dirs, mut c, registry) = cluster_with_image("isolated\n");
    let reg = registry.host.clone();
    let data = dirs.data("h1");
    start_container_host(
        &mut c,
        "h1",
        "127.0.22.2",
        &data,
        &reg,
        "10.89.222.0/24",
        &["--no-userns"],
    );

    // A capability beyond Docker's defaults: refused, naming key, line
    // and policy.
    let admin_port = free_port();
    let admin = c.compose(
        "admin.yaml",
        &format!(
            "name: admin\nservices:\n  web:\n    image: {reg}/web:1\n    ports: [\"{admin_port}:8080\"]\n    cap_add: [NET_RAW, SYS_ADMIN]\n"
        ),
    );
    let out = c.deploy(&admin);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {err}");
    for said in [
        "services.web.cap_add[1]",
        "SYS_ADMIN",
        "--allow-cap SYS_ADMIN",
        "(line 6)",
    ] {
        assert!(err.contains(said), "{said:?} in: {err}");
    }
    assert!(
        !err.contains("cap_add[0]"),
        "NET_RAW needs no policy: {err}"
    );
    assert!(c.instances("admin").is_empty(), "nothing was deployed");

    // Two default apps.
    let (bomb_port, other_port) = (free_port(), free_port());
    // The bomb's service sets a pids limit of 256; the other app runs
    // with the default (4096). With the default, thousands of processes
    // failing to fork on two cores stalled the other app now and then.
    let limit = "    deploy:\n      resources:\n        limits:\n          pids: 256\n";
    for (app, port, extra) in [("bomb", bomb_port, limit), ("other", other_port, "")] {
        let file = c.compose(
            &format!("{app}.yaml"),
            &format!(
                "name: {app}\nservices:\n  web:\n    image: {reg}/web:1\n    ports: [\"{port}:8080\"]\n    stop_grace_period: 1s\n{extra}"
            ),
        );
        c.deploy_wait(&file);
    }
    let bomb = format!("127.0.22.2:{bomb_port}");
    let other = format!("127.0.22.2:{other_port}");
    let caps = cap_eff(&bomb);
    assert!(has(caps, 0), "CHOWN stays: {caps:x}");
    assert!(!has(caps, NET_RAW) && !has(caps, MKNOD), "CapEff {caps:x}");
    let (_, userns) = http_get(&bomb, "/cgi-bin/userns").expect("userns CGI");
    assert!(!userns.contains("rc=0"), "no user namespace: {userns}");
    assert!(userns.contains("rc="), "the probe ran: {userns}");

    let id = only_instance(&c, "bomb");
    // What holds the containers' environment is the owner's only.
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{p:?}: {e}"))
    };
    assert_eq!(mode(&data), 0o700, "the data dir");
    assert_eq!(mode(&data.join("assignment.json")), 0o600);
    assert_eq!(
        mode(&data.join("containers").join(&id).join("config.json")),
        0o600
    );
    let default = pids_cgroup(&only_instance(&c, "other"));
    assert_eq!(
        read(&default.join("pids.max")),
        "4096",
        "default pids limit at {default:?}"
    );
    let cg = pids_cgroup(&id);
    assert_eq!(read(&cg.join("pids.max")), "256", "the service's limit");

    // The fork bomb fills its own limit…
    let (status, body) = http_get(&bomb, "/cgi-bin/bomb").expect("bomb CGI");
    assert_eq!(status, 200, "{body}");
    wait_until(
        "the bomb to reach its pids limit",
        Duration::from_secs(60),
        || {
            let current: u64 = read(&cg.join("pids.current")).parse().ok()?;
            let hit = read(&cg.join("pids.events"))
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            (current >= 250 || hit > 0).then_some(())
        },
    );
    // …and while it keeps trying, the other app, the API and the host
    // itself answer.
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        // Its pages answer within 2 s: ~1 ms alone, once 1.09 s on two
        // cores with another container test beside it. (A CGI, which forks
        // inside the other app, is slowed by the bomb's thousands of
        // failing forks: see docs/security.md.)
        let t = Instant::now();
        let (status, body) = http_get(&other, "/").expect("other app");
        assert_eq!((status, body.as_str()), (200, "isolated\n"));
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "other app took {:?}",
            t.elapsed()
        );
        let t = Instant::now();
        let ps = c.atoll(&["ps", "other"]);
        assert!(ps.status.success(), "atoll ps");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "atoll ps took {:?}",
            t.elapsed()
        );
        let spawned = std::process::Command::new("true").status().expect("spawn");
        assert!(spawned.success());
        std::thread::sleep(Duration::from_millis(500));
    }
    let current: u64 = read(&cg.join("pids.current")).parse().unwrap_or(0);
    assert!(current <= 256, "the limit held: {current}");

    let out = c.atoll(&["rm", "bomb"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the bomb's cgroups to go", Duration::from_secs(60), || {
        (!cg.exists()).then_some(())
    });

    // With the policy, the same file deploys and the capability is held.
    c.server = None;
    c.server = Some(c.spawn_server("test-server", c.api_port, &["--allow-cap", "SYS_ADMIN"]));
    c.deploy_wait(&admin);
    let caps = cap_eff(&format!("127.0.22.2:{admin_port}"));
    assert!(
        has(caps, SYS_ADMIN) && has(caps, NET_RAW),
        "CapEff {caps:x}"
    );

    // A revision 2 without the capability; then a server without the
    // policy refuses a rollback to revision 1, naming the policy.
    let plain = c.compose(
        "admin.yaml",
        &format!(
            "name: admin\nservices:\n  web:\n    image: {reg}/web:1\n    ports: [\"{admin_port}:8080\"]\n"
        ),
    );
    c.deploy_wait(&plain);
    c.server = None;
    c.server = Some(c.spawn_server("test-server", c.api_port, &[]));
    let out = c.atoll(&["rollback", "admin", "--to", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {err}");
    for said in ["revision 1", "policy", "SYS_ADMIN", "--allow-cap SYS_ADMIN"] {
        assert!(err.contains(said), "{said:?} in: {err}");
    }
}

/// A cluster with one host on `bind` serving sample component `sample`
/// on a published port, and that port's address once it answers.
fn component_published(bind: &str, sample: &str, flags: &[&str]) -> (Cluster, String) {
    let mut c = Cluster::start();
    c.start_host("h1", bind, flags);
    let port = free_port();
    let file = c.compose(
        "app.yaml",
        &format!(
            "name: {sample}\nservices:\n  web:\n    x-atoll:\n      component: {}\n    ports: [\"{port}:80\"]\n",
            sample_wasm(sample).display()
        ),
    );
    c.deploy_wait(&file);
    let addr = format!("{bind}:{port}");
    wait_until("the published port", Duration::from_secs(20), || {
        http_get(&addr, "/").ok().filter(|(s, _)| *s == 200)
    });
    (c, addr)
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit.
fn raise_open_files() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// `nft`, wherever Debian put it (`/usr/sbin` may not be on PATH).
fn nft() -> std::process::Command {
    let path = ["/usr/sbin/nft", "/sbin/nft"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("nft");
    std::process::Command::new(path)
}

#[test]
fn many_idle_connections_and_a_slow_client_do_not_stall_a_published_port() {
    use std::io::Write;
    let (_c, addr) = component_published("127.0.22.3", "hello", &[]);
    let sock: std::net::SocketAddr = addr.parse().expect("addr");

    // 2,000 clients that began a request and went quiet (this process
    // needs the sockets: its soft open-file limit goes up to the hard one).
    raise_open_files();
    let opened = Instant::now();
    let mut idle = Vec::new();
    for i in 0..2000 {
        let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("idle connection {i}: {e}"));
        s.write_all(b"GET / HTTP/1.1\r\n").expect("partial request");
        idle.push(s);
    }
    // A normal request still answers at once.
    let t = Instant::now();
    let (status, body) = http_get(&addr, "/").expect("a normal request");
    assert_eq!(status, 200, "{body}");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );

    // A client that sends its request line, then its headers one byte a
    // second, is cut after the header timeout (10 s by default), not
    // before.
    let mut slow = std::net::TcpStream::connect(sock).expect("slow client");
    let started = Instant::now();
    slow.write_all(b"GET / HTTP/1.1\r\n").expect("request line");
    let headers =
        b"Host: slow\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut = None;
    for byte in headers.iter() {
        if slow.write_all(&[*byte]).is_err() || closed_within(&mut slow, Duration::from_secs(1)) {
            cut = Some(started.elapsed());
            break;
        }
    }
    let cut = cut.expect("the slow client was never cut");
    assert!(
        cut >= Duration::from_secs(9) && cut < Duration::from_secs(14),
        "cut after {cut:?}"
    );
    // The quiet ones went at the same timeout, and the port still serves.
    let mut first = idle.swap_remove(0);
    let left = Duration::from_secs(14).saturating_sub(opened.elapsed());
    assert!(
        closed_within(&mut first, left.max(Duration::from_secs(1))),
        "an idle connection was kept"
    );
    let (status, _) = http_get(&addr, "/").expect("after the timeouts");
    assert_eq!(status, 200);
}

/// A `VmRSS`/`VmHWM`-style line of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    (text.lines())
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} for {pid}"))
}

#[test]
fn uploads_stream_to_the_component_and_stalled_bodies_are_given_up() {
    use std::io::{Read, Write};
    // Bodies that stop coming are given up after 3 s (a steady upload
    // of any length is not).
    let (c, addr) = component_published("127.0.22.4", "faulty", &["--body-timeout", "3s"]);
    let host = c.hosts[0].1.pid();
    // Peak memory counted from here (clear_refs 5 resets VmHWM).
    std::fs::write(format!("/proc/{host}/clear_refs"), "5").expect("reset the peak");
    let before = status_kib(host, "VmRSS:");

    const SIZE: usize = 200 << 20;
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        s,
        "POST /count HTTP/1.1\r\nHost: count\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n"
    )
    .expect("headers");
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..SIZE / chunk.len() {
        s.write_all(&chunk).expect("body");
    }
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with(&format!("\r\n{SIZE}\n")) || answer.contains(&format!("\n{SIZE}\n")),
        "{answer}"
    );

    // The host's peak memory grew by far less than the upload.
    let peak = status_kib(host, "VmHWM:");
    let grew_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grew_mib < 50,
        "the host's RSS peaked {grew_mib} MiB above where it was"
    );

    // A declared length over the limit is refused at once.
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "POST /count HTTP/1.1\r\nHost: count\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        2u64 << 30
    )
    .expect("headers");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // A small body that stops half way is answered 408 after the body
    // timeout; a large one streaming to the component is cut then.
    for (declared, sent, small) in [(100usize, 10usize, true), (10 << 20, 2 << 20, false)] {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        write!(
            s,
            "POST /count HTTP/1.1\r\nHost: count\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
        )
        .expect("headers");
        s.write_all(&vec![b'x'; sent]).expect("part of the body");
        let stalled = Instant::now();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let (waited, answer) = (stalled.elapsed(), String::from_utf8_lossy(&answer));
        assert!(
            waited >= Duration::from_millis(2900) && waited < Duration::from_secs(10),
            "gave up on a body of {sent}/{declared} bytes after {waited:?}: {answer}"
        );
        match small {
            true => assert!(answer.starts_with("HTTP/1.1 408"), "{answer}"),
            false => assert!(!answer.contains(&format!("\n{sent}\n")), "{answer}"),
        }
    }
    let (status, _) = http_get(&addr, "/").expect("after the stalled bodies");
    assert_eq!(status, 200);
}

/// The address leased to the one container of `app` on the host whose
/// data dir is `data` (lease files are named by address; the first line
/// is the instance).
fn container_address(data: &Path, app: &str) -> String {
    let leases = std::fs::read_dir(data.join("net/leases")).expect("leases");
    let found = leases.flatten().find(|e| {
        std::fs::read_to_string(e.path()).is_ok_and(|s| {
            s.lines()
                .next()
                .is_some_and(|id| id.starts_with(&format!("{app}-")))
        })
    });
    found
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .unwrap_or_else(|| panic!("no lease for app {app}"))
}

#[test]
fn a_container_reaches_its_own_app_and_the_world_but_not_other_apps_or_the_host() {
    let (mut dirs, mut c, registry) = cluster_with_image("served by a container\n");
    let reg = registry.host.clone();
    let data = dirs.data("h1");
    start_container_host(
        &mut c,
        "h1",
        "127.0.22.5",
        &data,
        &reg,
        "10.89.223.0/24",
        &[],
    );
    let (a_port, b_port) = (free_port(), free_port());
    for (app, port) in [("a", a_port), ("b", b_port)] {
        let file = c.compose(
            &format!("{app}.yaml"),
            &format!(
                "name: {app}\nservices:\n  web:\n    image: {reg}/web:1\n    ports: [\"{port}:8080\"]\n    stop_grace_period: 1s\n"
            ),
        );
        c.deploy_wait(&file);
    }
    let a = format!("127.0.22.5:{a_port}");
    let cgi = |path: &str| -> String {
        let (status, body) = http_get(&a, path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(status, 200, "{path}: {body}");
        body
    };

    // Its own app's service, by name.
    let own = wait_until(
        "app a's own service by name",
        Duration::from_secs(20),
        || {
            let body = cgi("/cgi-bin/call?web:8080");
            body.contains("served by a container").then_some(body)
        },
    );
    assert!(own.contains("served by a container"));

    // Not the other app's container, though it is on the same bridge.
    let b_ip = container_address(&data, "b");
    let other = cgi(&format!("/cgi-bin/call?{b_ip}:8080"));
    assert!(
        !other.contains("served by a container"),
        "reached app b at {b_ip}: {other}"
    );
    // The host reaches it (the gateway's own path is open).
    let (status, _) = http_get(&format!("127.0.22.5:{b_port}"), "/").expect("app b");
    assert_eq!(status, 200);

    // Not a daemon of the host's listening on every address, through the
    // bridge's gateway address.
    let daemon = std::net::TcpListener::bind("0.0.0.0:0").expect("daemon");
    daemon.set_nonblocking(true).expect("nonblocking");
    let port = daemon.local_addr().expect("addr").port();
    let said = cgi(&format!("/cgi-bin/tcp?10.89.223.1:{port}"));
    assert!(
        matches!(daemon.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the host's daemon was reached: {said}"
    );
    assert!(said.contains("refused"), "refused at once: {said}");

    // Not app b's service address on a port no listener has (the
    // firewall turns those to the service catch-all, which answers a
    // container for its own app's addresses only), and not the catch-all
    // dialled directly.
    let (_, b_hosts) =
        http_get(&format!("127.0.22.5:{b_port}"), "/cgi-bin/file?/etc/hosts").expect("b's hosts");
    let b_vip = (b_hosts.lines())
        .find(|l| l.split_whitespace().nth(1) == Some("web"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no web in {b_hosts}"))
        .to_string();
    let said = cgi(&format!("/cgi-bin/tcp?{b_vip}:5432"));
    assert!(said.contains("refused"), "app b's {b_vip}:5432: {said}");
    let hex = format!("{:x}", Sha256::digest(data.to_string_lossy().as_bytes()));
    let ruleset = String::from_utf8_lossy(
        &(nft()
            .args(["list", "table", "inet", &format!("atoll_{}", &hex[..8])])
            .output())
        .expect("nft")
        .stdout,
    )
    .into_owned();
    let catch_all = (ruleset.lines())
        .find_map(|l| {
            l.trim()
                .strip_prefix("ip daddr @vip_addrs meta l4proto tcp dnat ip to ")
        })
        .unwrap_or_else(|| panic!("no catch-all in\n{ruleset}"))
        .to_string();
    let said = cgi(&format!("/cgi-bin/tcp?{catch_all}"));
    assert!(
        said.contains("refused"),
        "the catch-all {catch_all}: {said}"
    );

    // Not the cloud's metadata address: refused by the firewall, not left
    // to time out.
    let said = cgi("/cgi-bin/tcp?169.254.169.254:80");
    assert!(
        said.contains("No route to host") || said.contains("refused"),
        "{said}"
    );

    // Everything the host made goes with it: `atoll host --cleanup` after
    // a kill -9, even with the runtime binary gone (a clean stop does the
    // same through the runtime).
    let table = format!("atoll_{}", &hex[..8]);
    let bridge = format!("atoll-{}", &hex[..8]);
    let tables = || {
        let out = (nft().args(["list", "tables"]).output())
            .expect("nft (Debian package nftables; scripts/setup installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(tables().contains(&table), "{}", tables());
    let ids: Vec<String> = ["a", "b"]
        .iter()
        .map(|app| only_instance(&c, app))
        .collect();
    let pids: Vec<u32> = (ids.iter())
        .flat_map(|id| {
            read(&pids_cgroup(id).join("cgroup.procs"))
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter_map(|p| p.parse().ok())
        .collect();
    assert!(!pids.is_empty(), "the containers' processes");
    let netns = |id: &str| Path::new("/var/run/netns").join(format!("atoll-{id}"));
    assert!(ids.iter().all(|id| netns(id).exists()));
    for h in &mut c.hosts {
        h.1.kill9();
    }
    c.hosts.clear();
    let out = std::process::Command::new(atoll_bin())
        .args([
            "host",
            "--cleanup",
            "--oci-runtime",
            "/nonexistent/youki",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("atoll host --cleanup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!tables().contains(&table), "left behind: {}", tables());
    assert!(
        !Path::new("/sys/class/net").join(&bridge).exists(),
        "the bridge {bridge}"
    );
    for id in &ids {
        assert!(!netns(id).exists(), "the namespace of {id}");
        assert!(!pids_cgroup(id).exists(), "the cgroup of {id}");
        assert!(
            !data.join("youki").join(id).exists(),
            "the runtime's state of {id}"
        );
        assert!(
            !data.join("containers").join(id).exists(),
            "the bundle of {id}"
        );
    }
    // Gone, or dead and waiting to be reaped by whatever adopted it.
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        assert!(
            matches!(state, None | Some("Z") | Some("X")),
            "process {pid} of a container still runs: {stat}"
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&data.to_string_lossy().to_string()),
        "mounts left under the data dir"
    );
}
