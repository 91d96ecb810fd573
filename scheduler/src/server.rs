//! `atoll server`: connects to NATS, opens the buckets, and runs the
//! heartbeat and load watchers, the controller, the autoscaler and the
//! HTTP API until shut down.

use crate::cluster::{self, Cluster};
use crate::{api, controller};
use atoll_sdk::nats::{Buckets, connect, parse_urls, replicas};
use atoll_sdk::protocol::{HEARTBEAT_INTERVAL_MS, MISSED_HEARTBEATS_DOWN};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// One NATS URL or several, comma-separated.
    pub nats_url: String,
    pub cluster: String,
    pub listen: SocketAddr,
    /// Names this server in the leader lease; a restart under the same name
    /// takes the lease back at once.
    pub name: String,
    /// A host silent this long is `disconnected` (`--host-down-after`).
    pub down_after: Duration,
    /// More than this share of the hosts going silent within one window
    /// makes the controller hold (`--mass-loss`).
    pub mass_loss: f64,
    /// After this server's own NATS connection comes back, no host is
    /// declared silent before this has passed (`--reconnect-grace`).
    pub reconnect_grace: Duration,
    /// How long the leader lease lives without renewal (`--lease-ttl`): a
    /// dead leader is replaced within it (and half a second).
    pub lease_ttl: Duration,
    /// JetStream replicas of every bucket (`--replicas`); `None`: 3 when
    /// the cluster can hold them, else 1.
    pub replicas: Option<usize>,
}

impl ServerConfig {
    pub fn new(nats_url: &str, listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            nats_url: nats_url.to_string(),
            cluster: "default".into(),
            listen,
            name: format!("server-{}-{listen}", atoll_sdk::cluster::machine_hostname()),
            down_after: Duration::from_millis(HEARTBEAT_INTERVAL_MS * MISSED_HEARTBEATS_DOWN),
            mass_loss: 0.5,
            reconnect_grace: Duration::from_secs(10),
            lease_ttl: atoll_sdk::nats::LEASE_TTL,
            replicas: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    NatsUrl(#[from] atoll_sdk::nats::UrlError),
    #[error(transparent)]
    Replicas(#[from] replicas::ReplicasError),
    #[error(transparent)]
    Nats(#[from] atoll_sdk::nats::ConnectError),
    #[error(transparent)]
    Buckets(#[from] atoll_sdk::nats::BucketError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Runs the server until `shutdown` completes.
pub async fn run(
    cfg: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let client = connect(&parse_urls(&cfg.nats_url)?, &cfg.name).await?;
    let js = async_nats::jetstream::new(client.clone());
    let names = atoll_sdk::protocol::Names::new(&cfg.cluster);
    let replicas = replicas::ensure(&js, &names, cfg.replicas).await?;
    let buckets = Buckets::open(client, &cfg.cluster).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let detection = cluster::Detection {
        down_after: cfg.down_after,
        mass_loss: cfg.mass_loss,
        reconnect_grace: cfg.reconnect_grace,
    };
    // The lease bucket's keys live as long as a lease.
    crate::lease::set_ttl(&buckets, cfg.lease_ttl).await;
    let (fence_tx, fence_rx) = tokio::sync::watch::channel(crate::lease::Fence::following());
    let lease =
        crate::lease::Lease::new(buckets.leader.clone(), &cfg.name).observing(cfg.lease_ttl);
    let leasing = tokio::spawn(crate::lease::run(lease, cfg.lease_ttl, fence_tx));
    let registry = tokio::spawn(crate::servers::register(
        buckets.leader.clone(),
        cfg.name.clone(),
        cfg.listen.to_string(),
        cfg.lease_ttl,
    ));
    let cluster = Cluster::open(buckets, detection, fence_rx, replicas).await;
    let heartbeats = tokio::spawn(cluster::watch_heartbeats(cluster.clone()));
    let load = tokio::spawn(cluster::watch_load(cluster.clone()));
    let autoscaler = tokio::spawn(crate::autoscale::run(cluster.clone()));
    let control = tokio::spawn(controller::run(cluster.clone(), cfg.name.clone()));
    tracing::info!(listen = %cfg.listen, nats = %cfg.nats_url, replicas, "atoll server ready");
    let served = axum::serve(listener, api::router(cluster))
        .with_graceful_shutdown(shutdown)
        .await;
    leasing.abort();
    registry.abort();
    heartbeats.abort();
    load.abort();
    autoscaler.abort();
    control.abort();
    served.map_err(|source| ServerError::Listen {
        addr: cfg.listen,
        source,
    })
}
