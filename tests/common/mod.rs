//! The end-to-end harness: real nats-server, `atoll server` and `atoll
//! host` processes on loopback, driven through the real CLI. Everything a
//! test starts is killed (by PID) when the test ends, pass or fail, and
//! every wait is bounded.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn atoll_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_atoll"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sample components, built by scripts/setup.
pub fn sample_wasm(name: &str) -> PathBuf {
    let p = repo().join(format!("samples/target/wasm32-wasip2/release/{name}.wasm"));
    assert!(p.exists(), "{} is missing: run scripts/setup", p.display());
    p
}

/// A free TCP port, never one this process handed out before and outside
/// the ephemeral range (see `atoll_sdk::nats::testing::free_port`).
pub fn free_port() -> u16 {
    atoll_sdk::nats::testing::free_port()
}

/// Whether the peer closes `s` within `wait` (reading whatever it sends
/// first, such as hyper's 408).
pub fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let _ = s.set_read_timeout(Some(wait));
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `limit`
/// naming what it waited for.
pub fn wait_until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed on drop; its output goes to a log file that is
/// printed when the test fails.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let err = file.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// `kill -STOP` (`stop`) or `kill -CONT`: a process paused as a VM
    /// freeze or a long GC would pause it.
    pub fn pause(&self, stop: bool) {
        let signal = if stop { "-STOP" } else { "-CONT" };
        let ok = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {signal} {} ({})", self.pid(), self.name);
    }

    /// `kill -9`, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON lines of its output so far (`atoll events -o json`).
    pub fn json_lines(&self) -> Vec<Value> {
        (self.log().lines())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until a line has `kind` and a message containing `text`.
    pub fn wait_for_event(&self, kind: &str, text: &str, limit: Duration) -> Value {
        wait_until(&format!("a {kind} event with {text:?}"), limit, || {
            (self.json_lines().into_iter()).find(|e| {
                e["kind"] == kind && e["message"].as_str().is_some_and(|m| m.contains(text))
            })
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of {} ---", self.name);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// A cluster under test: NATS, one server, any number of hosts.
pub struct Cluster {
    // Fields drop in this order: hosts, then the server, then NATS, and
    // the directory with their logs last.
    pub hosts: Vec<(String, Proc)>,
    pub server: Option<Proc>,
    pub nats: Option<Proc>,
    pub nats_url: String,
    /// The address NATS listens on (127.0.0.1 unless `start_at`).
    pub nats_ip: String,
    pub nats_port: u16,
    pub api: String,
    pub api_port: u16,
    pub dir: tempdir::Dir,
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_at("127.0.0.1")
    }

    /// A cluster whose NATS listens on `nats_ip` (for hosts in network
    /// namespaces, which cannot reach the root namespace's loopback).
    pub fn start_at(nats_ip: &str) -> Cluster {
        let dir = tempdir::Dir::new();
        let nats_port = free_port();
        let api_port = free_port();
        let mut c = Cluster {
            nats_url: format!("nats://{nats_ip}:{nats_port}"),
            nats_ip: nats_ip.to_string(),
            nats_port,
            api: format!("http://127.0.0.1:{api_port}"),
            api_port,
            dir,
            nats: None,
            server: None,
            hosts: Vec::new(),
        };
        c.start_nats();
        c.start_server();
        c
    }

    /// A cluster on NATS the test runs itself (a NATS cluster, say):
    /// neither NATS nor a server is started; `self.api` names the first
    /// server's API port.
    pub fn on_nats(nats_url: &str) -> Cluster {
        let api_port = free_port();
        Cluster {
            nats_url: nats_url.to_string(),
            nats_ip: "127.0.0.1".to_string(),
            nats_port: 0,
            api: format!("http://127.0.0.1:{api_port}"),
            api_port,
            dir: tempdir::Dir::new(),
            nats: None,
            server: None,
            hosts: Vec::new(),
        }
    }

    /// Starts `atoll server --name NAME` with its API on `api_port` (one
    /// of several servers) and waits until that API answers. Plain HTTP
    /// (`--insecure`) unless `extra` names an `--identity`, then HTTPS
    /// (waited for until its port accepts).
    pub fn spawn_server(&self, name: &str, api_port: u16, extra: &[&str]) -> Proc {
        let secure = extra.contains(&"--identity");
        let mut cmd = Command::new(atoll_bin());
        cmd.args(["server", "--nats", &self.nats_url, "--listen"])
            .arg(format!("127.0.0.1:{api_port}"))
            .args(["--name", name])
            .args(if secure { &[][..] } else { &["--insecure"][..] })
            .args(extra);
        let proc = Proc::spawn(&format!("server-{name}"), &mut cmd, self.dir.path());
        let addr = format!("127.0.0.1:{api_port}");
        wait_until(
            &format!("server {name}'s API"),
            Duration::from_secs(20),
            || match secure {
                true => TcpStream::connect(&addr).ok().map(drop),
                false => (http_get(&addr, "/v1/health").ok())
                    .filter(|(s, _)| *s == 200)
                    .map(drop),
            },
        );
        proc
    }

    pub fn start_nats(&mut self) {
        let store = self.dir.path().join("nats");
        let mut cmd = Command::new("nats-server");
        cmd.args([
            "-js",
            "-a",
            &self.nats_ip,
            "-p",
            &self.nats_port.to_string(),
            "-sd",
        ])
        .arg(&store);
        self.nats = Some(Proc::spawn("nats", &mut cmd, self.dir.path()));
        let addr: SocketAddr = format!("{}:{}", self.nats_ip, self.nats_port)
            .parse()
            .expect("addr");
        // NATS greets every client with `INFO`; waiting for the greeting
        // (not just a connection) rules out a socket that connected to
        // itself, which the kernel allows when the ephemeral source port
        // happens to be the port being polled.
        wait_until(
            "nats-server to accept connections",
            Duration::from_secs(10),
            || {
                let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
                s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
                let mut greeting = [0u8; 4];
                s.read_exact(&mut greeting).ok()?;
                (&greeting == b"INFO").then_some(())
            },
        );
    }

    pub fn start_server(&mut self) {
        let mut cmd = Command::new(atoll_bin());
        cmd.args(["server", "--insecure", "--nats", &self.nats_url, "--listen"])
            .arg(format!("127.0.0.1:{}", self.api_port))
            .args(["--name", "test-server"]);
        self.server = Some(Proc::spawn("server", &mut cmd, self.dir.path()));
        let api = self.api.clone();
        wait_until("the server API", Duration::from_secs(15), || {
            http_get(&api.replace("http://", ""), "/v1/health")
                .ok()
                .filter(|(s, _)| *s == 200)
        });
    }

    /// Starts `atoll host --name NAME --bind BIND` with extra args.
    pub fn start_host(&mut self, name: &str, bind: &str, extra: &[&str]) {
        let data = self.dir.path().join(format!("host-{name}"));
        self.start_host_at(name, bind, &data, extra);
    }

    /// [`start_host`](Self::start_host) with the host's data dir given.
    pub fn start_host_at(&mut self, name: &str, bind: &str, data: &Path, extra: &[&str]) {
        self.start_host_in(None, name, bind, data, extra);
    }

    /// Starts a host, inside network namespace `netns` if given, and
    /// waits until the server shows it ready.
    pub fn start_host_in(
        &mut self,
        netns: Option<&str>,
        name: &str,
        bind: &str,
        data: &Path,
        extra: &[&str],
    ) {
        self.spawn_host_in(netns, name, bind, data, extra);
        self.wait_host_ready(name, Duration::from_secs(15));
    }

    /// Waits until `atoll hosts` shows host `name` ready.
    pub fn wait_host_ready(&self, name: &str, limit: Duration) {
        wait_until(&format!("host {name} to be ready"), limit, || {
            let hosts = self.json(&["hosts", "-o", "json"]);
            hosts
                .as_array()?
                .iter()
                .any(|h| h["name"] == name && h["state"] == "ready")
                .then_some(())
        });
    }

    /// Starts a host process and returns at once (no NATS needed).
    pub fn spawn_host_in(
        &mut self,
        netns: Option<&str>,
        name: &str,
        bind: &str,
        data: &Path,
        extra: &[&str],
    ) {
        let mut cmd = match netns {
            // `ip netns exec` execs the command: the PID is the host's.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(atoll_bin());
                c
            }
            None => Command::new(atoll_bin()),
        };
        cmd.args([
            "host",
            "--nats",
            &self.nats_url,
            "--name",
            name,
            "--bind",
            bind,
            "--data-dir",
        ])
        .arg(data)
        .args(extra);
        // A lab host unless it joins (a joined one's identity wins anyway).
        if !extra.contains(&"--join") {
            cmd.arg("--insecure");
        }
        let proc = Proc::spawn(&format!("host-{name}"), &mut cmd, self.dir.path());
        self.hosts.push((name.to_string(), proc));
    }

    pub fn host(&mut self, name: &str) -> &mut Proc {
        &mut self
            .hosts
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no host {name}"))
            .1
    }

    /// Runs the CLI against this cluster.
    pub fn atoll(&self, args: &[&str]) -> Output {
        Command::new(atoll_bin())
            .args(args)
            .env("ATOLL_SERVER", &self.api)
            .output()
            .expect("run atoll")
    }

    /// `atoll events -o json` in the background, once it is seen to follow
    /// (the `host-up` of `host`, which must start after this call).
    pub fn follow_events(&self) -> Proc {
        let mut cmd = Command::new(atoll_bin());
        cmd.args(["events", "-o", "json"])
            .env("ATOLL_SERVER", &self.api);
        Proc::spawn("events", &mut cmd, self.dir.path())
    }

    /// Runs the CLI and expects success and JSON on stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.atoll(args);
        assert!(
            out.status.success(),
            "atoll {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "atoll {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `atoll ps -o json` rows of one app.
    pub fn instances(&self, app: &str) -> Vec<Value> {
        self.json(&["ps", app, "-o", "json"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Writes a Compose file into the test dir and returns its path.
    pub fn compose(&self, file: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(file);
        std::fs::write(&p, text).expect("write compose");
        p
    }

    /// `atoll deploy -f FILE --wait`, bounded to 60 s, as it went.
    pub fn deploy(&self, file: &Path) -> Output {
        self.atoll(&[
            "deploy",
            "-f",
            &file.to_string_lossy(),
            "--wait",
            "--timeout",
            "60",
        ])
    }

    /// Deploys and waits until the app's instances all run.
    pub fn deploy_wait(&self, file: &Path) {
        let out = self.deploy(file);
        assert!(
            out.status.success(),
            "deploy failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs the CLI and asserts it succeeded.
    pub fn atoll_ok(&self, args: &[&str]) -> Output {
        let out = self.atoll(args);
        assert!(
            out.status.success(),
            "atoll {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Instances of `app` in state running, with their hosts.
    pub fn running(&self, app: &str) -> Vec<(String, String)> {
        self.instances(app)
            .iter()
            .filter(|i| i["state"] == "running")
            .map(|i| {
                (
                    i["id"].as_str().unwrap_or_default().to_string(),
                    i["host"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

/// One HTTP/1.0 request with a JSON body, read to the end with a 30 s
/// bound: (status, body). Panics when the address does not answer.
pub fn http_request(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("send");
    s.write_all(body).expect("send body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A minimal HTTP/1.1 GET with a 10 s bound: (status, body).
pub fn http_get(hostport: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_get_with(hostport, path, &[])
}

/// [`http_get`] with extra request headers.
pub fn http_get_with(
    hostport: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    let text = http_get_raw(hostport, path, headers, Duration::from_secs(10))?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    Ok((status, dechunk(&body)))
}

/// The whole raw answer (status line, headers, body) to a GET with extra
/// `headers`, read for at most `timeout`.
pub fn http_get_raw(
    hostport: &str,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> std::io::Result<String> {
    let addr: SocketAddr = hostport
        .parse()
        .map_err(|e| std::io::Error::other(format!("{hostport}: {e}")))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(timeout))?;
    let extra: String = (headers.iter())
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\n{extra}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    Ok(String::from_utf8_lossy(&raw).to_string())
}

/// Undoes chunked transfer encoding when present (good enough for tests:
/// the bodies are small text).
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_string();
        };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_string();
        };
        if n == 0 {
            return out;
        }
        if after.len() < n {
            return body.to_string();
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
}

pub mod cli;
pub mod load;

pub mod tempdir {
    use std::path::{Path, PathBuf};

    /// A temporary directory removed on drop (kept when the test fails, so
    /// its logs can be read).
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            let base = std::env::temp_dir().join(format!(
                "atoll-test-{}-{}",
                std::process::id(),
                super::free_port()
            ));
            std::fs::create_dir_all(&base).expect("temp dir");
            Dir(base)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            if std::thread::panicking() {
                eprintln!("test files kept in {}", self.0.display());
            } else {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
