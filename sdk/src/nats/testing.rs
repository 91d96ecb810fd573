//! A real `nats-server` for tests of code that talks to NATS (the KV
//! mirror, the leader lease): started with JetStream on a free loopback
//! port and a store in a fresh temporary directory, ready once it sends its
//! `INFO` greeting, killed — and its directory removed — when dropped.
//!
//! [`TestCluster`] starts several, routed into one JetStream cluster.
//!
//! Compiled for the sdk's own tests and, behind the `testing` feature, for
//! other crates' tests. The `nats-server` binary is looked up on `PATH`,
//! then in `/usr/sbin` and `/usr/bin` (where Debian puts it); a test that
//! cannot find it fails, naming what is missing.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a started server may take to greet.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// A running `nats-server`; see the module docs.
pub struct TestNats {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// Cluster options (name, listen, routes), empty when alone.
    cluster: Vec<String>,
}

impl TestNats {
    /// Starts a server with JetStream, in a fresh store.
    pub fn start() -> TestNats {
        let mut nats = TestNats {
            child: None,
            port: free_port(),
            dir: temp_dir(),
            cluster: Vec::new(),
        };
        nats.resume();
        nats
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (clients see the connection drop); its store stays
    /// for [`resume`](Self::resume).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store, and waits for
    /// its greeting. Panics, saying why, when it does not come up.
    pub fn resume(&mut self) {
        self.stop();
        let store = self.dir.join("store");
        let child = Command::new(binary())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&store)
            .args(&self.cluster)
            .stdout(Stdio::null())
            .stderr(log_file(&self.dir))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server ({}): {e}", binary().display()));
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = Instant::now();
        while !greets(addr) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                let log = std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default();
                panic!(
                    "nats-server on port {} exited at start: {status}\n{log}",
                    self.port
                );
            }
            assert!(
                started.elapsed() < READY_WITHIN,
                "nats-server did not greet on {addr} within {READY_WITHIN:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `n` servers with JetStream routed into one cluster on loopback, each
/// with its own port, cluster port and store.
pub struct TestCluster {
    pub nodes: Vec<TestNats>,
}

impl TestCluster {
    /// Starts the servers; JetStream elects its leader a moment later
    /// (see [`wait_ready`](Self::wait_ready)).
    pub fn start(n: usize) -> TestCluster {
        let routes: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let nodes = (0..n)
            .map(|i| {
                let others: Vec<String> = (routes.iter().enumerate())
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| format!("nats://127.0.0.1:{p}"))
                    .collect();
                let mut node = TestNats {
                    child: None,
                    port: free_port(),
                    dir: temp_dir(),
                    cluster: vec![
                        "-n".into(),
                        format!("node{i}"),
                        "--cluster_name".into(),
                        "atoll-test".into(),
                        "--cluster".into(),
                        format!("nats://127.0.0.1:{}", routes[i]),
                        "--routes".into(),
                        others.join(","),
                    ],
                };
                node.resume();
                node
            })
            .collect();
        TestCluster { nodes }
    }

    /// Every node's URL, comma-separated (`--nats`).
    pub fn urls(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(TestNats::url).collect();
        urls.join(",")
    }

    /// Waits until JetStream can place a stream on every node; panics
    /// after 30 s.
    pub async fn wait_ready(&self) {
        let urls = crate::nats::parse_urls(&self.urls()).expect("urls");
        let client = (crate::nats::connect(&urls, "test-cluster").await).expect("connect");
        let js = async_nats::jetstream::new(client);
        let n = self.nodes.len();
        let started = Instant::now();
        while !matches!(crate::nats::replicas::peers(&js, n).await, Ok(p) if p == n) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "JetStream did not place {n} replicas within 30s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a server on `addr` sends its `INFO` greeting: a bare connection
/// is not enough (a socket polling a free port can connect to itself).
fn greets(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let mut greeting = [0u8; 4];
    s.set_read_timeout(Some(Duration::from_millis(500))).is_ok()
        && s.read_exact(&mut greeting).is_ok()
        && &greeting == b"INFO"
}

fn binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let dirs = on_path
        .into_iter()
        .chain(["/usr/sbin", "/usr/bin"].map(PathBuf::from));
    dirs.map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

/// A loopback port no other test of this process was given, free when
/// asked, and outside the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`, 32768–60999 by default). A port taken
/// from the ephemeral range is only free until some outgoing connection
/// (a NATS route dialling a peer that is not up yet, a client) picks it
/// as its source port, which made a cluster node fail to bind now and then.
/// Each process starts at its own offset so test binaries running side by
/// side rarely probe the same ports.
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let start = (std::process::id().wrapping_mul(7919)) % SPAN;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % SPAN;
        let Ok(port) = u16::try_from(FIRST + n) else {
            continue;
        };
        // 0.0.0.0 conflicts with a listener on any local address.
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + SPAN)
}

/// Where a server's own messages go (appended across restarts), so a
/// failure to start can say why.
fn log_file(dir: &std::path::Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("nats.log"))
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

/// A new directory under the system's temporary directory.
fn temp_dir() -> PathBuf {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let name = format!("atoll-nats-{}-{n}", std::process::id());
    let dir = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Polls `done` every 10 ms until it holds; panics naming `what` after
/// `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
