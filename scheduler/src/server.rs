//! `atoll server`: connects to NATS, opens the buckets, and runs the
//! heartbeat and load watchers, the controller, the autoscaler and the
//! HTTP API until shut down.

use crate::cluster::{self, Cluster};
use crate::{api, controller};
use atoll_sdk::nats::{Buckets, ServersOnly, connect_as, open_servers_only, parse_urls, replicas};
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
    /// The cluster identity directory (`--identity`, made by `atoll
    /// cluster init`): the API serves HTTPS and needs tokens.
    pub identity: Option<std::path::PathBuf>,
    /// Plain HTTP without tokens (`--insecure`): only when said so.
    pub insecure: bool,
    /// NATS user credentials (`--nats-creds`); the identity's
    /// `server.creds` when `None` and it has one.
    pub nats_creds: Option<std::path::PathBuf>,
    /// What deployed files may ask for beyond a default container
    /// (`--allow-cap`).
    pub policy: crate::policy::Policy,
    /// The API listener's header timeout and connection cap.
    pub limits: crate::api_serve::ApiLimits,
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
            identity: None,
            insecure: false,
            nats_creds: None,
            policy: Default::default(),
            limits: Default::default(),
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
    #[error(
        "no cluster identity: start the server with --identity DIR (made by `atoll cluster init --dir DIR`), or with --insecure for a lab cluster anyone who reaches the API controls"
    )]
    NoIdentity,
    #[error(transparent)]
    Secrets(crate::secrets::VaultError),
    #[error("cluster identity: {0}")]
    Identity(#[from] crate::identity::IdentityError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What issuing host identities and state grants needs: the identity's
/// CA and account keys, the bucket of joins. The grants are answered from
/// here on.
async fn joining(
    dir: &std::path::Path,
    cluster: &str,
    buckets: &Buckets,
    replicas: usize,
) -> Result<api::Joining, ServerError> {
    let issuer = std::sync::Arc::new(crate::identity::issuing::HostIssuer::load(dir, cluster)?);
    let joined =
        open_servers_only(&buckets.js, &buckets.names, ServersOnly::Joined, replicas).await?;
    tokio::spawn(crate::grants::serve(crate::grants::Granting {
        js: buckets.js.clone(),
        names: buckets.names.clone(),
        issuer: issuer.clone(),
        assignments: buckets.assignments.clone(),
        replicas,
    }));
    Ok(api::Joining { issuer, joined })
}

/// Runs the server until `shutdown` completes.
pub async fn run(
    cfg: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // The identity first: a server that cannot serve securely fails before
    // it touches the cluster.
    let identity = match (&cfg.identity, cfg.insecure) {
        (Some(dir), _) => Some(crate::identity::load_api(dir)?),
        (None, true) => None,
        (None, false) => return Err(ServerError::NoIdentity),
    };
    let creds = (cfg.nats_creds.clone()).or_else(|| {
        let dir = cfg.identity.as_ref()?;
        Some(dir.join(crate::identity::SERVER_CREDS)).filter(|p| p.exists())
    });
    let client = connect_as(&parse_urls(&cfg.nats_url)?, &cfg.name, creds.as_deref()).await?;
    let js = async_nats::jetstream::new(client.clone());
    let names = atoll_sdk::protocol::Names::new(&cfg.cluster);
    let replicas = replicas::ensure(&js, &names, cfg.replicas).await?;
    let buckets = Buckets::open(client, &cfg.cluster).await?;
    let (tls, auth) = match identity {
        Some(id) => {
            let tokens = open_servers_only(&js, &names, ServersOnly::Tokens, replicas).await?;
            // A server without the CA key or the account seed (kept
            // offline) serves the API but lets no host join.
            let joining = match &cfg.identity {
                Some(dir) => match joining(dir, &cfg.cluster, &buckets, replicas).await {
                    Ok(j) => Some(Box::new(j)),
                    Err(e) => {
                        tracing::warn!(error = %e, "hosts cannot join through this server");
                        None
                    }
                },
                None => None,
            };
            let auth = api::Auth::Tokens {
                admin: Box::new(id.admin),
                tokens: Box::new(tokens),
                joining,
            };
            (Some(id.tls), auth)
        }
        None => {
            tracing::warn!(
                listen = %cfg.listen,
                "--insecure: the API takes plain HTTP without tokens; anyone who reaches it controls every host"
            );
            (None, api::Auth::Open)
        }
    };
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
    let vault = crate::secrets::Vault::open(&js, &names, replicas, cfg.identity.as_deref()).await;
    let vault = std::sync::Arc::new(vault.map_err(ServerError::Secrets)?);
    tokio::spawn(crate::secrets::answer::serve(
        crate::secrets::answer::Answering {
            client: buckets.js.client().clone(),
            names: names.clone(),
            vault: vault.clone(),
            assignments: buckets.assignments.clone(),
        },
    ));
    let cluster = Cluster::open(
        buckets,
        detection,
        fence_rx,
        replicas,
        cfg.policy.clone(),
        vault,
    )
    .await;
    let heartbeats = tokio::spawn(cluster::watch_heartbeats(cluster.clone()));
    let load = tokio::spawn(cluster::watch_load(cluster.clone()));
    let autoscaler = tokio::spawn(crate::autoscale::run(cluster.clone()));
    let control = tokio::spawn(controller::run(cluster.clone(), cfg.name.clone()));
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(listen = %cfg.listen, scheme, nats = %cfg.nats_url, replicas, "atoll server ready");
    let app = api::router(cluster, std::sync::Arc::new(auth));
    match tls {
        Some(tls) => {
            let listener =
                crate::tls_listener::TlsListener::new(listener, tls).map_err(|source| {
                    ServerError::Listen {
                        addr: cfg.listen,
                        source,
                    }
                })?;
            crate::api_serve::serve(listener, app, cfg.limits, shutdown).await
        }
        None => crate::api_serve::serve(listener, app, cfg.limits, shutdown).await,
    }
    leasing.abort();
    registry.abort();
    heartbeats.abort();
    load.abort();
    autoscaler.abort();
    control.abort();
    Ok(())
}
