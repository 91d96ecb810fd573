//! `atoll host`: runs what is assigned to this host and serves the
//! published ports, joined to the cluster over NATS or alone.
//!
//! `run` has two phases. The local one needs no NATS: the data dir lock,
//! the drivers, the supervisor converging the cached assignment, and the
//! gateway serving published ports from endpoints made up from that
//! assignment (`offline`). The joined one ([`link`]) starts whenever NATS
//! answers — at once, or after a reboot without it — and feeds both the
//! assignment (`assignment`, through `assigned`, which never goes back to
//! an older revision) and the gateway's endpoints (from the bucket).
//! Nothing that runs is stopped by a link problem alone, except what asks
//! for it (`stop_after`, see `autonomy`).

mod assigned;
pub(crate) mod assignment;
mod autonomy;
mod data_dir;
mod duplicate;
mod exec;
mod exec_session;
pub(crate) mod heartbeat;
pub(crate) mod link;
mod offline;
#[cfg(test)]
mod tests;

use crate::app_state::{Grants, NatsKv};
use crate::artifacts::Artifacts;
use crate::container::network::Subnet;
use crate::container::{ContainerConfig, ContainerDriver, Containers};
use crate::driver::{Driver, Drivers};
use crate::file_values::FileValues;
use crate::gateway::{self, Gateway};
use crate::host_info;
use crate::joined::Joined;
use crate::local_instances::LocalInstances;
use crate::logs::LogPaths;
use crate::metrics::HostMetrics;
use crate::oci::pull::{PullConfig, Puller};
use crate::supervisor::{Sources, Supervisor};
use crate::wasm::{ComponentLinks, WasmConfig, WasmDriver, WasmEngine};
use atoll_sdk::cluster::Capacity;
use atoll_sdk::protocol::{Names, now_ms};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct HostConfig {
    /// One NATS URL or several, comma-separated (the client fails over
    /// between them).
    pub nats_url: String,
    pub cluster: String,
    pub name: String,
    pub bind: IpAddr,
    pub labels: BTreeMap<String, String>,
    pub data_dir: PathBuf,
    /// Schedulable capacity; the machine's when `None`.
    pub capacity: Option<Capacity>,
    /// The OCI runtime binary (`--oci-runtime`), youki by default.
    pub oci_runtime: PathBuf,
    /// Registries reached over plain HTTP (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// Registry credentials in docker's `config.json` format
    /// (`--registry-auth`); docker's own file when `None`.
    pub registry_auth: Option<PathBuf>,
    /// The containers' subnet (`--container-subnet`); picked when `None`.
    pub container_subnet: Option<Subnet>,
    /// The first host id of containers' user namespaces (`None`, with
    /// `--no-userns`: containers share the host's).
    pub userns: Option<u32>,
    /// Leave containers running at shutdown, for the next run to adopt.
    pub keep_containers: bool,
    /// Where other hosts forward service calls (`--mesh-port`).
    pub mesh_port: u16,
    /// The static init binary for `init: true` (`--init-binary`); a
    /// known one is looked for when `None`.
    pub init_binary: Option<PathBuf>,
    /// NATS user credentials (`--nats-creds`), for a NATS with accounts.
    pub nats_creds: Option<PathBuf>,
    /// The host's own identity (`DATA_DIR/identity`, from joining): its
    /// NATS user (used unless `nats_creds` says otherwise), its mesh
    /// certificate, the cluster's CA.
    pub identity: Option<crate::identity::Identity>,
    /// Where a host with an identity serves `/metrics` (`--metrics-listen`;
    /// loopback by default). Without one it shares the mesh port.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// What every listener grants a client (`--header-timeout`,
    /// `--max-connections`).
    pub server_limits: gateway::ServerLimits,
}

impl HostConfig {
    /// A host in cluster `default` with the defaults for everything else:
    /// no labels, the machine's capacity, youki, no insecure registries,
    /// docker's credentials, a picked subnet, the default mesh port.
    pub fn new(nats_url: &str, name: &str, bind: IpAddr, data_dir: PathBuf) -> HostConfig {
        HostConfig {
            nats_url: nats_url.to_string(),
            cluster: "default".into(),
            name: name.to_string(),
            bind,
            labels: BTreeMap::new(),
            data_dir,
            capacity: None,
            oci_runtime: PathBuf::from("youki"),
            insecure_registries: Vec::new(),
            registry_auth: None,
            container_subnet: None,
            userns: Some(crate::container::userns::DEFAULT_BASE),
            keep_containers: false,
            mesh_port: atoll_sdk::cluster::DEFAULT_MESH_PORT,
            init_binary: None,
            nats_creds: None,
            identity: None,
            metrics_listen: None,
            server_limits: Default::default(),
        }
    }

    /// The NATS credentials the host connects with.
    fn creds(&self) -> Option<PathBuf> {
        (self.nats_creds.clone()).or_else(|| self.identity.as_ref().map(|i| i.creds.clone()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("invalid NATS URL {url:?}: {message}")]
    NatsUrl { url: String, message: String },
    #[error(
        "another host named {name} is running (run {}); give this one another --name",
        run.map_or_else(|| "unknown".to_string(), |r| format!("{r:016x}"))
    )]
    Duplicate { name: String, run: Option<u64> },
    #[error("host identity: {0}")]
    Identity(String),
    #[error("the NATS link stopped: {0}")]
    Link(String),
    #[error("cannot start the Wasm engine: {0}")]
    Wasm(#[from] crate::wasm::WasmError),
    #[error("image store: {0}")]
    Store(#[from] crate::oci::store::StoreError),
    #[error(
        "data dir {} is in use by another atoll host{}; give each host its own --data-dir",
        path.display(),
        holder.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, holder: Option<u32> },
    #[error("data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs the host until `shutdown` completes, then stops its instances;
/// or until it must give way to another host of its name
/// ([`HostError::Duplicate`]), stopping them too.
pub async fn run(cfg: HostConfig, shutdown: impl Future<Output = ()>) -> Result<(), HostError> {
    let started = Instant::now();
    let files = crate::fd_limit::raise();
    tracing::debug!(files, "open files allowed");
    // Unreachable is waited out; malformed never gets better.
    let urls = atoll_sdk::nats::parse_urls(&cfg.nats_url).map_err(|e| HostError::NatsUrl {
        url: e.url,
        message: e.message,
    })?;
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| HostError::DataDir {
        path: cfg.data_dir.clone(),
        source,
    })?;
    data_dir::restrict(&cfg.data_dir, cfg.userns.is_some());
    // Two hosts on one data dir would fight over its containers, leases
    // and cache: the second is refused while the first runs (or stops).
    let _lock = data_dir::lock(&cfg.data_dir)?;
    let (host, joins) = Local::build(&cfg, &urls).await?;
    let assigned = host.run_cached(&cfg, started).await;
    let (routes, routes_rx) = tokio::sync::watch::channel(Arc::new(offline::endpoints(
        &assigned.current().assignment,
        &offline::Here {
            host: &cfg.name,
            address: &cfg.bind.to_string(),
            mesh_port: cfg.mesh_port,
        },
    )));
    let mut tasks = vec![
        tokio::spawn(gateway::run(host.gw.clone(), routes_rx)),
        tokio::spawn(gateway::run_mesh(
            host.gw.clone(),
            cfg.mesh_port,
            host.metrics.clone(),
            (cfg.metrics_listen)
                .unwrap_or_else(|| gateway::default_metrics_addr(cfg.bind, cfg.mesh_port)),
        )),
        tokio::spawn(link::watch_alone(
            host.client.clone(),
            assigned.clone(),
            started,
        )),
        tokio::spawn(crate::logs::times::keep(host.log_paths.clone())),
    ];
    // Service addresses live on the container bridge.
    if let Ok(c) = &host.containers {
        tasks.push(tokio::spawn(gateway::vips::run(host.gw.clone(), c.clone())));
    }
    let mut link = tokio::spawn(link::run(host.link(&cfg, urls, assigned, routes, joins)));
    tracing::info!(host = %cfg.name, bind = %cfg.bind, "atoll host ready; joining NATS");
    let outcome = tokio::select! {
        () = shutdown => Ok(()),
        ended = &mut link => Err(ended.unwrap_or_else(|e| HostError::Link(e.to_string()))),
    };
    link.abort();
    for t in &tasks {
        t.abort();
    }
    host.supervisor.shutdown(cfg.keep_containers).await;
    if let Some(client) = host.client.now() {
        // Bounded: NATS may be gone already (stopped with us).
        let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    }
    outcome
}

/// Component state: through the host's connection, or for a host with its
/// own NATS user (which reaches no state bucket) through state grants.
fn state_store(
    cfg: &HostConfig,
    urls: &[async_nats::ServerAddr],
    js: Joined<async_nats::jetstream::Context>,
    client: Joined<async_nats::Client>,
) -> Result<NatsKv, HostError> {
    let names = Names::new(&cfg.cluster);
    let kv = NatsKv::new(js, names.clone());
    match (&cfg.identity, &cfg.nats_creds) {
        (Some(id), None) => {
            let user = id.user().map_err(|e| HostError::Identity(e.to_string()))?;
            let grants = Grants::new(client, urls.to_vec(), user, &cfg.name, names);
            Ok(kv.with_grants(grants))
        }
        _ => Ok(kv),
    }
}

/// What runs without NATS, and the places where the joined phase puts
/// the NATS handles it opens.
struct Local {
    supervisor: Arc<Supervisor>,
    gw: Arc<Gateway>,
    metrics: Arc<HostMetrics>,
    containers: Result<Arc<Containers>, String>,
    log_paths: LogPaths,
    client: Joined<async_nats::Client>,
    run_id: u64,
}

impl Local {
    async fn build(
        cfg: &HostConfig,
        urls: &[async_nats::ServerAddr],
    ) -> Result<(Local, link::Joins), HostError> {
        let engine = WasmEngine::new(WasmConfig {
            cache_dir: cfg.data_dir.join("compiled"),
        })?;
        let local = LocalInstances::default();
        let (puller, containers) = image_support(cfg).await?;
        let log_paths = LogPaths::new(&cfg.data_dir);
        let (client_join, client) = Joined::channel();
        let (js_join, js) = Joined::channel();
        let (artifacts_join, artifacts) = Joined::channel();
        // The gateway first: components call services through it.
        let tls = match &cfg.identity {
            Some(id) => Some(
                gateway::mesh_tls::MeshTls::from_identity(id)
                    .map_err(|e| HostError::Identity(format!("{}: {e}", id.dir.display())))?,
            ),
            None => None,
        };
        let gw = Gateway::new(&cfg.name, cfg.bind, local.clone(), tls, cfg.server_limits);
        let links = ComponentLinks {
            outbound: Some(Arc::new(gateway::ServiceCalls::new(Arc::downgrade(&gw)))),
            kv: Some(Arc::new(state_store(cfg, urls, js, client.clone())?)),
        };
        let names = atoll_sdk::protocol::Names::new(&cfg.cluster);
        let files = Arc::new(FileValues::new(client.clone(), names, &cfg.name));
        let wasm = WasmDriver::new(engine, &cfg.name, log_paths.clone(), links, files.clone());
        let drivers = Drivers {
            wasm: Arc::new(wasm),
            containers: match &containers {
                Ok(c) => {
                    let driver = ContainerDriver::new(
                        c.clone(),
                        &cfg.name,
                        files.clone(),
                        Arc::downgrade(&gw),
                    );
                    Ok(Arc::new(driver) as Arc<dyn Driver>)
                }
                Err(why) => Err(why.clone()),
            },
        };
        let sources = Sources {
            artifacts: Artifacts::new(cfg.data_dir.join("artifacts"), artifacts),
            puller,
            files,
        };
        let supervisor = Supervisor::new(drivers, sources, local);
        let metrics = HostMetrics::new(&cfg.name, supervisor.clone(), client.clone());
        let joins = link::Joins {
            client: client_join,
            js: js_join,
            artifacts: artifacts_join,
        };
        let host = Local {
            supervisor,
            gw,
            metrics,
            containers,
            log_paths,
            client,
            run_id: rand::random(),
        };
        Ok((host, joins))
    }

    /// Starts the cached assignment (containers a previous run left that
    /// are not in it go first; the ones in it are adopted).
    async fn run_cached(&self, cfg: &HostConfig, started: Instant) -> Arc<assigned::Assigned> {
        let cache = cfg.data_dir.join("assignment.json");
        let cached = data_dir::load_cached(&cache).unwrap_or_default();
        if let Ok(containers) = &self.containers {
            let keep = (cached.assignment.instances.iter()).map(|i| i.id.clone());
            containers.remove_all_except(&keep.collect()).await;
        }
        if !cached.assignment.instances.is_empty() {
            tracing::info!(
                instances = cached.assignment.instances.len(),
                revision = cached.revision,
                "running the cached assignment"
            );
        }
        let assigned = assigned::Assigned::new(self.supervisor.clone(), cache, cached, started);
        assigned.set_alone_since(Some(started));
        assigned
    }

    fn link(
        &self,
        cfg: &HostConfig,
        urls: Vec<async_nats::ServerAddr>,
        assigned: Arc<assigned::Assigned>,
        routes: tokio::sync::watch::Sender<Arc<gateway::EndpointsMap>>,
        joins: link::Joins,
    ) -> link::Link {
        let capacity = cfg.capacity.unwrap_or_else(host_info::machine_capacity);
        let labels = &cfg.labels;
        let mut info =
            host_info::build(&cfg.name, &cfg.bind.to_string(), labels, capacity, now_ms());
        info.mesh_port = cfg.mesh_port;
        link::Link {
            urls,
            creds: cfg.creds(),
            may_create: cfg.identity.is_none() || cfg.nats_creds.is_some(),
            cluster: cfg.cluster.clone(),
            name: cfg.name.clone(),
            run_id: self.run_id,
            info,
            supervisor: self.supervisor.clone(),
            assigned,
            gw: self.gw.clone(),
            metrics: self.metrics.clone(),
            log_paths: self.log_paths.clone(),
            containers: self.containers.as_ref().ok().cloned(),
            routes,
            joins,
        }
    }
}

/// `atoll host --cleanup`: removes every container, namespace, address
/// lease, overlay and the bridge this data dir's host made, without
/// joining the cluster. For a host retired for good, or after a crash.
pub async fn cleanup(cfg: HostConfig) -> Result<(), HostError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| HostError::DataDir {
        path: cfg.data_dir.clone(),
        source,
    })?;
    let _lock = data_dir::lock(&cfg.data_dir)?;
    let puller = Puller::new(pull_config(&cfg))?;
    match Containers::for_cleanup(&container_config(&cfg), puller.store().clone()).await {
        Ok(containers) => containers.teardown().await,
        Err(why) => tracing::warn!(%why, "nothing to clean: containers are not available"),
    }
    Ok(())
}

fn pull_config(cfg: &HostConfig) -> PullConfig {
    let mut pull = PullConfig::new(cfg.data_dir.join("blobs"));
    pull.insecure_registries = cfg.insecure_registries.clone();
    pull.docker_config = cfg.registry_auth.clone();
    pull
}

fn container_config(cfg: &HostConfig) -> ContainerConfig {
    ContainerConfig {
        data_dir: cfg.data_dir.clone(),
        runtime: cfg.oci_runtime.clone(),
        subnet: cfg.container_subnet,
        init_binary: cfg.init_binary.clone(),
        userns: cfg.userns,
    }
}

/// The puller (always: Wasm artifacts need no OCI runtime) and the
/// host's containers, or why it cannot run any.
async fn image_support(
    cfg: &HostConfig,
) -> Result<(Arc<Puller>, Result<Arc<Containers>, String>), HostError> {
    let puller = Arc::new(Puller::new(pull_config(cfg))?);
    let containers = match Containers::new(&container_config(cfg), puller.store().clone()).await {
        Ok(c) => Ok(Arc::new(c)),
        Err(e) => {
            tracing::warn!(error = %e, "this host cannot run containers (Wasm is unaffected)");
            Err(e.to_string())
        }
    };
    Ok((puller, containers))
}
