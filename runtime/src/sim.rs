//! `atoll sim`: many simulated hosts in one process, for measuring the
//! control plane at fleet scale. Each host is what `atoll host` is to the
//! cluster — its own NATS connection and inbox, its heartbeats and
//! pulses, its load samples and its assignment watch, through the same
//! code (`agent::heartbeat`, `agent::assignment`, `metrics`) — and runs no
//! workload: an assigned instance is `running` after a start delay
//! ([`instances`]). What the fleet sees is reported as it happens
//! ([`report`]). Killing the process loses all its hosts at once; the
//! `kill N` control line loses some.

mod control;
mod instances;
mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use atoll_sdk::cluster::{Capacity, HostInfo};
use atoll_sdk::metrics::{HostSample, QUIET_SAMPLE_MS};
use atoll_sdk::protocol::{Names, VERSION, now_ms};
use tokio::task::JoinSet;

use crate::agent::link::Retry;
use crate::agent::{assignment, heartbeat};
use instances::{Behaviour, SimInstances};
pub use report::Line;
use report::Tally;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub nats_url: String,
    pub cluster: String,
    pub hosts: usize,
    /// Hosts are named `<prefix><number>` (from 1).
    pub prefix: String,
    /// Labels of every host; a value `a|b|c` is one of those per host,
    /// drawn with `seed`.
    pub labels: BTreeMap<String, String>,
    pub seed: u64,
    /// How long an assigned instance is `starting`.
    pub start_delay: Duration,
    /// `app` or `app/service` whose instances fail instead of running.
    pub failing: Vec<String>,
    pub capacity: Capacity,
    pub nats_creds: Option<PathBuf>,
    /// Hosts connecting at once (the rest wait their turn).
    pub connecting: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    NatsUrl(#[from] atoll_sdk::nats::UrlError),
}

/// What every simulated host shares.
struct Fleet {
    cfg: SimConfig,
    urls: Vec<async_nats::ServerAddr>,
    names: Names,
    behaviour: Arc<Behaviour>,
    tally: Arc<Tally>,
    connecting: tokio::sync::Semaphore,
}

/// Runs the fleet until `until` completes, sending what it sees to
/// `lines` and reading control lines from `control` (see
/// [`control::Command`]).
pub async fn run(
    cfg: SimConfig,
    until: impl std::future::Future<Output = ()>,
    lines: tokio::sync::mpsc::UnboundedSender<Line>,
    control: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> Result<(), SimError> {
    let files = crate::fd_limit::raise();
    tracing::debug!(files, "open files allowed");
    let urls = atoll_sdk::nats::parse_urls(&cfg.nats_url)?;
    let behaviour = Arc::new(Behaviour {
        start_delay: cfg.start_delay,
        failing: std::sync::Mutex::new(cfg.failing.iter().cloned().collect()),
        last_change: Default::default(),
    });
    let fleet = Arc::new(Fleet {
        names: Names::new(&cfg.cluster),
        tally: Tally::new(cfg.hosts, behaviour.clone()),
        connecting: tokio::sync::Semaphore::new(cfg.connecting.max(1)),
        cfg,
        urls,
        behaviour,
    });
    let mut rng = report::Seeded::new(fleet.cfg.seed);
    let mut hosts = Vec::with_capacity(fleet.cfg.hosts);
    for n in 1..=fleet.cfg.hosts {
        let name = format!("{}{n}", fleet.cfg.prefix);
        let labels = report::pick_labels(&fleet.cfg.labels, &mut rng);
        let sim = SimInstances::new(fleet.behaviour.clone());
        fleet.tally.add_host(sim.clone());
        let task = tokio::spawn(host(fleet.clone(), name, labels, sim, rng.next()));
        hosts.push(task);
    }
    let reporting = tokio::spawn(report::run(fleet.tally.clone(), lines.clone()));
    let controlling = tokio::spawn(control::run(
        control,
        hosts,
        fleet.behaviour.clone(),
        fleet.tally.clone(),
        lines.clone(),
    ));
    until.await;
    reporting.abort();
    // The hosts end with the control task, which holds them.
    controlling.abort();
    let _ = lines.send(Line::done(&fleet.tally));
    Ok(())
}

/// One simulated host: connects (waiting its turn, retrying with jitter),
/// then beats, samples and follows its assignment until aborted.
async fn host(
    fleet: Arc<Fleet>,
    name: String,
    labels: BTreeMap<String, String>,
    sim: Arc<SimInstances>,
    run_id: u64,
) {
    let (client, store) = {
        let _turn = fleet.connecting.acquire().await;
        join(&fleet, &name).await
    };
    let info = info(&name, &labels, fleet.cfg.capacity);
    let mut tasks = JoinSet::new();
    tasks.spawn(heartbeat::send(
        client.clone(),
        fleet.names.heartbeat(&name),
        info,
        sim.clone(),
        run_id,
    ));
    let sampled = sim.clone();
    let host_name = name.clone();
    tasks.spawn(crate::metrics::publish_samples(
        client.clone(),
        fleet.names.metrics(&name),
        move || sample(&host_name, &sampled),
    ));
    sim.set_joined();
    let tally = fleet.tally.clone();
    assignment::watch(client, store, name, move |_bucket, _revision, a| {
        let applied = sim.apply(&a);
        tally.assigned(applied);
    })
    .await;
}

/// Connects and opens the assignments bucket, retrying until both work.
async fn join(fleet: &Fleet, name: &str) -> (async_nats::Client, async_nats::jetstream::kv::Store) {
    let mut retry = Retry::default();
    let inbox = atoll_sdk::nats::host_inbox(name);
    let bucket = fleet.names.assignments_bucket();
    let creds = fleet.cfg.nats_creds.as_deref();
    let client_name = format!("sim-host-{name}");
    loop {
        let connecting =
            atoll_sdk::nats::connect_with_inbox(&fleet.urls, &client_name, creds, Some(&inbox));
        match connecting.await {
            Ok(client) => {
                let js = async_nats::jetstream::new(client.clone());
                match js.get_key_value(&bucket).await {
                    Ok(store) => return (client, store),
                    Err(e) => tracing::debug!(host = name, error = %e, "no assignments bucket yet"),
                }
            }
            Err(e) => tracing::debug!(host = name, error = %e, "NATS unreachable"),
        }
        retry.wait().await;
    }
}

fn info(name: &str, labels: &BTreeMap<String, String>, capacity: Capacity) -> HostInfo {
    let mut info = crate::host_info::build(name, "127.0.0.1", labels, capacity, now_ms());
    info.labels.insert("atoll.sim".into(), "true".into());
    info
}

fn sample(name: &str, sim: &SimInstances) -> HostSample {
    HostSample {
        v: VERSION,
        host: name.to_string(),
        at_ms: now_ms(),
        cpu_busy_us: 0,
        cpus: 1,
        memory_used: 0,
        memory_total: 0,
        instances: sim.load_samples(),
        next_ms: QUIET_SAMPLE_MS,
    }
}
