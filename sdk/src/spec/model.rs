//! Plain types of a parsed Compose application.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A parsed, validated application: the Compose file's `name` and services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub name: String,
    pub services: BTreeMap<String, Service>,
}

/// One service of an application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub artifact: Artifact,
    /// Per-request deadline (`x-atoll.timeout`), in milliseconds. Default 30 s.
    pub timeout_ms: u64,
    /// The Compose `environment`, in file order resolved to a map.
    pub environment: BTreeMap<String, String>,
    pub ports: Vec<PortMapping>,
    pub deploy: Deploy,
    /// How a container runs; components ignore it.
    #[serde(default)]
    pub container: ContainerOptions,
    /// `volumes:`: named volumes mounted into the container (empty for a
    /// component, which ignores them).
    #[serde(default)]
    pub volumes: Vec<VolumeMount>,
    /// `healthcheck:` or `x-atoll.health`; `None`: an instance is ready as
    /// soon as it runs.
    #[serde(default)]
    pub health: Option<Health>,
    /// `x-atoll.canary`: a second version run beside this one.
    #[serde(default)]
    pub canary: Option<Canary>,
    /// `x-atoll.autoscale`: the replica count follows the load.
    #[serde(default)]
    pub autoscale: Option<Autoscale>,
    /// `x-atoll.disconnect`: what a silent host's instances are taken for.
    #[serde(default, skip_serializing_if = "Disconnect::is_default")]
    pub disconnect: Disconnect,
    /// `secrets:` and `configs:` the service mounts (values kept apart,
    /// by the server).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<super::file_types::FileMount>,
    /// Set by `atoll restart` (when, Unix ms): a changed value is a
    /// changed service, whose instances are replaced with its update
    /// settings. Never in a Compose file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_at_ms: Option<u64>,
}

/// `x-atoll.disconnect`, modelled on Nomad's `disconnect` block: how long
/// the instances of a host that went silent count as still running, what
/// happens then, and which copy stays when the host is heard again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Disconnect {
    /// `lost_after`: how long (from when the server last heard the host)
    /// its instances count as running. 0: lost as soon as the host is down.
    pub lost_after_ms: u64,
    /// `replace`: start replacements elsewhere once lost.
    pub replace: bool,
    /// `reconcile`: which copy of a replaced instance stays on heal.
    pub reconcile: HealPolicy,
    /// `stop_after`: the cut-off host itself stops these instances after
    /// this long alone; `None`: never.
    pub stop_after_ms: Option<u64>,
}

impl Default for Disconnect {
    fn default() -> Self {
        Disconnect {
            lost_after_ms: 0,
            replace: true,
            reconcile: HealPolicy::BestScore,
            stop_after_ms: None,
        }
    }
}

impl Disconnect {
    pub fn is_default(&self) -> bool {
        *self == Disconnect::default()
    }
}

/// `x-atoll.disconnect.reconcile`: when a host is heard again and one of
/// its instances was replaced meanwhile, which of the two keeps running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealPolicy {
    KeepOriginal,
    KeepReplacement,
    /// The one on the host placement scores better (the original on a tie).
    #[default]
    BestScore,
}

impl HealPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            HealPolicy::KeepOriginal => "keep_original",
            HealPolicy::KeepReplacement => "keep_replacement",
            HealPolicy::BestScore => "best_score",
        }
    }
}

impl Service {
    /// Whether a named volume ties the service to the host that holds it
    /// (anonymous volumes are each instance's own).
    pub fn has_named_volumes(&self) -> bool {
        any_named(&self.volumes)
    }
}

/// Whether any of the mounts is of a named volume (data kept on the host
/// that holds it).
pub fn any_named(volumes: &[VolumeMount]) -> bool {
    volumes.iter().any(|v| v.name.is_some())
}

/// `x-atoll.autoscale`: replicas between `min` and `max`, as many as keep
/// the metric per instance at `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Autoscale {
    /// 0: scale to zero when idle (components only).
    pub min: u32,
    pub max: u32,
    pub metric: ScaleMetric,
    /// The target per instance, in thousandths (in-flight requests,
    /// requests per second, or percent of one CPU).
    pub target_milli: u64,
    /// Scale up to the highest need seen in this window.
    pub scale_up_window_ms: u64,
    /// Scale down only to the highest need seen in this window.
    pub scale_down_window_ms: u64,
}

/// What `x-atoll.autoscale.target` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleMetric {
    /// Requests in flight per instance (concurrency, as in Knative).
    Inflight,
    /// Requests per second per instance.
    Rps,
    /// CPU per instance, in percent of one CPU.
    Cpu,
}

/// How an instance's health is checked.
///
/// `ready` gates traffic: an instance receives requests only once it has
/// passed it, and leaves the endpoints as soon as it fails it `retries`
/// times in a row. `live` restarts an instance that fails it `retries`
/// times in a row; by default it is the same check (an unhealthy instance
/// is replaced, as in Swarm).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub ready: Check,
    /// `None`: never restarted for its health (`liveness: false`).
    pub live: Option<Check>,
}

/// One health check and its timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub probe: Probe,
    /// Between the end of one probe and the start of the next.
    pub interval_ms: u64,
    /// A probe that takes longer fails.
    pub timeout_ms: u64,
    /// Failures in a row that make the instance unhealthy.
    pub retries: u32,
    /// After a start, failures do not count (successes do) for this long.
    pub start_period_ms: u64,
}

/// What a health check runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Probe {
    /// `GET path` on the instance; healthy on a 2xx or 3xx answer. `port`:
    /// the container port (default the first `ports:` target, else 80;
    /// components answer on any port).
    Http { path: String, port: Option<u16> },
    /// `healthcheck.test`: run inside the container (`CMD` as given,
    /// `CMD-SHELL` as `/bin/sh -c …`); healthy on exit status 0.
    Command { argv: Vec<String> },
}

/// `x-atoll.canary`: `artifact` runs beside the service's own and gets
/// `weight` percent of its traffic (requests with `x-atoll-version: canary`
/// always reach it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    pub artifact: Artifact,
    /// 0–100.
    pub weight: u8,
    /// Instances of the canary. Default 1.
    pub replicas: u32,
}

/// A volume mounted at `target` inside the container.
///
/// A named volume is kept on the host under the host's data dir
/// (`<data dir>/volumes/<app>/<name>`): it outlives instances and deploys,
/// and ties the service to the host that holds it. An anonymous one
/// (`- /data`, or the long form without `source`) is the instance's own
/// and goes with it. A new volume is filled from the image's content at
/// `target` (files, owners, modes), as Docker does, unless `nocopy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// The volume's name, declared under the top-level `volumes:`; `None`
    /// for an anonymous volume.
    #[serde(default)]
    pub name: Option<String>,
    /// Absolute path inside the container, without a trailing slash.
    pub target: String,
    /// `:ro` / `read_only: true`: mounted read-only.
    pub read_only: bool,
    /// `volume: {nocopy: true}`: a new volume starts empty.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nocopy: bool,
}

/// A `tmpfs` mount: memory-backed, empty at every start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsMount {
    /// Absolute path inside the container.
    pub target: String,
    /// `size=` in bytes; `None`: the kernel's default (half the memory).
    #[serde(default)]
    pub size: Option<u64>,
    /// `mode=` (octal in Compose); `None`: 1777, as Docker.
    #[serde(default)]
    pub mode: Option<u32>,
    /// Mount flags given with it: `ro`, `noexec`, `nosuid`, `nodev` (and
    /// their opposites).
    #[serde(default, skip_serializing_if = "is_empty")]
    pub flags: Vec<String>,
}

/// One `ulimits:` entry: a resource limit of the container's processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// Compose's name: `nofile`, `nproc`, `memlock`, … (`RLIMIT_` + upper
    /// case is the kernel's).
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_empty<T>(v: &[T]) -> bool {
    v.is_empty()
}

/// The Compose keys that shape a container (`command`, `entrypoint`,
/// `user`, `read_only`, capabilities, restart policy, stop grace period).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerOptions {
    /// `entrypoint:`; replaces the image's Entrypoint and, as in Docker,
    /// drops the image's Cmd unless `command` is set too.
    pub entrypoint: Option<Vec<String>>,
    /// `command:`; replaces the image's Cmd. The string form is split like a
    /// shell would split words (quotes respected, no expansion).
    pub command: Option<Vec<String>>,
    /// `working_dir:`; absolute.
    pub working_dir: Option<String>,
    /// `user:` (`uid[:gid]` or a name from the image's /etc/passwd).
    pub user: Option<String>,
    /// `read_only: true`: the root filesystem is mounted read-only.
    pub read_only: bool,
    /// `security_opt: [no-new-privileges:true]` (or `no-new-privileges`).
    pub no_new_privileges: bool,
    /// `cap_add:`, upper case without the `CAP_` prefix (`NET_ADMIN`, or `ALL`).
    pub cap_add: Vec<String>,
    /// `cap_drop:`, same spelling.
    pub cap_drop: Vec<String>,
    /// `stop_grace_period:` in milliseconds; `None` means 10 s.
    pub stop_grace_ms: Option<u64>,
    /// `restart:` or `deploy.restart_policy` (the latter wins).
    pub restart: RestartPolicy,
    /// `init: true`: a small init runs as PID 1, forwards signals to the
    /// command and reaps its orphans.
    #[serde(skip_serializing_if = "is_false")]
    pub init: bool,
    /// `stop_signal:`, without the `SIG` prefix (`QUIT`); `None`: the
    /// image's `StopSignal`, else `TERM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `shm_size:` in bytes; `None`: 64 MiB, as Docker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// `ulimits:`; `nofile` defaults to 65536 (or the host's hard limit).
    #[serde(skip_serializing_if = "is_empty")]
    pub ulimits: Vec<Ulimit>,
    /// `sysctls:`, namespaced ones only (`net.*`, IPC, `fs.mqueue.*`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// `tmpfs:` and `volumes: [{type: tmpfs}]`.
    #[serde(skip_serializing_if = "is_empty")]
    pub tmpfs: Vec<TmpfsMount>,
    /// `healthcheck: {disable: true}` (or `test: ["NONE"]`): the image's
    /// `HEALTHCHECK` is not used either.
    #[serde(skip_serializing_if = "is_false")]
    pub no_image_healthcheck: bool,
    /// `x-atoll.userns: false`: shares the host's user namespace (root
    /// inside is root on the host) on a host that gives containers their
    /// own.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_userns: bool,
}

/// When an exited container is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    /// `restart: no` / `condition: none`.
    None,
    /// `restart: on-failure` / `condition: on-failure`: after a non-zero exit.
    OnFailure,
    /// `restart: always | unless-stopped` / `condition: any` (the default,
    /// as in Swarm: an orchestrator keeps services running).
    #[default]
    Any,
}

/// `deploy.restart_policy` (Compose `restart:` maps onto `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartPolicy {
    pub condition: RestartCondition,
    /// `delay`: the first wait before a restart, doubled on each further
    /// restart up to 30 s. `None` means 100 ms.
    pub delay_ms: Option<u64>,
    /// `max_attempts`: restarts allowed within `window` (or ever, without a
    /// window); past it the instance stays failed.
    pub max_attempts: Option<u32>,
    /// `window`: how long a container must run for its start to count as
    /// a success (which resets the backoff and the attempt count).
    pub window_ms: Option<u64>,
}

/// What a service runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "ref")]
pub enum Artifact {
    /// `x-atoll.component`: a local `.wasm` file, as written in the Compose
    /// file (absolute or relative to the Compose file). The server replaces
    /// it with [`Artifact::Stored`] once the file has been uploaded.
    Component(String),
    /// A component uploaded to the cluster's artifact store, by digest
    /// (`sha256:<hex>`).
    Stored(String),
    /// `image:`: an OCI image or Wasm OCI artifact reference.
    Image(String),
}

/// One `ports:` entry: `"8080:80"`, `"8080"`, or the long form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// The port opened on every host (the routing mesh). 0 in a parsed
    /// file: a free port the server picks (and keeps across deploys).
    pub published: u16,
    /// The port the service listens on (ignored by components, which answer
    /// any port).
    pub target: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Replicated,
    /// One instance on every host that satisfies the constraints.
    Global,
}

/// The `deploy:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    pub mode: Mode,
    /// Ignored in global mode. Default 1.
    pub replicas: u32,
    pub placement: Placement,
    pub resources: Resources,
    /// `update_config`: how a new version replaces the running one.
    #[serde(default)]
    pub update: UpdateConfig,
    /// `rollback_config`: how a rollback replaces the failed version.
    #[serde(default = "UpdateConfig::rollback_default")]
    pub rollback: UpdateConfig,
}

impl Default for Deploy {
    fn default() -> Self {
        Deploy {
            mode: Mode::Replicated,
            replicas: 1,
            placement: Placement::default(),
            resources: Resources::default(),
            update: UpdateConfig::default(),
            rollback: UpdateConfig::rollback_default(),
        }
    }
}

/// `update_config` / `rollback_config`. The defaults replace one instance
/// at a time, starting the new one first, so nothing stops serving.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UpdateConfig {
    /// Instances replaced at once; 0 means all at once.
    pub parallelism: u32,
    /// Wait between one batch being ready and the next starting.
    pub delay_ms: u64,
    pub order: UpdateOrder,
    /// How long each new instance is watched after it became ready; a
    /// failure in that time counts against the update.
    pub monitor_ms: u64,
    pub failure_action: FailureAction,
    /// Share of new instances that may fail before `failure_action`.
    pub max_failure_ratio: f64,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            parallelism: 1,
            delay_ms: 0,
            order: UpdateOrder::StartFirst,
            monitor_ms: 5_000,
            failure_action: FailureAction::Rollback,
            max_failure_ratio: 0.0,
        }
    }
}

impl UpdateConfig {
    /// A failing rollback pauses rather than rolling back again.
    pub fn rollback_default() -> Self {
        UpdateConfig {
            failure_action: FailureAction::Pause,
            ..UpdateConfig::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// Stop an old instance, then start its replacement.
    StopFirst,
    /// Start the replacement, wait until it is ready, then stop the old one.
    StartFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureAction {
    /// Stop the update where it is.
    Pause,
    /// Go on regardless.
    Continue,
    /// Go back to the previous revision.
    Rollback,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Placement {
    pub constraints: Vec<Constraint>,
    pub preferences: Vec<Preference>,
    pub max_replicas_per_node: Option<u32>,
}

/// A placement constraint such as `node.labels.zone == east`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    pub field: ConstraintField,
    pub op: ConstraintOp,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum ConstraintField {
    /// `node.labels.<key>`
    Label(String),
    /// `node.hostname`
    Hostname,
    /// `node.platform.arch`
    Arch,
    /// `node.platform.os`
    Os,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConstraintOp {
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

/// `spread: node.labels.<key>`: spread instances evenly over the values of
/// that label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preference {
    pub spread_label: String,
}

/// `deploy.resources`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Resources {
    pub limits: ResourceSpec,
    pub reservations: ResourceSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ResourceSpec {
    /// Bytes (`memory: 64M` → 67108864).
    pub memory: Option<u64>,
    /// Thousandths of a CPU (`cpus: "0.5"` → 500).
    pub cpus_milli: Option<u32>,
    /// `pids:` (limits only): most processes a container may have.
    #[serde(default)]
    pub pids: Option<u32>,
}

impl ConstraintField {
    /// The Compose spelling of the field (`node.labels.zone`).
    pub fn compose_name(&self) -> String {
        match self {
            ConstraintField::Label(k) => format!("node.labels.{k}"),
            ConstraintField::Hostname => "node.hostname".into(),
            ConstraintField::Arch => "node.platform.arch".into(),
            ConstraintField::Os => "node.platform.os".into(),
        }
    }
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            ConstraintOp::Eq => "==",
            ConstraintOp::Ne => "!=",
        };
        write!(f, "{} {} {}", self.field.compose_name(), op, self.value)
    }
}
