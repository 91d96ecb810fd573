//! The agent as a whole against a real nats-server: started without NATS
//! it serves and then joins; a second process under a live host's name
//! is refused; a malformed URL fails at once. Containers are off (no
//! runtime binary), so nothing here touches the machine's network.

use super::*;
use atoll_sdk::nats::Buckets;
use atoll_sdk::nats::testing::TestNats;
use futures::StreamExt;
use std::io::{Read, Write};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Bound of every wait.
const WAIT: Duration = Duration::from_secs(20);

use atoll_sdk::nats::testing::free_port;

fn config(url: &str, test: &str) -> HostConfig {
    let dir = std::env::temp_dir().join(format!(
        "atoll-agent-{test}-{}-{}",
        std::process::id(),
        free_port()
    ));
    let mut cfg = HostConfig::new(url, "h1", "127.0.0.1".parse().expect("ip"), dir);
    cfg.oci_runtime = PathBuf::from("/nonexistent/oci-runtime");
    cfg.mesh_port = free_port();
    cfg
}

/// A host running in this process until the sender is used or dropped.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), HostError>>,
    data_dir: PathBuf,
}

fn start(cfg: HostConfig) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let data_dir = cfg.data_dir.clone();
    let task = tokio::spawn(run(cfg, async move {
        let _ = stopped.await;
    }));
    Running {
        stop: Some(stop),
        task,
        data_dir,
    }
}

impl Running {
    async fn stop(mut self) -> Result<(), HostError> {
        drop(self.stop.take());
        let ended = tokio::time::timeout(WAIT, &mut self.task).await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
        ended.expect("the host stops in time").expect("no panic")
    }
}

/// Whether the host's mesh port answers `/metrics` (blocking: call it
/// from a blocking task).
fn metrics_answer(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

/// The run id in the next heartbeat of `h1` on `sub`.
async fn next_heartbeat_run(sub: &mut async_nats::Subscriber) -> Option<u64> {
    let msg = (tokio::time::timeout(WAIT, sub.next()).await).expect("a heartbeat in time")?;
    duplicate::heard(&msg.payload, msg.headers.as_ref(), "h1").flatten()
}

#[tokio::test]
async fn a_malformed_nats_url_fails_at_once() {
    let cfg = config("http://127.0.0.1:4222", "bad-url");
    let data_dir = cfg.data_dir.clone();
    let ended =
        tokio::time::timeout(Duration::from_secs(5), run(cfg, std::future::pending())).await;
    match ended {
        Ok(Err(HostError::NatsUrl { url, .. })) => assert_eq!(url, "http://127.0.0.1:4222"),
        other => panic!("expected a NatsUrl error at once, got {other:?}"),
    }
    assert!(!data_dir.exists(), "nothing was made");
}

#[tokio::test]
async fn a_host_started_without_nats_serves_then_joins_when_nats_answers() {
    let mut nats = TestNats::start();
    nats.stop();
    let cfg = config(&nats.url(), "offline");
    let (mesh, cache) = (cfg.mesh_port, cfg.data_dir.join("assignment.json"));
    let host = start(cfg);
    let serving = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if metrics_answer(mesh) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    });
    assert!(serving.await.expect("probe"), "serves without NATS");
    assert!(!host.task.is_finished(), "runs without NATS");

    nats.resume();
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let mut heartbeats = client.subscribe("atoll.default.hb.h1").await.expect("sub");
    assert!(
        next_heartbeat_run(&mut heartbeats).await.is_some(),
        "joined"
    );

    // Joined: the assignment watch runs, and caches with the revision.
    let buckets = Buckets::open(client.clone(), "default")
        .await
        .expect("buckets");
    let empty = serde_json::to_vec(&atoll_sdk::cluster::Assignment::default()).expect("json");
    let revision = buckets
        .assignments
        .put("h1", empty.into())
        .await
        .expect("put");
    let started = Instant::now();
    while data_dir::load_cached(&cache).map(|c| c.revision) != Some(revision) {
        assert!(started.elapsed() < WAIT, "the assignment was not cached");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    host.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn a_second_live_host_with_the_name_is_refused_and_the_first_stays() {
    let nats = TestNats::start();
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let mut heartbeats = client.subscribe("atoll.default.hb.h1").await.expect("sub");
    let first = start(config(&nats.url(), "first"));
    let first_run = next_heartbeat_run(&mut heartbeats).await.expect("a run id");

    let second = config(&nats.url(), "second");
    let second_dir = second.data_dir.clone();
    let began = Instant::now();
    let ended = tokio::time::timeout(WAIT, run(second, std::future::pending())).await;
    let _ = std::fs::remove_dir_all(&second_dir);
    match ended {
        Ok(Err(e @ HostError::Duplicate { .. })) => {
            let text = e.to_string();
            assert!(
                text.contains("another host named h1 is running")
                    && text.contains(&format!("{first_run:016x}"))
                    && text.contains("--name"),
                "{text}"
            );
        }
        other => panic!("expected the second host refused, got {other:?}"),
    }
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );

    // The first goes on: its heartbeats still come, from its run.
    assert_eq!(next_heartbeat_run(&mut heartbeats).await, Some(first_run));
    assert!(!first.task.is_finished());
    first.stop().await.expect("a clean stop");
}
