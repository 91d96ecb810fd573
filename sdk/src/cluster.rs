//! The cluster model: hosts, instances, assignments and their states.
//!
//! The server writes each host's [`Assignment`] (the full set of instances
//! that host must run); hosts report [`InstanceStatus`] in their
//! [`crate::protocol::Heartbeat`]s.

use crate::spec::{ContainerOptions, PortMapping, ResourceSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a host says about itself when it joins and in every heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub name: String,
    /// The address its gateway listens on (`--bind`).
    pub address: String,
    /// The port on `address` where it takes service calls forwarded by
    /// other hosts (`--mesh-port`).
    #[serde(default = "default_mesh_port")]
    pub mesh_port: u16,
    /// User labels plus the automatic `arch`, `os` and `hostname`.
    pub labels: BTreeMap<String, String>,
    pub arch: String,
    pub os: String,
    pub capacity: Capacity,
    /// Unix milliseconds when this host process started; a change means the
    /// host restarted.
    pub started_at_ms: u64,
    pub version: String,
}

/// The virtual IP of service `service` of `app` before allocation: where
/// its name resolves inside containers (`10.90.0.0/16`, from a hash of the
/// two names). The server starts each service's allocation here and moves
/// on past addresses other services hold (`scheduler/src/vips.rs`).
pub fn service_vip(app: &str, service: &str) -> std::net::Ipv4Addr {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("{app}/{service}").as_bytes());
    // The last byte avoids 0 and 255.
    std::net::Ipv4Addr::new(10, 90, d[0], 1 + d[1] % 254)
}

/// The default `--mesh-port`.
pub const DEFAULT_MESH_PORT: u16 = 7421;

fn default_mesh_port() -> u16 {
    DEFAULT_MESH_PORT
}

#[doc(hidden)]
pub fn default_mesh_port_value() -> u16 {
    DEFAULT_MESH_PORT
}

/// Schedulable resources of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capacity {
    pub memory: u64,
    pub cpus_milli: u32,
}

/// How the server sees a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    /// Heartbeats arrive.
    Ready,
    /// No heartbeat for the down timeout, but some of its instances still
    /// count as running (`x-atoll.disconnect.lost_after`, or the control
    /// plane holds after a mass loss).
    Disconnected,
    /// Silent, and none of its instances counts as running any more.
    Down,
}

impl HostState {
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Ready => "ready",
            HostState::Disconnected => "disconnected",
            HostState::Down => "down",
        }
    }
}

/// The lifecycle of an instance, as its host reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// Assigned, not yet seen by its host.
    Pending,
    /// Fetching its artifact.
    Pulling,
    /// Compiling / creating.
    Starting,
    Running,
    /// Could not start, or died; `reason` says why.
    Failed,
    Stopping,
    Stopped,
    /// Its host is down.
    Lost,
}

impl InstanceState {
    /// Whether an instance in this state with this health verdict takes
    /// traffic: running, and healthy if it has a check (a check that has
    /// not passed yet, or failed, keeps it out).
    pub fn is_ready(self, health: Option<HealthState>) -> bool {
        self == InstanceState::Running && matches!(health, None | Some(HealthState::Healthy))
    }

    /// Whether the instance runs or is on its way to running (pending,
    /// pulling, starting). When a service scales down, instances that are
    /// not active go first: they serve nothing.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            InstanceState::Pending
                | InstanceState::Pulling
                | InstanceState::Starting
                | InstanceState::Running
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Pulling => "pulling",
            InstanceState::Starting => "starting",
            InstanceState::Running => "running",
            InstanceState::Failed => "failed",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Lost => "lost",
        }
    }
}

impl std::fmt::Display for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a host needs to run one instance. Self-contained: a host never reads
/// the app's desired state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    /// Unique in the cluster (`<app>-<service>-<6 chars>`).
    pub id: String,
    pub app: String,
    pub service: String,
    /// The app revision this instance was made from.
    pub revision: u64,
    /// Digest of the service's spec: instances with the same spec hash are
    /// interchangeable, a different one means the service changed.
    pub spec_hash: String,
    pub artifact: ArtifactRef,
    pub env: BTreeMap<String, String>,
    pub ports: Vec<PortMapping>,
    pub limits: ResourceSpec,
    pub reservations: ResourceSpec,
    pub timeout_ms: u64,
    /// How a container runs (ignored for components).
    #[serde(default)]
    pub container: ContainerOptions,
    /// Names of every service of the app (a container's `/etc/hosts`
    /// maps each to its address: `service_vips`, else [`service_vip`]).
    #[serde(default)]
    pub app_services: Vec<String>,
    /// The addresses the server allocated to the app's services.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_vips: BTreeMap<String, std::net::Ipv4Addr>,
    /// Named volumes mounted into a container.
    #[serde(default)]
    pub volumes: Vec<crate::spec::VolumeMount>,
    /// Secrets and configs it mounts, by digest (the values are asked for
    /// apart, [`crate::protocol::FileValuesRequest`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::spec::FileMount>,
    /// How the host checks the instance's health (`None`: ready once it
    /// runs).
    #[serde(default)]
    pub health: Option<crate::spec::Health>,
    /// A canary instance (`x-atoll.canary`): balanced by the canary's weight.
    #[serde(default)]
    pub canary: bool,
    /// How many instances before this one, in a line of replacements, were
    /// given up on by their hosts (0 for a first placement).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// Hosts where earlier instances of that line failed for good:
    /// placement prefers any other host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub avoid: Vec<String>,
    /// The service's `x-atoll.disconnect` (its host reads `stop_after`).
    #[serde(default, skip_serializing_if = "crate::spec::Disconnect::is_default")]
    pub disconnect: crate::spec::Disconnect,
    /// The instance this one replaced while its host was silent: on heal,
    /// one of the two stays (`disconnect.reconcile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where a host gets an instance's code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "ref")]
pub enum ArtifactRef {
    /// A component in the cluster's object store, by digest.
    Stored(String),
    /// An OCI reference.
    Image(String),
}

/// The full set of instances a host must run. Level-triggered: the host
/// makes what it runs match this, whatever it missed before.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Assignment {
    pub host: String,
    pub instances: Vec<InstanceSpec>,
    /// The lease epoch of the leader that wrote it (0: before epochs):
    /// a write of a deposed leader shows as an older epoch.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub epoch: u64,
}

pub(crate) fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// Where an instance stands with its health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Not passed yet: no traffic.
    Starting,
    Healthy,
    /// Failed `retries` times in a row: no traffic.
    Unhealthy,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Starting => "starting",
            HealthState::Healthy => "healthy",
            HealthState::Unhealthy => "unhealthy",
        }
    }
}

/// What a host reports about one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub id: String,
    pub app: String,
    pub service: String,
    pub revision: u64,
    /// The [`InstanceSpec::spec_hash`] it runs (empty from hosts older
    /// than the field): a control plane that lost its assignments (NATS
    /// restored from an export) adopts the instances whose hash its
    /// desired state wants instead of starting new ones.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub spec_hash: String,
    pub state: InstanceState,
    /// Why it failed or stopped.
    pub reason: Option<String>,
    /// Unix milliseconds of the last state change.
    pub since_ms: u64,
    /// Times the host started it again after it exited.
    #[serde(default)]
    pub restarts: u32,
    /// While `pulling`: bytes downloaded so far and the image's size.
    #[serde(default)]
    pub pull: Option<PullBytes>,
    /// The health check's verdict, for instances that have one.
    #[serde(default)]
    pub health: Option<HealthState>,
    /// Set with `failed` when the host will not start it again (its restart
    /// policy or its liveness restarts are used up, or it cannot run
    /// here): the controller may re-place it elsewhere.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gave_up: bool,
}

impl InstanceStatus {
    /// An instance in `state` with nothing more to say: no reason,
    /// restarts, pull, health or spec hash, and no time of its own.
    pub fn new(id: &str, app: &str, service: &str, revision: u64, state: InstanceState) -> Self {
        InstanceStatus {
            id: id.to_string(),
            app: app.to_string(),
            service: service.to_string(),
            revision,
            spec_hash: String::new(),
            state,
            reason: None,
            since_ms: 0,
            restarts: 0,
            pull: None,
            health: None,
            gave_up: false,
        }
    }

    /// [`InstanceStatus::new`] for `spec`, with its spec hash.
    pub fn of(spec: &InstanceSpec, state: InstanceState) -> Self {
        InstanceStatus {
            spec_hash: spec.spec_hash.clone(),
            ..InstanceStatus::new(&spec.id, &spec.app, &spec.service, spec.revision, state)
        }
    }
}

/// Progress of an image pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullBytes {
    pub done: u64,
    pub total: u64,
}

/// The machine's hostname, or `localhost` when it cannot be read. Default
/// name of a host, and part of a server's default name.
pub fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::{HealthState, InstanceState, service_vip};

    #[test]
    fn ready_means_running_and_healthy_if_checked() {
        use HealthState::*;
        assert!(InstanceState::Running.is_ready(None));
        assert!(InstanceState::Running.is_ready(Some(Healthy)));
        assert!(!InstanceState::Running.is_ready(Some(Starting)));
        assert!(!InstanceState::Running.is_ready(Some(Unhealthy)));
        assert!(!InstanceState::Starting.is_ready(None));
        assert!(!InstanceState::Stopping.is_ready(Some(Healthy)));
    }

    #[test]
    fn active_means_running_or_on_the_way() {
        use InstanceState::*;
        for s in [Pending, Pulling, Starting, Running] {
            assert!(s.is_active(), "{s}");
        }
        for s in [Failed, Stopping, Stopped, Lost] {
            assert!(!s.is_active(), "{s}");
        }
    }

    #[test]
    fn service_addresses_are_stable_distinct_and_usable() {
        let api = service_vip("shop", "api");
        assert_eq!(api, service_vip("shop", "api"), "the same on every host");
        assert_ne!(api, service_vip("shop", "web"));
        assert_ne!(api, service_vip("blog", "api"));
        for (app, svc) in [
            ("a", "b"),
            ("shop", "api"),
            ("x", "y"),
            ("three-tier", "data"),
        ] {
            let o = service_vip(app, svc).octets();
            assert_eq!((o[0], o[1]), (10, 90));
            assert!(o[3] != 0 && o[3] != 255, "{o:?}");
        }
    }
}
