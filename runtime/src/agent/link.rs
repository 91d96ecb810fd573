//! The host's link to NATS, apart from what runs without it. The host
//! starts alone from its cached assignment; this connects in the
//! background (jittered backoff), makes sure no other process runs under
//! the host's name, then joins: the buckets, the assignment watch, the
//! heartbeat, metrics, the logs and exec services, the endpoints mirror feeding the
//! gateway, the wake-ups. The client reconnects by itself after that; a
//! separate loop ([`watch_alone`]) follows the connection, for the
//! instances to stop after `stop_after` alone and start again on return.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::{self, kv, object_store::ObjectStore};
use atoll_sdk::cluster::HostInfo;
use atoll_sdk::nats::{HostBuckets, Mirror};
use atoll_sdk::protocol::{Endpoints, Names};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::assigned::Assigned;
use super::{HostError, assignment, autonomy, duplicate, heartbeat};
use crate::gateway::{EndpointsMap, Gateway};
use crate::joined::{Join, Joined};
use crate::logs::{self, LogPaths};
use crate::metrics::HostMetrics;
use crate::supervisor::Supervisor;

/// First wait between connection attempts; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(10);
/// How often the connection state is looked at.
const LINK_POLL: Duration = Duration::from_millis(200);

/// Where the joined phase publishes the handles it opens.
pub(super) struct Joins {
    pub client: Join<async_nats::Client>,
    pub js: Join<jetstream::Context>,
    pub artifacts: Join<ObjectStore>,
}

/// Everything the joined phase starts from.
pub(super) struct Link {
    pub urls: Vec<async_nats::ServerAddr>,
    pub creds: Option<std::path::PathBuf>,
    /// Whether its NATS user may make the buckets (a host with its own
    /// identity may not: it waits for a server).
    pub may_create: bool,
    pub cluster: String,
    pub name: String,
    pub run_id: u64,
    pub info: HostInfo,
    pub supervisor: Arc<Supervisor>,
    pub assigned: Arc<Assigned>,
    pub gw: Arc<Gateway>,
    pub metrics: Arc<HostMetrics>,
    pub log_paths: LogPaths,
    /// For `atoll exec` (`None`: this host runs no containers).
    pub containers: Option<Arc<crate::container::Containers>>,
    pub routes: watch::Sender<Arc<EndpointsMap>>,
    pub joins: Joins,
}

/// Connects, checks the name, joins and stays joined. Returns only when
/// this host must give way to another process with its name.
pub(super) async fn run(link: Link) -> HostError {
    let client = connect(&link.urls, &link.name, link.creds.as_deref()).await;
    link.joins.client.set(client.clone());
    let names = Names::new(&link.cluster);
    let own = names.heartbeat(&link.name);
    let mut heard = subscribe(&client, own.clone()).await;
    let until = tokio::time::Instant::now() + duplicate::LISTEN;
    let (other, buckets) = tokio::join!(
        duplicate::listen(&mut heard, &own, &link.name, link.run_id, until),
        open_buckets(&client, &link.cluster, link.may_create),
    );
    if let Some(run) = other {
        return clash(&link.name, run);
    }
    let _joined = link.join(&client, &buckets);
    tracing::info!(host = %link.name, "joined the cluster");
    match duplicate::watch(heard, &own, &link.name, link.run_id).await {
        Some(run) => clash(&link.name, run),
        // The client is gone: only shutdown does that.
        None => std::future::pending().await,
    }
}

fn clash(name: &str, run: Option<u64>) -> HostError {
    HostError::Duplicate {
        name: name.to_string(),
        run,
    }
}

impl Link {
    /// Starts what needs NATS; the tasks end when the set is dropped.
    fn join(&self, client: &async_nats::Client, buckets: &HostBuckets) -> JoinSet<()> {
        self.joins.js.set(buckets.js.clone());
        self.joins.artifacts.set(buckets.artifacts.clone());
        set_waker(&self.gw, client.clone(), buckets.names.wake());
        let names = &buckets.names;
        let mut tasks = JoinSet::new();
        tasks.spawn(heartbeat::send(
            client.clone(),
            names.heartbeat(&self.name),
            self.info.clone(),
            self.supervisor.clone(),
            self.run_id,
        ));
        let assigned = self.assigned.clone();
        tasks.spawn(assignment::watch(
            client.clone(),
            buckets.assignments.clone(),
            self.name.clone(),
            move |bucket, revision, a| assigned.offer(bucket, revision, a),
        ));
        tasks.spawn(follow_endpoints(
            buckets.endpoints.clone(),
            self.routes.clone(),
        ));
        let metrics = self.metrics.clone();
        tasks.spawn(metrics.publish(client.clone(), names.metrics(&self.name)));
        tasks.spawn(logs::serve(
            client.clone(),
            names.log_requests(&self.name),
            self.log_paths.clone(),
        ));
        let (exec_client, exec_subject) = (client.clone(), names.exec_requests(&self.name));
        let (supervisor, containers) = (self.supervisor.clone(), self.containers.clone());
        tasks.spawn(async move {
            let sub = subscribe(&exec_client, exec_subject.clone()).await;
            super::exec::serve(exec_client, sub, &exec_subject, supervisor, containers).await
        });
        tasks
    }
}

/// Follows the connection: the host is alone while it has none (from its
/// start until the first connect, and whenever it drops), which the
/// assignment turns into instances to stop after their `stop_after`.
pub(super) async fn watch_alone(
    client: Joined<async_nats::Client>,
    assigned: Arc<Assigned>,
    started: Instant,
) {
    let mut since = Some(started);
    loop {
        let connected = (client.now()).is_some_and(|c| c.connection_state() == State::Connected);
        let now = autonomy::alone_since(since, connected, Instant::now());
        match (since.is_some(), now.is_some()) {
            (true, false) => tracing::info!("NATS reached: running the whole assignment"),
            (false, true) => tracing::warn!("NATS lost: running the cached assignment alone"),
            _ => {}
        }
        since = now;
        assigned.set_alone_since(since);
        tokio::time::sleep(LINK_POLL).await;
    }
}

/// Connects to any of `urls`, retrying with a jittered backoff for as
/// long as it takes.
async fn connect(
    urls: &Vec<async_nats::ServerAddr>,
    name: &str,
    creds: Option<&std::path::Path>,
) -> async_nats::Client {
    let mut retry = Retry::default();
    loop {
        let inbox = atoll_sdk::nats::host_inbox(name);
        let client_name = format!("host-{name}");
        match atoll_sdk::nats::connect_with_inbox(urls, &client_name, creds, Some(&inbox)).await {
            Ok(client) => {
                let server = client.server_info();
                tracing::info!(server = %server.server_name, port = server.port, "connected to NATS");
                return client;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?retry.delay, "NATS unreachable; running the cached assignment meanwhile")
            }
        }
        retry.wait().await;
    }
}

async fn subscribe(client: &async_nats::Client, subject: String) -> async_nats::Subscriber {
    let mut retry = Retry::default();
    loop {
        match client.subscribe(subject.clone()).await {
            Ok(sub) => return sub,
            Err(e) => tracing::warn!(%subject, error = %e, "cannot subscribe; retrying"),
        }
        retry.wait().await;
    }
}

async fn open_buckets(client: &async_nats::Client, cluster: &str, create: bool) -> HostBuckets {
    let mut retry = Retry::default();
    loop {
        match HostBuckets::open(client.clone(), cluster, create).await {
            Ok(buckets) => return buckets,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?retry.delay, "cannot open the buckets; retrying")
            }
        }
        retry.wait().await;
    }
}

/// Keeps the gateway's endpoints those of the bucket. Until the mirror's
/// first load the table in use (made from the cached assignment) stays,
/// and when NATS drops later, the last one known does.
async fn follow_endpoints(store: kv::Store, routes: watch::Sender<Arc<EndpointsMap>>) {
    let mirror: Mirror<Endpoints> = Mirror::start(store).await;
    let view = mirror.view();
    let mut changes = view.changes();
    loop {
        if view.loaded() {
            let all = (view.all().into_iter()).map(|(k, v)| (k, v.value));
            routes.send_replace(Arc::new(all.collect()));
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Asks the control plane for an instance of a service scaled to zero.
fn set_waker(gw: &Gateway, client: async_nats::Client, subject: String) {
    gw.set_waker(Box::new(move |app, service| {
        let wake = atoll_sdk::protocol::Wake {
            app: app.to_string(),
            service: service.to_string(),
        };
        let (client, subject) = (client.clone(), subject.clone());
        if let Ok(bytes) = serde_json::to_vec(&wake) {
            tokio::spawn(async move { client.publish(subject, bytes.into()).await });
        }
    }));
}

/// Exponential backoff from [`FIRST_RETRY`] to [`MAX_RETRY`], each wait
/// drawn between half and all of the delay, so that hosts cut off
/// together do not come back in step.
pub(crate) struct Retry {
    delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { delay: FIRST_RETRY }
    }
}

impl Retry {
    pub(crate) async fn wait(&mut self) {
        let half = self.delay / 2;
        let jitter = rand::random_range(0..=half.as_millis() as u64);
        tokio::time::sleep(half + Duration::from_millis(jitter)).await;
        self.delay = (self.delay * 2).min(MAX_RETRY);
    }
}
