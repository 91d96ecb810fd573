//! Operator verbs against a real cluster: `atoll exec` runs a command in
//! a running container through youki on whichever host runs it, passes
//! its output and exit status through, and refuses clearly what it cannot
//! do (an unknown instance, a Wasm component); `atoll hosts cordon`,
//! `drain` and `uncordon` move work off a host under load without a
//! failed request, and a service with a named volume only when the
//! operator confirms it starts elsewhere on an empty volume; `atoll logs
//! --since/--timestamps` say when each line was written, also across a
//! restart of the host agent.

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
use std::time::Duration;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn exec_runs_a_command_in_a_container_and_returns_its_status() {
    let (mut dirs, mut c, registry) = cluster_with_image("exec\n");
    let data = dirs.data("h1");
    start_container_host(
        &mut c,
        "h1",
        "127.0.25.2",
        &data,
        &registry.host,
        "10.89.231.0/24",
        &[],
    );
    let id = web_container(
        &c,
        &registry.host,
        "    environment:\n      GREETING: hello from web\n",
    );

    // Output and status come back as the command gave them.
    let out = c.atoll(&[
        "exec",
        &id,
        "--",
        "sh",
        "-c",
        "echo \"$GREETING\"; echo oops >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from web\n");
    assert_eq!(text(&out.stderr), "oops\n");

    // `-i`: our input reaches the command, its status comes back.
    let mut child = std::process::Command::new(atoll_bin())
        .args([
            "exec",
            "-i",
            &id,
            "--",
            "sh",
            "-c",
            "read x; echo got:$x; echo err >&2; exit 4",
        ])
        .env("ATOLL_SERVER", &c.api)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("atoll exec -i");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hello\n")
        .expect("input");
    let out = child.wait_with_output().expect("exec -i");
    assert_eq!(out.status.code(), Some(4), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "got:hello\n");
    assert_eq!(text(&out.stderr), "err\n");

    // Megabytes through `cat` both ways: input and output each wait for
    // the other end, and nothing is lost or stuck.
    let mut child = std::process::Command::new(atoll_bin())
        .args(["exec", "-i", &id, "--", "cat"])
        .env("ATOLL_SERVER", &c.api)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("atoll exec -i cat");
    let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut stdin = child.stdin.take().expect("stdin");
    let feed = {
        let data = data.clone();
        std::thread::spawn(move || stdin.write_all(&data))
    };
    let out = child.wait_with_output().expect("exec -i cat");
    feed.join().expect("feeder").expect("all input taken");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        out.stdout == data,
        "{} bytes back of {}",
        out.stdout.len(),
        data.len()
    );

    // `-it` from a terminal (`script` gives the CLI one): the command has
    // a terminal of the CLI's size, and what we type reaches it.
    let cmd = format!(
        "{} exec -it {id} -- sh -c '[ -t 0 ] && echo terminal:yes; stty size; read line; echo got:$line; exit 5'",
        atoll_bin().display()
    );
    let mut child = in_a_terminal(&c, &cmd);
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"typed\n").expect("input");
    let out = wait_until(
        "the terminal session to end",
        Duration::from_secs(30),
        || child.try_wait().ok().flatten(),
    );
    drop(stdin);
    let mut shown = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut shown)
        .expect("output");
    assert_eq!(out.code(), Some(5), "{shown}");
    assert!(shown.contains("terminal:yes"), "a terminal: {shown}");
    assert!(shown.contains("got:typed"), "{shown}");
    assert!(
        shown.contains("24 80"),
        "the CLI's size (none: 24 × 80): {shown}"
    );
    // A session whose client dies: its command does not run on.
    let mut client = std::process::Command::new(atoll_bin())
        .args(["exec", "-i", &id, "--", "sleep", "321"])
        .env("ATOLL_SERVER", &c.api)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("atoll exec -i");
    let sleeping = |c: &Cluster| {
        // (No `ps` in the image: the command lines, NUL-separated.)
        let out = c.atoll(&["exec", &id, "--", "sh", "-c", "cat /proc/[0-9]*/cmdline"]);
        text(&out.stdout).contains("sleep\u{0}321")
    };
    wait_until(
        "the session's command to run",
        Duration::from_secs(20),
        || sleeping(&c).then_some(()),
    );
    client.kill().expect("kill the client");
    let _ = client.wait();
    wait_until(
        "the command to end with its client",
        Duration::from_secs(20),
        || (!sleeping(&c)).then_some(()),
    );

    // ^C typed in `-it` interrupts the command, as in a terminal of its
    // own (it traps it and says so), not the session.
    let cmd = format!(
        "{} exec -it {id} -- sh -c 'trap \"echo got-int; exit 9\" INT; echo ready; while :; do sleep 1; done'",
        atoll_bin().display()
    );
    let mut child = in_a_terminal(&c, &cmd);
    let mut stdin = child.stdin.take().expect("stdin");
    let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let (mut stdout, shown) = (child.stdout.take().expect("stdout"), shown.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                shown.lock().expect("shown").push_str(&text);
            }
        })
    };
    let seen = |what: &str| shown.lock().expect("shown").contains(what);
    wait_until("the command to be ready", Duration::from_secs(20), || {
        seen("ready").then_some(())
    });
    stdin.write_all(b"\x03").expect("^C");
    let status = wait_until(
        "the interrupted session to end",
        Duration::from_secs(20),
        || child.try_wait().ok().flatten(),
    );
    drop(stdin);
    let _ = reader.join();
    assert_eq!(status.code(), Some(9), "{}", shown.lock().expect("shown"));
    assert!(seen("got-int"), "{}", shown.lock().expect("shown"));

    // `-it` without a terminal to read from is refused, as docker does.
    let out = c.atoll(&["exec", "-it", &id, "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not a terminal"),
        "{}",
        text(&out.stderr)
    );

    // A unique prefix of the id is enough; success is 0.
    let prefix = &id[..id.len() - 2];
    let out = c.atoll(&["exec", prefix, "--", "cat", "/proc/1/cmdline"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("httpd"),
        "runs inside the container: {}",
        text(&out.stdout)
    );

    // A command the image does not have fails with the runtime's reason.
    let out = c.atoll(&["exec", &id, "--", "no-such-program"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(!text(&out.stderr).is_empty(), "says why");

    // A command past its timeout is killed, and the verb says so.
    let started = std::time::Instant::now();
    let out = c.atoll(&["exec", "--timeout", "1s", &id, "--", "sleep", "30"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded: {:?}",
        started.elapsed()
    );

    // What cannot run is refused with a reason and status 1.
    let out = c.atoll(&["exec", "nosuchinstance", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no instance nosuchinstance"),
        "{}",
        text(&out.stderr)
    );
    let out = c.atoll(&["exec", &id]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing command is a usage error"
    );

    let hello = sample_wasm("hello");
    let file = c.compose(
        "wasm.yaml",
        &format!(
            "name: wasm\nservices:\n  api:\n    x-atoll:\n      component: {}\n",
            hello.display()
        ),
    );
    c.deploy(&file);
    let wasm_id = wait_until("the component to run", Duration::from_secs(60), || {
        c.running("wasm").into_iter().next().map(|(id, _)| id)
    });
    for flags in [&[][..], &["-i"][..]] {
        let out = c.atoll(&[&["exec"][..], flags, &[&wasm_id, "--", "true"]].concat());
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("Wasm component"),
            "{flags:?}: {}",
            text(&out.stderr)
        );
    }

    // `-q` lists ids only; the server says its version.
    let out = c.atoll(&["ps", "-q", "web"]);
    assert_eq!(text(&out.stdout), format!("{id}\n"));
    let out = c.atoll(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("version json");
    assert_eq!(v["server"], v["client"], "{v}");

    // The container was not disturbed by any of it.
    let rows = c.instances("web");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["restarts"], 0, "{rows:?}");
}

#[test]
fn logs_since_and_timestamps_say_when_each_line_was_written() {
    use atoll_sdk::protocol::now_ms;
    use atoll_sdk::timestamps::{parse_since, rfc3339_ms};
    let (mut dirs, mut c, registry) = cluster_with_image("logs\n");
    let data = dirs.data("h1");
    let (bind, subnet) = ("127.0.25.11", "10.89.236.0/24");
    start_container_host(&mut c, "h1", bind, &data, &registry.host, subnet, &[]);
    let id = web_container(&c, &registry.host, "");
    // The container's own output (its stdout is the log).
    let say = |c: &Cluster, line: &str| {
        let echo = format!("echo {line} >> /proc/1/fd/1");
        c.atoll_ok(&["exec", &id, "--", "sh", "-c", &echo]);
    };
    let logs = |c: &Cluster, args: &[&str]| -> String {
        text(&c.atoll_ok(&[&["logs", "web"][..], args].concat()).stdout)
    };
    // `2026-12-07T21:08:42.123Z line` → the time of `line`.
    let stamp = |out: &str, line: &str| -> Option<u64> {
        let (at, _) = out
            .lines()
            .find(|l| l.ends_with(&format!(" {line}")))?
            .split_once(' ')?;
        Some(parse_since(at, 0).unwrap_or_else(|e| panic!("{at:?}: {e}")))
    };

    // A file's modification time comes from the kernel's coarse clock:
    // up to a few ticks behind the time of day.
    const COARSE_MS: u64 = 25;
    let before = now_ms() - COARSE_MS;
    say(&c, "line-one");
    let one = wait_until("line-one with its time", Duration::from_secs(10), || {
        stamp(&logs(&c, &["--timestamps"]), "line-one")
    });
    assert!(
        (before..=now_ms()).contains(&one),
        "written between {before} and now: {one}"
    );
    // Lines are stamped by the host's look at the log (every 100 ms): wait
    // for the look that covers line-one (its record in the side file: the
    // log's length, then the time), so that line-two gets a look of its own.
    let log = data.join("containers").join(&id).join("container.log");
    let times = data
        .join("containers")
        .join(&id)
        .join("container.log.times");
    wait_until("line-one's look", Duration::from_secs(10), || {
        let records = std::fs::read(&times).ok()?;
        let last = records.len().checked_sub(16)?;
        let covered = u64::from_le_bytes(records[last..last + 8].try_into().ok()?);
        (covered == std::fs::metadata(&log).ok()?.len()).then_some(())
    });
    let mark = rfc3339_ms(now_ms() + 1);
    assert!(!logs(&c, &["--since", &mark]).contains("line-one"));
    say(&c, "line-two");
    let since = wait_until("line-two since the mark", Duration::from_secs(10), || {
        let out = logs(&c, &["--since", &mark, "-t"]);
        out.contains("line-two").then_some(out)
    });
    assert!(!since.contains("line-one"), "{since}");
    let two = stamp(&since, "line-two").expect("stamped");
    assert!(two >= parse_since(&mark, 0).expect("mark"), "{since}");
    assert_eq!(logs(&c, &["--since", "1h", "--tail", "1"]), "line-two\n");
    assert_eq!(
        logs(&c, &["--since", "2000-01-01"])
            .matches("line-")
            .count(),
        2
    );
    let out = c.atoll(&["logs", "web", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(text(&out.stderr).contains("expected a duration"));

    // Written while the host agent is down (the container runs on): the
    // restarted agent gives the line the time it was written, not its own.
    c.host("h1").kill9();
    let written = now_ms() - COARSE_MS;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("the log");
    std::io::Write::write_all(&mut f, b"line-three\n").expect("write");
    drop(f);
    let restarted = now_ms();
    start_container_host(&mut c, "h1", bind, &data, &registry.host, subnet, &[]);
    let three = wait_until("line-three with its time", Duration::from_secs(20), || {
        stamp(&logs(&c, &["-t", "--tail", "5"]), "line-three")
    });
    assert!(
        (written..=restarted).contains(&three),
        "written between {written} and {restarted}: {three}"
    );
    assert_eq!(stamp(&logs(&c, &["-t"]), "line-one"), Some(one), "kept");
}

/// Deploys app `web`: the test image from `registry` with `more` lines of
/// its service; the id of its running container.
fn web_container(c: &Cluster, registry: &str, more: &str) -> String {
    let file = c.compose(
        "web.yaml",
        &format!("name: web\nservices:\n  web:\n    image: {registry}/web:1\n{more}"),
    );
    c.deploy(&file);
    wait_until("the container to run", Duration::from_secs(60), || {
        c.running("web").into_iter().next().map(|(id, _)| id)
    })
}

/// `cmd` run by `script`, which gives it a terminal; our pipes are the
/// terminal's input and output.
fn in_a_terminal(c: &Cluster, cmd: &str) -> std::process::Child {
    std::process::Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .env("ATOLL_SERVER", &c.api)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("script")
}

/// The hello component on `replicas` instances, published on `port`.
fn hello(port: u16, replicas: u32) -> String {
    format!(
        "name: moving\nservices:\n  web:\n    x-atoll:\n      component: {}\n      health: {{ http: /health, interval: 200ms, timeout: 1s, retries: 2 }}\n    ports: [\"{port}:80\"]\n    deploy:\n      replicas: {replicas}\n",
        sample_wasm("hello").display()
    )
}

/// Instances of `app` on `host`.
fn on_host(c: &Cluster, app: &str, host: &str) -> usize {
    c.instances(app)
        .iter()
        .filter(|i| i["host"] == host)
        .count()
}

#[test]
fn a_drained_host_is_emptied_under_load_without_a_failed_request() {
    let mut c = Cluster::start();
    c.start_host("h1", "127.0.25.3", &[]);
    c.start_host("h2", "127.0.25.4", &[]);
    let port = free_port();
    let file = c.compose("moving.yaml", &hello(port, 4));
    c.deploy_wait(&file);
    assert_eq!(
        on_host(&c, "moving", "h2"),
        2,
        "{:?}",
        c.instances("moving")
    );

    // Cordoned: what runs stays, nothing new goes there.
    let out = c.atoll(&["hosts", "cordon", "h2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hosts = text(&c.atoll(&["hosts"]).stdout);
    assert!(hosts.contains("ready, cordoned"), "{hosts}");
    c.deploy_wait(&c.compose("moving.yaml", &hello(port, 6)));
    assert_eq!(
        on_host(&c, "moving", "h2"),
        2,
        "no new instance on a cordoned host"
    );
    assert_eq!(on_host(&c, "moving", "h1"), 4);

    // Drained under load through h1: every request answered.
    let load = common::load::Load::start(&[format!("127.0.25.3:{port}")], "/", 20, |_| "ok".into());
    load.more(200, "the load to get going");
    let out = c.atoll(&["hosts", "drain", "h2", "--timeout", "120"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("host h2 is drained"),
        "{}",
        text(&out.stdout)
    );
    load.more(200, "more answers after the drain");
    let seen = load.finish();
    assert_eq!(
        seen.failed, 0,
        "failed requests during the drain: {:?}",
        seen.failures
    );
    assert_eq!(
        on_host(&c, "moving", "h2"),
        0,
        "{:?}",
        c.instances("moving")
    );
    wait_until("6 ready instances on h1", Duration::from_secs(30), || {
        let rows = c.instances("moving");
        (rows.len() == 6 && rows.iter().all(|r| r["host"] == "h1" && r["ready"] == true))
            .then_some(())
    });

    // Uncordoned: new instances may go there again.
    let out = c.atoll(&["hosts", "uncordon", "h2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    c.deploy_wait(&c.compose("moving.yaml", &hello(port, 10)));
    assert!(
        on_host(&c, "moving", "h2") > 0,
        "{:?}",
        c.instances("moving")
    );
    let out = c.atoll(&["hosts", "drain", "nosuchhost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no host named nosuchhost"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_volume_service_leaves_a_drained_host_only_when_confirmed() {
    let (mut dirs, mut c, registry) = cluster_with_image("notes\n");
    let reg = registry.host.clone();
    let hosts = [
        ("h1", "127.0.25.9", "10.89.234.0/24"),
        ("h2", "127.0.25.10", "10.89.235.0/24"),
    ];
    let events = c.follow_events();
    for (name, bind, subnet) in hosts {
        let data = dirs.data(name);
        start_container_host(&mut c, name, bind, &data, &reg, subnet, &[]);
        events.wait_for_event("host-up", &format!("host {name}"), Duration::from_secs(30));
    }
    let port = free_port();
    let file = c.compose(
        "notes.yaml",
        &format!(
            "name: notes\nservices:\n  web:\n    image: {reg}/web:1\n    ports: [\"{port}:8080\"]\n    stop_grace_period: 0s\n    volumes:\n      - notes:/data\nvolumes:\n  notes: {{}}\n"
        ),
    );
    c.deploy_wait(&file);
    let rows = c.instances("notes");
    let home = rows[0]["host"].as_str().expect("host").to_string();
    let (other, other_bind) = if home == "h1" {
        ("h2", hosts[1].1)
    } else {
        ("h1", hosts[0].1)
    };
    let home_bind = if home == "h1" { hosts[0].1 } else { hosts[1].1 };
    let (status, body) =
        http_get(&format!("{home_bind}:{port}"), "/cgi-bin/note?kept").expect("write");
    assert_eq!((status, body.as_str()), (200, "kept\n"));

    // A plain drain leaves it with its data, and says why it waits.
    let out = c.atoll(&["hosts", "drain", &home, "--timeout", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("named volumes stay unless --volumes"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(on_host(&c, "notes", &home), 1);

    // `--volumes` warns, and without a terminal to ask on wants `--yes`.
    let out = c.atoll(&["hosts", "drain", &home, "--volumes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("notes/web will stop on") && err.contains("EMPTY volume"),
        "{err}"
    );
    assert!(err.contains("pass --yes"), "{err}");

    // Confirmed: stopped here, started on the other host, empty there;
    // the data stays on the drained host's disk.
    let out = c.atoll(&[
        "hosts",
        "drain",
        &home,
        "--volumes",
        "--yes",
        "--timeout",
        "120",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains(&format!("host {home} is drained")));
    let rows = wait_until(
        "the service to run on the other host",
        Duration::from_secs(60),
        || {
            let rows = c.instances("notes");
            (rows.len() == 1 && rows[0]["host"] == other && rows[0]["ready"] == true)
                .then_some(rows)
        },
    );
    assert_eq!(rows[0]["host"], other);
    let (status, body) = http_get(&format!("{other_bind}:{port}"), "/cgi-bin/note").expect("read");
    assert_eq!(status, 200);
    assert!(body.contains("No such file"), "an empty volume: {body}");
    let kept = dirs.data(&home).join("volumes/notes/notes/note");
    assert_eq!(std::fs::read_to_string(&kept).expect("kept"), "kept\n");
    events.wait_for_event(
        "host-availability",
        "notes/web with an empty volume",
        Duration::from_secs(10),
    );
}

#[test]
fn scale_restart_stop_and_start_change_the_app_on_the_server() {
    let mut c = Cluster::start();
    c.start_host("h1", "127.0.25.7", &[]);
    c.start_host("h2", "127.0.25.8", &[]);
    let port = free_port();
    let file = c.compose("moving.yaml", &hello(port, 2));
    c.deploy_wait(&file);
    let ids = |c: &Cluster| -> std::collections::BTreeSet<String> {
        (c.instances("moving").iter())
            .map(|i| i["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };

    // Scale: a new revision with the count, the file untouched.
    let out = c.atoll(&["scale", "moving/web=4", "--wait", "--timeout", "60"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("web scaled to 4"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(c.running("moving").len(), 4);
    let history = text(&c.atoll(&["history", "moving"]).stdout);
    assert!(history.contains("scale web from 2 to 4"), "{history}");
    // Every listing has -q and -o wide.
    let revisions = text(&c.atoll(&["history", "moving", "-q"]).stdout);
    assert_eq!(revisions.lines().collect::<Vec<_>>(), ["1", "2"]);
    let wide = text(&c.atoll(&["ps", "moving", "-o", "wide"]).stdout);
    let header = wide.lines().next().unwrap_or_default();
    assert!(
        header.contains("PORTS") && header.contains("READY"),
        "{wide}"
    );
    assert_eq!(wide.lines().count(), 5, "{wide}");
    for listing in [
        &["ls", "-o", "wide"][..],
        &["hosts", "-o", "wide"],
        &["servers", "-q"],
    ] {
        let out = c.atoll(listing);
        assert!(out.status.success(), "{listing:?}: {}", text(&out.stderr));
    }
    assert_eq!(text(&c.atoll(&["hosts", "-q"]).stdout), "h1\nh2\n");
    let again = c.atoll(&["scale", "moving/web=4"]);
    assert!(
        text(&again.stdout).contains("already has 4"),
        "{}",
        text(&again.stdout)
    );
    for (target, says) in [
        ("moving/nope=1", "has no service \"nope\""),
        ("moving/web", "expected APP/SERVICE=N"),
    ] {
        let out = c.atoll(&["scale", target]);
        assert_eq!(out.status.code(), Some(1), "{target}");
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }

    // Inspect: the app as stored, an instance by a prefix of its id, a
    // host; anything else named as such.
    let inspect = |args: &[&str]| -> serde_json::Value {
        let out = c.atoll(&[&["inspect"][..], args].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("inspect JSON")
    };
    let app = inspect(&["moving"]);
    assert_eq!(app["kind"], "app");
    assert_eq!(app["spec"]["services"]["web"]["deploy"]["replicas"], 4);
    assert_eq!(app["cause"], "scale web from 2 to 4");
    assert!(
        app["compose"]
            .as_str()
            .is_some_and(|t| t.contains("replicas: 2"))
    );
    let id = c.running("moving")[0].0.clone();
    let one = inspect(&[&id[..id.len() - 2]]);
    assert_eq!(
        (one["kind"].as_str(), one["id"].as_str()),
        (Some("instance"), Some(id.as_str()))
    );
    assert_eq!(inspect(&["h2", "--type", "host"])["name"], "h2");
    let out = c.atoll(&["inspect", "h2", "-o", "yaml"]);
    assert!(
        text(&out.stdout).contains("kind: host"),
        "{}",
        text(&out.stdout)
    );
    let out = c.atoll(&["inspect", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no app, instance or host named \"nosuch\""),
        "{}",
        text(&out.stderr)
    );

    // Restart under load: every instance replaced, no request failed.
    let before = ids(&c);
    let load = common::load::Load::start(&[format!("127.0.25.7:{port}")], "/", 10, |_| "ok".into());
    load.more(100, "the load to get going");
    let out = c.atoll(&["restart", "moving", "--wait", "--timeout", "90"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    load.more(100, "answers after the restart");
    let seen = load.finish();
    assert_eq!(
        seen.failed, 0,
        "failed during the restart: {:?}",
        seen.failures
    );
    let now = wait_until("4 new instances", Duration::from_secs(30), || {
        let now = ids(&c);
        (now.len() == 4).then_some(now)
    });
    assert!(
        now.is_disjoint(&before),
        "every instance replaced: {before:?} -> {now:?}"
    );

    // Stop keeps the app and runs nothing; start brings the scaled count
    // back.
    let out = c.atoll(&["stop", "moving", "--wait", "--timeout", "60"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(ids(&c).is_empty(), "{:?}", c.instances("moving"));
    let ls = text(&c.atoll(&["ls"]).stdout);
    assert!(
        ls.lines()
            .any(|l| l.starts_with("moving") && l.contains("stopped")),
        "{ls}"
    );
    let plan = c.atoll(&["deploy", "-f", &file.to_string_lossy(), "--dry-run"]);
    assert!(
        text(&plan.stdout).contains("and start the stopped app"),
        "{}",
        text(&plan.stdout)
    );
    let out = c.atoll(&["start", "moving", "--wait", "--timeout", "60"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(c.running("moving").len(), 4);
    let (status, _) = http_get(&format!("127.0.25.8:{port}"), "/").expect("serving again");
    assert_eq!(status, 200);
}
