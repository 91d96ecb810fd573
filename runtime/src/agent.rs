//! `atoll host`: joins the cluster, heartbeats, watches its assignment and
//! runs it, serves the published ports. The assignment is cached on disk,
//! so a host that restarts while the control plane is unreachable goes on
//! running what it last knew.

mod assignment;
mod data_dir;
mod heartbeat;

use crate::app_state::NatsKv;
use crate::artifacts::Artifacts;
use crate::container::network::Subnet;
use crate::container::{ContainerConfig, ContainerDriver, Containers};
use crate::driver::{Driver, Drivers};
use crate::gateway::{self, Gateway};
use crate::host_info;
use crate::local_instances::LocalInstances;
use crate::logs::{self, LogPaths};
use crate::oci::pull::{PullConfig, Puller};
use crate::supervisor::{Sources, Supervisor};
use crate::wasm::{ComponentLinks, WasmConfig, WasmDriver, WasmEngine};
use atoll_sdk::cluster::Capacity;
use atoll_sdk::nats::{Buckets, Mirror, connect};
use atoll_sdk::protocol::{Endpoints, now_ms};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct HostConfig {
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
    /// Leave containers running at shutdown, for the next run to adopt.
    pub keep_containers: bool,
    /// Where other hosts forward service calls (`--mesh-port`).
    pub mesh_port: u16,
    /// The static init binary for `init: true` (`--init-binary`); a
    /// known one is looked for when `None`.
    pub init_binary: Option<PathBuf>,
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
            keep_containers: false,
            mesh_port: atoll_sdk::cluster::DEFAULT_MESH_PORT,
            init_binary: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{0}")]
    Nats(String),
    #[error(transparent)]
    Buckets(#[from] atoll_sdk::nats::BucketError),
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

/// Runs the host until `shutdown` completes, then stops its instances.
pub async fn run(cfg: HostConfig, shutdown: impl Future<Output = ()>) -> Result<(), HostError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| HostError::DataDir {
        path: cfg.data_dir.clone(),
        source,
    })?;
    // Two hosts on one data dir would fight over its containers, leases
    // and cache: the second is refused while the first runs (or stops).
    let _lock = data_dir::lock(&cfg.data_dir)?;
    let client = connect(&cfg.nats_url, &format!("host-{}", cfg.name))
        .await
        .map_err(|e| HostError::Nats(e.to_string()))?;
    let buckets = Buckets::open(client.clone(), &cfg.cluster).await?;
    let capacity = cfg.capacity.unwrap_or_else(host_info::machine_capacity);
    let mut info = host_info::build(
        &cfg.name,
        &cfg.bind.to_string(),
        &cfg.labels,
        capacity,
        now_ms(),
    );
    info.mesh_port = cfg.mesh_port;

    let engine = WasmEngine::new(WasmConfig {
        cache_dir: cfg.data_dir.join("compiled"),
    })?;
    let local = LocalInstances::default();
    let (puller, containers) = image_support(&cfg).await?;
    let log_paths = LogPaths::new(&cfg.data_dir);
    // The gateway first: components call services through it.
    let gw = Gateway::new(&cfg.name, cfg.bind, local.clone());
    let links = ComponentLinks {
        outbound: Some(Arc::new(gateway::ServiceCalls::new(Arc::downgrade(&gw)))),
        kv: Some(Arc::new(NatsKv::new(
            buckets.js.clone(),
            buckets.names.clone(),
        ))),
    };
    let wasm = WasmDriver::new(engine, &cfg.name, log_paths.clone(), links);
    let drivers = Drivers {
        wasm: Arc::new(wasm),
        containers: match &containers {
            Ok(c) => Ok(Arc::new(ContainerDriver::new(c.clone(), &cfg.name)) as Arc<dyn Driver>),
            Err(why) => Err(why.clone()),
        },
    };
    let sources = Sources {
        artifacts: Artifacts::new(cfg.data_dir.join("artifacts"), buckets.artifacts.clone()),
        puller,
    };
    let supervisor = Supervisor::new(drivers, sources, local);

    let cache = cfg.data_dir.join("assignment.json");
    let cached = data_dir::load_cached(&cache).unwrap_or_default();
    // Containers a previous run left behind that are not assigned any more
    // go now; the assigned ones are adopted by `converge`.
    if let Ok(containers) = &containers {
        let keep = cached.instances.iter().map(|i| i.id.clone()).collect();
        containers.remove_all_except(&keep).await;
    }
    if !cached.instances.is_empty() {
        tracing::info!(
            instances = cached.instances.len(),
            "running the cached assignment"
        );
        supervisor.converge(&cached);
    }
    let endpoints: Mirror<Endpoints> = Mirror::start(buckets.endpoints.clone()).await;
    // Service addresses live on the container bridge.
    let vips =
        (containers.as_ref().ok()).map(|c| tokio::spawn(gateway::vips::run(gw.clone(), c.clone())));
    let (wake_client, wake_subject) = (client.clone(), buckets.names.wake());
    gw.set_waker(Box::new(move |app, service| {
        let wake = atoll_sdk::protocol::Wake {
            app: app.to_string(),
            service: service.to_string(),
        };
        let (client, subject) = (wake_client.clone(), wake_subject.clone());
        if let Ok(bytes) = serde_json::to_vec(&wake) {
            tokio::spawn(async move { client.publish(subject, bytes.into()).await });
        }
    }));
    let metrics = crate::metrics::HostMetrics::new(&cfg.name, supervisor.clone(), client.clone());
    let tasks = [
        tokio::spawn(gateway::run(gw.clone(), endpoints.view())),
        tokio::spawn(gateway::run_mesh(
            gw.clone(),
            cfg.mesh_port,
            metrics.clone(),
        )),
        tokio::spawn(metrics.clone().publish(buckets.names.metrics(&cfg.name))),
        tokio::spawn(assignment::watch(
            buckets.assignments.clone(),
            cfg.name.clone(),
            cache,
            {
                let supervisor = supervisor.clone();
                move |a| supervisor.converge(a)
            },
        )),
        tokio::spawn(logs::serve(
            client.clone(),
            buckets.names.log_requests(&cfg.name),
            log_paths,
        )),
        tokio::spawn(heartbeat::send(
            client.clone(),
            buckets.names.heartbeat(&cfg.name),
            info,
            supervisor.clone(),
        )),
    ];
    tracing::info!(host = %cfg.name, bind = %cfg.bind, "atoll host ready");
    shutdown.await;
    for t in tasks.iter().chain(&vips) {
        t.abort();
    }
    supervisor.shutdown(cfg.keep_containers).await;
    // Bounded: NATS may be gone already (stopped with us).
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    drop(endpoints);
    Ok(())
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
    match image_support(&cfg).await?.1 {
        Ok(containers) => containers.teardown().await,
        Err(why) => tracing::warn!(%why, "nothing to clean: containers are not available"),
    }
    Ok(())
}

/// The puller (always: Wasm artifacts need no OCI runtime) and the
/// host's containers, or why it cannot run any.
async fn image_support(
    cfg: &HostConfig,
) -> Result<(Arc<Puller>, Result<Arc<Containers>, String>), HostError> {
    let mut pull = PullConfig::new(cfg.data_dir.join("blobs"));
    pull.insecure_registries = cfg.insecure_registries.clone();
    pull.docker_config = cfg.registry_auth.clone();
    let puller = Arc::new(Puller::new(pull)?);
    let container_cfg = ContainerConfig {
        data_dir: cfg.data_dir.clone(),
        runtime: cfg.oci_runtime.clone(),
        subnet: cfg.container_subnet,
        init_binary: cfg.init_binary.clone(),
    };
    let containers = match Containers::new(&container_cfg, puller.store().clone()).await {
        Ok(c) => Ok(Arc::new(c)),
        Err(e) => {
            tracing::warn!(error = %e, "this host cannot run containers (Wasm is unaffected)");
            Err(e.to_string())
        }
    };
    Ok((puller, containers))
}
