//! The seam between the host and the ways it runs instances.
//!
//! The supervisor fetches an instance's artifact, asks the [`Driver`] for
//! its kind ([`Drivers::for_artifact`]) to start it, and from then on holds
//! a [`Running`] handle: it never knows whether that is a component or a
//! container. The gateway reaches a running instance through its
//! [`Reach`]; health checks and load metrics go through the same handle.
//!
//! A new runtime is a new folder with a `Driver` and a `Running`. Around
//! it: the kind of artifact it runs ([`Artifact`], fetched in
//! `supervisor/fetch.rs`), its place in [`Drivers`] and
//! [`Drivers::for_artifact`], and its construction in the agent. Neither
//! the scheduler nor the gateway changes, unless it is reached in a way
//! [`Reach`] does not know yet.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use atoll_sdk::cluster::InstanceSpec;
use atoll_sdk::spec::PortMapping;
use futures::future::BoxFuture;
use http::{Request, Response};

use crate::oci::pull::PulledImage;
use crate::wasm::ResponseBody;

/// How long an instance may take to stop before it is killed, when its
/// service sets no `stop_grace_period` (Compose's default).
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// An instance's artifact, fetched and ready for its driver.
pub(crate) enum Artifact {
    /// A Wasm component: its content digest and bytes.
    Component { digest: String, bytes: Vec<u8> },
    /// A container image in the host's image store.
    Image(Box<PulledImage>),
}

impl Artifact {
    /// What the artifact is, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Artifact::Component { .. } => "component",
            Artifact::Image(_) => "container image",
        }
    }
}

/// Why an instance did not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    /// It comes from the artifact or the service's settings: starting it
    /// again on this host cannot help until the app is deployed anew.
    #[error("{0}")]
    Permanent(String),
    /// Outside the artifact (the runtime, the network, the machine): the
    /// restart policy decides whether to try again.
    #[error("{0}")]
    Transient(String),
}

/// Why a command inside an instance (a health check) did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ExecError {
    /// It exited with another status than 0; `output` is the end of what
    /// it printed.
    #[error("{command} failed{}", if output.is_empty() { String::new() } else { format!(": {output}") })]
    Failed { command: String, output: String },
    /// It could not be run (the runtime failed, or it timed out).
    #[error("{0}")]
    Runtime(String),
    #[error("a {0} cannot run a command check")]
    Unsupported(&'static str),
}

/// How a driver's instances live, which decides what a failed liveness
/// check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// A process that runs until it exits: a restart is a new run, paced by
    /// the restart policy.
    Process,
    /// A fresh instance per request (components): nothing ever exits, and
    /// a restart only starts the health verdict from scratch.
    PerRequest,
}

/// How an instance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    Code(i32),
    Signal(i32),
    /// It ended, how is unknown (not the host's child, or stopped by the
    /// host without an exit status).
    Unknown,
}

/// CPU time (µs, cumulative) and memory in use (bytes), where known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub cpu_us: u64,
    pub memory: u64,
}

/// Serves HTTP requests in-process.
pub(crate) trait Handler: Send + Sync {
    fn handle(
        &self,
        req: Request<crate::gateway::RequestBody>,
    ) -> BoxFuture<'_, Response<ResponseBody>>;
}

/// How requests and connections reach a running instance.
#[derive(Clone)]
pub(crate) enum Reach {
    /// Called in-process (HTTP only).
    InProcess(Arc<dyn Handler>),
    /// Over the host's bridge at `address`, on the ports the service
    /// listens on (HTTP and TCP).
    Network {
        app: String,
        address: Ipv4Addr,
        ports: Vec<PortMapping>,
    },
}

impl Reach {
    /// The instance's port behind published port `port` (`None` for
    /// in-process instances, which take any port).
    pub(crate) fn target_port(&self, port: u16) -> Option<u16> {
        match self {
            Reach::InProcess(_) => None,
            Reach::Network { ports, .. } => {
                ports.iter().find(|p| p.published == port).map(|p| p.target)
            }
        }
    }
}

/// One instance that runs.
pub(crate) trait Running: Send + Sync {
    fn reach(&self) -> Reach;

    fn lifecycle(&self) -> Lifecycle;

    /// Resolves once it has ended: by itself, or after [`stop`](Self::stop).
    fn ended(&self) -> BoxFuture<'_, Exit>;

    /// Why it ended, for `atoll ps` (an OOM kill, its last output). Call it
    /// before the instance is removed.
    fn exit_reason(&self, exit: Exit) -> String;

    /// Stops it: SIGTERM, then SIGKILL after `grace` (an instance per
    /// request just ends).
    fn stop(&self, grace: Duration) -> BoxFuture<'_, ()>;

    /// Runs a health-check command inside it: `Ok` when it exits with 0,
    /// else what went wrong.
    fn exec<'a>(
        &'a self,
        argv: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), ExecError>>;

    /// What it uses now.
    fn usage(&self) -> Usage;

    /// Its main process, for the host's log.
    fn pid(&self) -> Option<i32> {
        None
    }

    /// The health check its artifact declares (an image's `HEALTHCHECK`),
    /// used when the service has none of its own.
    fn artifact_health(&self) -> Option<atoll_sdk::spec::Health> {
        None
    }
}

/// Starts instances of one kind of artifact.
pub(crate) trait Driver: Send + Sync {
    /// Starts an instance of `spec` from `artifact` (of this driver's kind).
    fn start<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        artifact: &'a Artifact,
    ) -> BoxFuture<'a, Result<Arc<dyn Running>, StartError>>;

    /// Starts an instance again in place once its last run ended (or its
    /// first start failed, when `previous` is `None`).
    fn restart<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        previous: Option<&'a Arc<dyn Running>>,
    ) -> BoxFuture<'a, Result<Arc<dyn Running>, StartError>>;

    /// An instance an earlier run of this host left running, to take over.
    fn adopt<'a>(&'a self, _spec: &'a InstanceSpec) -> BoxFuture<'a, Option<Arc<dyn Running>>> {
        Box::pin(async { None })
    }

    /// Stops the instance if it runs and removes everything it had.
    /// `running` is the handle when there is one (it may be between runs).
    fn remove<'a>(
        &'a self,
        id: &'a str,
        running: Option<Arc<dyn Running>>,
        grace: Duration,
    ) -> BoxFuture<'a, ()>;

    /// The host stops for good: remove what the driver left anywhere.
    fn teardown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The drivers of this host.
pub(crate) struct Drivers {
    pub wasm: Arc<dyn Driver>,
    /// `Err` says why this host cannot run containers (no OCI runtime, no
    /// bridge); components still run.
    pub containers: Result<Arc<dyn Driver>, String>,
}

impl Drivers {
    /// The driver for `artifact`, or why this host has none.
    pub(crate) fn for_artifact(&self, artifact: &Artifact) -> Result<Arc<dyn Driver>, &str> {
        match artifact {
            Artifact::Component { .. } => Ok(self.wasm.clone()),
            Artifact::Image(_) => match &self.containers {
                Ok(d) => Ok(d.clone()),
                Err(why) => Err(why.as_str()),
            },
        }
    }

    /// Every driver this host has.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<dyn Driver>> {
        std::iter::once(&self.wasm).chain(self.containers.as_ref().ok())
    }

    /// The driver that may hold an instance left by an earlier run.
    pub(crate) fn adopter(&self) -> Option<&Arc<dyn Driver>> {
        self.containers.as_ref().ok()
    }
}
