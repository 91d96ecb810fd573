//! The container driver: runs image services through an OCI runtime
//! binary ([`oci_runtime`]: youki, runc or crun), each container in its own
//! network namespace on the host's bridge ([`network`]), its root an overlay
//! over the shared unpacked image ([`rootfs`]), its OCI runtime spec built
//! from the service ([`spec`], written into the bundle by [`bundle`]).
//!
//! Layout under the host's data dir: `containers/<instance>/` is the bundle
//! (`config.json`, `rootfs` overlay mount, `upper`, `work`, the etc files
//! and `container.log`); `youki/` is the runtime's state; `images/` the
//! unpacked images; `net/` the bridge's subnet and address leases.

mod addressing;
pub(crate) mod bundle;
pub(crate) mod cgroup;
mod copy_up;
mod driver;
pub(crate) mod facts;
mod firewall;
mod forwarding;
mod inside;
pub(crate) mod network;
pub(crate) mod oci_runtime;
pub(crate) mod process;
pub(crate) mod pty;
pub(crate) mod rootfs;
mod secret_files;
pub(crate) mod spec;
pub(crate) mod userns;
mod volumes;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use atoll_sdk::cluster::InstanceSpec;

use crate::driver::{ExecError, Exit};
use crate::oci::pull::PulledImage;
use crate::oci::store::BlobStore;
pub(crate) use driver::ContainerDriver;
use network::{NetError, Network, Subnet};
use oci_runtime::{OciRuntime, RuntimeError};
use rootfs::{Images, RootfsError};
use spec::CommandError;

/// After SIGKILL, how long to wait for the process to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Network(#[from] NetError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    User(#[from] crate::container::spec::user::UserError),
    #[error("runtime spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("runtime spec: {0}")]
    SpecJson(#[from] serde_json::Error),
    #[error(
        "`init: true` needs a static init binary on the host (tini-static, from Debian's tini package, or --init-binary); none was found"
    )]
    NoInit,
    #[error("container {id} has lost its network address; it must be started anew")]
    NoAddress { id: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl ContainerError {
    /// Errors that come from the image or the service's settings: starting
    /// again cannot help until the app is deployed anew.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ContainerError::Command(_)
                | ContainerError::User(_)
                | ContainerError::NoInit
                | ContainerError::Rootfs(RootfsError::Unpack { .. })
        )
    }
}

/// Host settings for containers.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    pub data_dir: PathBuf,
    /// `--oci-runtime`: youki, runc or crun.
    pub runtime: PathBuf,
    /// `--container-subnet`; picked automatically when `None`.
    pub subnet: Option<Subnet>,
    /// `--init-binary`: the static init for `init: true`; looked for when
    /// `None` ([`find_init`]).
    pub init_binary: Option<PathBuf>,
    /// `--userns`: containers' user namespaces start at this host id.
    pub userns: Option<u32>,
}

/// Static init binaries a host may mount into any image for `init: true`
/// (a dynamically linked one would need the host's libraries inside).
const INIT_CANDIDATES: &[&str] = &[
    "/usr/bin/tini-static",
    "/usr/local/bin/tini-static",
    "/usr/bin/docker-init",
    "/usr/libexec/docker/docker-init",
];

/// The first static init binary this host has.
pub(crate) fn find_init() -> Option<PathBuf> {
    INIT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// A container's output, in its bundle.
pub(crate) const LOG_FILE: &str = "container.log";

/// A started container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub pid: i32,
    pub address: Ipv4Addr,
}

pub struct Containers {
    runtime: OciRuntime,
    network: Network,
    images: Images,
    dir: PathBuf,
    /// Named volumes, `<app>/<name>` below.
    volumes: PathBuf,
    /// The init binary for `init: true`, if the host has one.
    init: Option<PathBuf>,
    /// The first host id of containers' user namespaces, if they get one.
    userns: Option<u32>,
}

impl Containers {
    /// Checks the runtime binary runs and sets up the bridge.
    pub async fn new(
        cfg: &ContainerConfig,
        store: BlobStore,
    ) -> Result<Containers, ContainerError> {
        let runtime = OciRuntime::new(&cfg.runtime, cfg.data_dir.join("youki"));
        let version = runtime.version().await?;
        Containers::open(cfg, store, runtime, &version).await
    }

    /// For `atoll host --cleanup`: what a host left behind is removed even
    /// when its runtime binary is gone (processes are killed through their
    /// cgroups, the runtime's state directory removed by hand).
    pub async fn for_cleanup(
        cfg: &ContainerConfig,
        store: BlobStore,
    ) -> Result<Containers, ContainerError> {
        let runtime = OciRuntime::new(&cfg.runtime, cfg.data_dir.join("youki"));
        let version = match runtime.version().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "no OCI runtime: removing containers without it");
                "missing".to_string()
            }
        };
        Containers::open(cfg, store, runtime, &version).await
    }

    async fn open(
        cfg: &ContainerConfig,
        store: BlobStore,
        runtime: OciRuntime,
        version: &str,
    ) -> Result<Containers, ContainerError> {
        let network = Network::setup(&cfg.data_dir, cfg.subnet).await?;
        if let Err(e) = process::become_subreaper() {
            tracing::warn!(error = %e, "cannot become a subreaper: container exit codes will be unknown");
        }
        tracing::info!(runtime = %cfg.runtime.display(), %version, bridge = %network.bridge, subnet = %network.subnet, "containers enabled");
        let dir = cfg.data_dir.join("containers");
        std::fs::create_dir_all(&dir).map_err(|source| ContainerError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        let init = cfg.init_binary.clone().or_else(find_init);
        match &init {
            Some(path) => tracing::info!(init = %path.display(), "init binary for `init: true`"),
            None => tracing::warn!(
                "no static init binary (tini-static): services with `init: true` will fail here"
            ),
        }
        Ok(Containers {
            runtime,
            network,
            images: Images::new(cfg.data_dir.join("images"), store),
            dir,
            volumes: cfg.data_dir.join("volumes"),
            init,
            userns: match cfg.userns {
                Some(base) => userns::probe(&cfg.data_dir, base).await,
                None => None,
            },
        })
    }

    /// The host's container bridge (made when the first container starts).
    pub fn bridge(&self) -> &str {
        &self.network.bridge
    }

    /// Makes the bridge now if no container has yet (service addresses
    /// live on it).
    pub async fn network_ready(&self) -> Result<(), ContainerError> {
        Ok(self.network.ready().await?)
    }

    /// The bridge's own address (the containers' gateway), where the
    /// service proxy's catch-all listens.
    pub fn bridge_address(&self) -> Ipv4Addr {
        self.network.subnet.gateway()
    }

    /// Tells the firewall which service addresses this host serves (and
    /// where their other ports go: the catch-all's port on
    /// [`Containers::bridge_address`]) and which of the cluster's ports
    /// containers must not reach.
    pub async fn serve_addresses(
        &self,
        served: std::collections::BTreeSet<(String, Ipv4Addr, u16)>,
        catch_all: Option<u16>,
        cluster_ports: std::collections::BTreeSet<(Ipv4Addr, u16)>,
    ) -> Result<(), ContainerError> {
        Ok(self.network.serve(served, catch_all, cluster_ports).await?)
    }

    pub fn bundle(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.bundle(id).join(LOG_FILE)
    }

    /// Prepares the bundle and network of `spec` and starts it.
    pub async fn start(
        &self,
        spec: &InstanceSpec,
        image: &PulledImage,
        host: &str,
        files: &[crate::file_values::Mounted],
    ) -> Result<Started, ContainerError> {
        let lower = self.images.rootfs(image).await?;
        let bundle = self.bundle(&spec.id);
        // A leftover from a crashed attempt is cleared first (there can be
        // none without a bundle: spare the runtime call).
        if bundle.exists() {
            let _ = self.runtime.delete(&spec.id).await;
        }
        let userns = self.userns.filter(|_| !spec.container.no_userns);
        let attachment = (self.network).attach(&spec.id, &spec.app, userns).await?;
        let prepared = bundle::prepare(&bundle::Inputs {
            volumes_root: &self.volumes,
            bundle: &bundle,
            lower: &lower,
            spec,
            image,
            host,
            net: &attachment,
            init: self.init.as_deref(),
            files,
        });
        if let Err(e) = prepared {
            self.network.detach(&spec.id).await;
            return Err(e);
        }
        let pid = self.create_and_start(&spec.id, &bundle).await?;
        Ok(Started {
            pid,
            address: attachment.address,
        })
    }

    /// Starts an exited container again in its existing bundle and network.
    ///
    /// The runtime's record of the last run is deleted first. When that
    /// fails (there is none: the last `create` failed), the new `create`
    /// still runs, and its error, if any, is the one reported: a clean-up
    /// error must not hide why the container does not run.
    pub async fn restart(&self, id: &str) -> Result<Started, ContainerError> {
        let address = self
            .network
            .address_of(id)
            .ok_or_else(|| ContainerError::NoAddress { id: id.to_string() })?;
        let cleanup = self.runtime.delete(id).await.err();
        match self.create_and_start(id, &self.bundle(id)).await {
            Ok(pid) => Ok(Started { pid, address }),
            Err(cause) => {
                if let Some(e) = cleanup {
                    tracing::debug!(instance = id, error = %e, "runtime delete before the restart failed");
                }
                Err(cause)
            }
        }
    }

    async fn create_and_start(&self, id: &str, bundle: &Path) -> Result<i32, ContainerError> {
        let log = self.log_path(id);
        self.runtime.create(id, bundle, &log).await?;
        self.runtime.start(id).await?;
        let pid_file = bundle.join("container.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| ContainerError::Io {
                what: format!("reading {}", pid_file.display()),
                source: std::io::Error::other("no pid written by the runtime"),
            })?;
        Ok(pid)
    }

    /// A container left running by an earlier run of this host, if it
    /// still runs.
    pub async fn adopt(&self, id: &str) -> Option<Started> {
        // Only an instance with a bundle can have a container.
        if !self.bundle(id).join("config.json").exists() {
            return None;
        }
        let state = self.runtime.state(id).await.ok().flatten()?;
        let pid = state.pid.filter(|_| state.status == "running")?;
        let address = self.network.address_of(id)?;
        Some(Started { pid, address })
    }

    /// Why it ended, for `atoll ps`: the exit code or signal, an OOM kill,
    /// and the last lines it printed. Reads the cgroup, so call it before
    /// the container is deleted.
    pub fn exit_reason(&self, id: &str, exit: Exit, memory_limit: Option<u64>) -> String {
        let oom = cgroup::oom_killed(id);
        let what = match (oom, exit) {
            (true, _) => match memory_limit {
                Some(m) => format!("OOM killed (memory limit {} MiB)", m >> 20),
                None => "OOM killed".to_string(),
            },
            (false, Exit::Code(c)) => format!("exited with code {c}"),
            (false, Exit::Signal(s)) => format!("killed by signal {s}"),
            (false, Exit::Unknown) => "exited".to_string(),
        };
        let tail = oci_runtime::last_lines(&self.log_path(id), 3);
        if tail.is_empty() {
            what
        } else {
            format!("{what}: {tail}")
        }
    }

    /// Runs a health check command inside the container: `Ok` when it
    /// exits with 0, else what it printed last.
    pub async fn exec_check(
        &self,
        id: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<(), ExecError> {
        match self.runtime.exec(id, argv, timeout).await {
            Ok((true, _)) => Ok(()),
            Ok((false, output)) => Err(ExecError::Failed {
                command: argv.join(" "),
                output,
            }),
            Err(e) => Err(ExecError::Runtime(e.to_string())),
        }
    }

    /// Runs `argv` inside the container for `atoll exec`: its whole output
    /// and status (the runtime's own complaints, such as a command not
    /// found, come on standard error with a non-zero status).
    pub async fn exec_command(
        &self,
        id: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<std::process::Output, String> {
        self.runtime
            .exec_output(id, argv, timeout)
            .await
            .map_err(|e| e.to_string())
    }

    /// Starts `argv` inside the container for an interactive exec
    /// ([`oci_runtime::OciRuntime::exec_interactive`]); the runtime's
    /// state dir holds its PID file.
    pub fn exec_interactive(
        &self,
        id: &str,
        argv: &[String],
        tty: Option<(u16, u16)>,
    ) -> Result<oci_runtime::Interactive, String> {
        self.runtime
            .exec_interactive(id, argv, tty)
            .map_err(|e| e.to_string())
    }

    /// Stops a running container: its stop signal (`SIGTERM` unless the
    /// service or the image says otherwise), SIGKILL after `grace`.
    pub async fn stop(&self, id: &str, pid: Option<i32>, grace: Duration) {
        let Some(pid) = pid.or(self.adopt(id).await.map(|s| s.pid)) else {
            return;
        };
        if !process::exists(pid) {
            return;
        }
        let signal = facts::Facts::read(&self.bundle(id)).stop_signal;
        if let Err(e) = self.runtime.kill(id, &signal).await {
            tracing::debug!(instance = id, %signal, error = %e, "stop signal through the runtime failed");
        }
        if tokio::time::timeout(grace, process::wait(pid))
            .await
            .is_ok()
        {
            return;
        }
        tracing::info!(
            instance = id,
            ?grace,
            "did not stop within its grace period; killing"
        );
        let _ = self.runtime.kill(id, "KILL").await;
        let _ = tokio::time::timeout(KILL_WAIT, process::wait(pid)).await;
    }

    /// Stops the container if it runs and removes everything it had: the
    /// runtime's state and cgroup, the namespace and veth, the address, the
    /// overlay and the bundle (its log included).
    pub async fn remove(&self, id: &str, pid: Option<i32>, grace: Duration) {
        self.stop(id, pid, grace).await;
        if let Err(e) = self.runtime.delete(id).await {
            tracing::warn!(instance = id, error = %e, "runtime delete failed");
            // What `delete` would have removed (a runtime that is gone
            // cannot).
            let state = self.runtime.root.join(id);
            if state.is_dir() {
                let _ = std::fs::remove_dir_all(&state);
            }
        }
        let owned = id.to_string();
        let left = tokio::task::spawn_blocking(move || {
            cgroup::remove_leftovers(&owned, Duration::from_secs(30))
        })
        .await
        .unwrap_or_default();
        if !left.is_empty() {
            tracing::warn!(
                instance = id,
                ?left,
                "cgroups could not be removed within 30 s"
            );
        }
        self.network.detach(id).await;
        let bundle = self.bundle(id);
        tokio::task::spawn_blocking(move || rootfs::remove_bundle(&bundle))
            .await
            .ok();
    }

    /// Removes every container of this host and its bridge: what a host
    /// stopping for good (not for an upgrade) leaves behind is nothing.
    pub async fn teardown(&self) {
        self.remove_all_except(&HashSet::new()).await;
        self.network.remove_bridge().await;
    }

    /// Removes containers, bundles and leases of instances not in `keep`
    /// (left by a run of this host that ended without cleaning up).
    pub async fn remove_all_except(&self, keep: &HashSet<String>) {
        let mut ids: HashSet<String> = self.network.leased().into_iter().collect();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            ids.insert(entry.file_name().to_string_lossy().into_owned());
        }
        for id in ids.difference(keep) {
            tracing::info!(instance = %id, "removing a container no longer assigned");
            self.remove(id, None, Duration::from_secs(2)).await;
        }
    }
}
