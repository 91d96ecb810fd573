//! The NATS protocol between the control plane and the hosts: subjects,
//! bucket names and message types. Every message carries [`VERSION`].

use crate::cluster::{HostInfo, InstanceStatus};
use crate::spec::{App, PortMapping};
use serde::{Deserialize, Serialize};

mod pulse;
pub use pulse::{Beat, Held, Pulse, Verdict, judge, resync_subject};

/// Protocol version carried by every message and record.
pub const VERSION: u32 = 1;

/// Default heartbeat period of a host.
pub const HEARTBEAT_INTERVAL_MS: u64 = 1000;
/// A host that missed this many heartbeat periods is `down`.
pub const MISSED_HEARTBEATS_DOWN: u64 = 3;

/// Subject and bucket names for one cluster. Bucket names carry the cluster
/// name so that several clusters can share one NATS.
#[derive(Debug, Clone)]
pub struct Names {
    pub cluster: String,
}

impl Names {
    pub fn new(cluster: &str) -> Self {
        Names {
            cluster: cluster.to_string(),
        }
    }
    /// Heartbeats (and immediate status changes) of one host.
    pub fn heartbeat(&self, host: &str) -> String {
        format!("atoll.{}.hb.{host}", self.cluster)
    }
    pub fn heartbeat_all(&self) -> String {
        format!("atoll.{}.hb.*", self.cluster)
    }
    /// The host a heartbeat or load sample subject names (what NATS
    /// permissions can tie to a host's credentials, unlike the payload).
    pub fn sender<'a>(&self, subject: &'a str) -> Option<&'a str> {
        let rest = subject
            .strip_prefix("atoll.")?
            .strip_prefix(self.cluster.as_str())?;
        let rest = (rest.strip_prefix(".hb."))
            .or_else(|| rest.strip_prefix(".metrics."))
            .or_else(|| rest.strip_prefix(".grant."))
            .or_else(|| rest.strip_prefix(".secrets."))?;
        (!rest.is_empty() && !rest.contains('.')).then_some(rest)
    }
    /// Load samples of one host ([`crate::metrics::HostSample`]), about
    /// once a second.
    pub fn metrics(&self, host: &str) -> String {
        format!("atoll.{}.metrics.{host}", self.cluster)
    }
    pub fn metrics_all(&self) -> String {
        format!("atoll.{}.metrics.*", self.cluster)
    }
    /// Wake-ups of services scaled to zero ([`Wake`]), sent by a gateway
    /// holding a request for one.
    pub fn wake(&self) -> String {
        format!("atoll.{}.wake", self.cluster)
    }
    /// Requests for instance logs, answered by `host` ([`LogRequest`]).
    pub fn log_requests(&self, host: &str) -> String {
        format!("atoll.{}.logs.{host}", self.cluster)
    }
    /// Commands to run in an instance of `host` ([`ExecRequest`]).
    pub fn exec_requests(&self, host: &str) -> String {
        format!("atoll.{}.exec.{host}", self.cluster)
    }
    /// A host's requests for a NATS user JWT that reaches the component
    /// state buckets of the apps assigned to it ([`StateGrantRequest`]),
    /// answered by a server with the cluster's identity.
    pub fn state_grant(&self, host: &str) -> String {
        format!("atoll.{}.grant.{host}", self.cluster)
    }
    pub fn state_grant_all(&self) -> String {
        format!("atoll.{}.grant.*", self.cluster)
    }
    /// Where a host asks for the secret and config values its instances
    /// mount ([`FileValuesRequest`]), answered by a server.
    pub fn file_values(&self, host: &str) -> String {
        format!("atoll.{}.secrets.{host}", self.cluster)
    }
    pub fn file_values_all(&self) -> String {
        format!("atoll.{}.secrets.*", self.cluster)
    }
    /// KV: `<app>.<kind>.<name>.<digest>` → an encrypted secret or config
    /// value (servers only).
    pub fn secrets_bucket(&self) -> String {
        format!("atoll-{}-secrets", self.cluster)
    }
    /// Cluster events, for `atoll events` and the dashboard.
    pub fn events(&self) -> String {
        format!("atoll.{}.events", self.cluster)
    }
    /// KV: app name → [`AppRecord`], with history (revisions).
    pub fn apps_bucket(&self) -> String {
        format!("atoll-{}-apps", self.cluster)
    }
    /// KV: host name → [`crate::cluster::Assignment`].
    pub fn assignments_bucket(&self) -> String {
        format!("atoll-{}-assignments", self.cluster)
    }
    /// KV: `app.service` → [`Endpoints`].
    pub fn endpoints_bucket(&self) -> String {
        format!("atoll-{}-endpoints", self.cluster)
    }
    /// KV: app name → [`AppStatus`] as the controller last saw it.
    pub fn status_bucket(&self) -> String {
        format!("atoll-{}-status", self.cluster)
    }
    /// KV: host name → [`RemovedHost`]: hosts an operator retired.
    pub fn removed_hosts_bucket(&self) -> String {
        format!("atoll-{}-removed-hosts", self.cluster)
    }
    /// KV: host name → [`HostAvailability`]: hosts cordoned or drained.
    pub fn availability_bucket(&self) -> String {
        format!("atoll-{}-availability", self.cluster)
    }
    /// KV: `app.service` → [`ScaleRecord`]: the autoscaler's decisions.
    pub fn scale_bucket(&self) -> String {
        format!("atoll-{}-scale", self.cluster)
    }
    /// KV: token id → the token's record (role, app, hash of its
    /// secret): the API tokens every server accepts. Only servers open it.
    pub fn tokens_bucket(&self) -> String {
        format!("atoll-{}-tokens", self.cluster)
    }
    /// KV: host name → the host's join ([`crate::api::JoinRecord`]): a name
    /// joins once. Only servers open it.
    pub fn joined_bucket(&self) -> String {
        format!("atoll-{}-joined", self.cluster)
    }
    /// KV: the controller's leader lease.
    pub fn leader_bucket(&self) -> String {
        format!("atoll-{}-leader", self.cluster)
    }
    /// KV: an app's component state (`wasi:keyvalue`), all its buckets.
    pub fn app_kv_bucket(&self, app: &str) -> String {
        format!("atoll-{}-kv-{app}", self.cluster)
    }
    /// Object store: uploaded components by digest.
    pub fn artifacts_bucket(&self) -> String {
        format!("atoll-{}-artifacts", self.cluster)
    }
}

/// The inbox prefix of a host's connection: `_INBOX_<host>`. A host's NATS
/// user may subscribe to its own inbox only (every user of the account
/// shares one subject space: with the common `_INBOX.` it would see the
/// replies and deliveries of every other client).
pub fn host_inbox(host: &str) -> String {
    format!("_INBOX_{host}")
}

/// The endpoints key of a service.
pub fn endpoints_key(app: &str, service: &str) -> String {
    format!("{app}.{service}")
}

/// Object names in the artifact store: digests without the `:`, which NATS
/// object names allow but keys derived from them do not.
pub fn artifact_object_name(digest: &str) -> String {
    digest.replace(':', "-")
}

/// A host's full heartbeat: who it is and the state of everything it
/// runs. Sent when that changes, when a server asks, and rarely
/// otherwise; [`Pulse`]s fill the intervals between.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub v: u32,
    pub host: HostInfo,
    pub seq: u64,
    /// The run of the host process (random per start of `atoll host`; 0
    /// from hosts older than the field, which send no pulses).
    #[serde(default)]
    pub run: u64,
    pub instances: Vec<InstanceStatus>,
}

/// The autoscaler's last decision for a service (`x-atoll.autoscale`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleRecord {
    pub v: u32,
    pub app: String,
    pub service: String,
    pub replicas: u32,
    /// When it was decided (Unix ms).
    pub at_ms: u64,
    pub reason: String,
}

/// A gateway holds a request for a service that has no instance (scaled
/// to zero) and asks for one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wake {
    pub app: String,
    pub service: String,
}

/// A host asks for the values of secrets and configs its instances of
/// `app` mount (answered only for mounts its assignment holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileValuesRequest {
    pub app: String,
    pub wanted: Vec<FileRef>,
}

/// One stored value of a secret or config: its app, kind, name and
/// keyed digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FileRef {
    pub kind: crate::spec::FileKind,
    pub name: String,
    pub digest: String,
}

/// The answer: the values asked for, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileValues {
    #[serde(default)]
    pub values: Vec<FileValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A value, as bytes (base64 in JSON).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileValue {
    #[serde(flatten)]
    pub of: FileRef,
    #[serde(with = "crate::base64_bytes")]
    pub value: Vec<u8>,
}

/// Never prints the value.
impl std::fmt::Debug for FileValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileValue({:?}, {} bytes)", self.of, self.value.len())
    }
}

/// A host asks for a NATS user JWT for its user key `user` (the public
/// key of the seed in its `nats.creds`) that reaches the component state
/// of the apps assigned to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateGrantRequest {
    pub user: String,
}

/// The answer: the JWT and the apps it covers, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateGrant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    #[serde(default)]
    pub apps: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An app's desired state, one KV entry per app; each deploy writes a new
/// revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppRecord {
    pub v: u32,
    pub revision: u64,
    /// Components resolved to [`crate::spec::Artifact::Stored`].
    pub spec: App,
    /// The Compose text as deployed.
    pub compose: String,
    pub deployed_at_ms: u64,
    pub warnings: Vec<String>,
    /// Set on a revision that restores an earlier one (`atoll rollback`,
    /// or a failed update rolled back): the revision it undoes.
    #[serde(default)]
    pub rollback_of: Option<u64>,
    /// Why this revision was made, for `atoll history`.
    #[serde(default)]
    pub cause: Option<String>,
    /// Set (to when it was written, Unix ms) on a revision `atoll import`
    /// writes only to rebuild the history, with later ones to follow: the
    /// controller waits for the import's last revision rather than
    /// rolling out each one on the way (see `IMPORT_WAIT_MS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importing_since_ms: Option<u64>,
    /// Each service's address, allocated by the server so that no two
    /// services of the cluster share one; a record written before
    /// allocation existed has none ([`AppRecord::vip`] falls back to the
    /// hash).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub vips: std::collections::BTreeMap<String, std::net::Ipv4Addr>,
    /// Set by `atoll stop` (cleared by `atoll start` and by a deploy): the
    /// app stays deployed, none of its instances runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

impl AppRecord {
    /// The address of `service`: the allocated one, else its hash.
    pub fn vip(&self, service: &str) -> std::net::Ipv4Addr {
        (self.vips.get(service).copied())
            .unwrap_or_else(|| crate::cluster::service_vip(&self.spec.name, service))
    }
}

/// How long a revision marked `importing_since_ms` holds the controller
/// back at most: an import that died half-way must not stall it for ever.
pub const IMPORT_WAIT_MS: u64 = 30_000;

impl AppRecord {
    /// Whether this is a history revision of an import still being
    /// written (at `now_ms`).
    pub fn is_importing(&self, now_ms: u64) -> bool {
        self.importing_since_ms
            .is_some_and(|since| now_ms < since.saturating_add(IMPORT_WAIT_MS))
    }
}

/// Where a service's ready instances are, for the gateways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoints {
    pub v: u32,
    pub app: String,
    pub service: String,
    pub ports: Vec<PortMapping>,
    pub timeout_ms: u64,
    pub instances: Vec<Endpoint>,
    /// Percent of requests for the canary instances (when there are any).
    #[serde(default)]
    pub canary_weight: u8,
    /// Scaled to zero when idle (`autoscale.min: 0`): a gateway holds a
    /// request while no instance is ready and asks for one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wake: bool,
    /// The service's address (`None` from a server before allocation:
    /// the hash of the names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<std::net::Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub host: String,
    /// The host's gateway address.
    pub address: String,
    /// The host's port for forwarded service calls.
    #[serde(default = "crate::cluster::default_mesh_port_value")]
    pub mesh_port: u16,
    /// A canary instance: gets the service's `canary_weight` share.
    #[serde(default)]
    pub canary: bool,
}

/// A host an operator retired (`atoll hosts rm`): its instances, even
/// those with named volumes, are placed elsewhere. A host of that name
/// that starts after the removal joins as a new host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedHost {
    pub name: String,
    /// Server clock, Unix milliseconds.
    pub removed_at_ms: u64,
}

/// Whether new instances may go to a host (`atoll hosts cordon`,
/// `drain`, `uncordon`), as Docker Swarm's node availability.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Takes new instances.
    #[default]
    Active,
    /// Takes no new instances; those it runs stay.
    Cordoned,
    /// Takes none, and what it runs is moved away (a rolling replacement,
    /// new instance ready before the old one stops).
    Draining,
}

impl std::fmt::Display for Availability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Availability::Active => "active",
            Availability::Cordoned => "cordoned",
            Availability::Draining => "draining",
        })
    }
}

/// An operator's word on a host's [`Availability`] (kept until changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAvailability {
    pub name: String,
    pub availability: Availability,
    /// A drain that moves services with named volumes too (`atoll hosts
    /// drain --volumes`): they stop here and start elsewhere on an empty
    /// volume. Without it they stay, since their data is here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub volumes: bool,
    /// Server clock, Unix milliseconds.
    pub since_ms: u64,
}

/// What the controller knows about an app beyond the instances themselves:
/// services it could not place, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppStatus {
    pub v: u32,
    pub revision: u64,
    /// service → why its instances could not all be placed.
    pub unplaced: std::collections::BTreeMap<String, String>,
    /// service → how many instances the controller assigned (for global
    /// services, the number of matching hosts).
    #[serde(default)]
    pub assigned: std::collections::BTreeMap<String, u32>,
    /// service → its rolling update, while one runs.
    #[serde(default)]
    pub rollouts: std::collections::BTreeMap<String, RolloutStatus>,
    /// service → the revision its last rolling update moved it to, and
    /// when that update finished (Unix ms): new instances are watched for
    /// `monitor` after it.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub updated: std::collections::BTreeMap<String, UpdateDone>,
}

/// When a service's rolling update finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateDone {
    pub revision: u64,
    pub at_ms: u64,
}

/// How a service's rolling update goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutStatus {
    /// New instances ready, of `replicas`.
    pub updated: u32,
    pub replicas: u32,
    /// Why the update stopped, when failures stopped it.
    pub failed: Option<String>,
    /// `pause`, `rollback` (being rolled back) when `failed` is set.
    pub action: Option<String>,
}

/// Asks a host for an instance's output (container stdout/stderr, or a
/// component's). The host publishes [`LogChunk`]s to `reply`: the last
/// `tail` lines, then, with `follow`, new lines as they come, for as long
/// as the request is renewed (sent again with the same `reply`) within
/// [`LOG_LEASE_MS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRequest {
    pub v: u32,
    pub instance: String,
    /// Lines from the end to send first; `None` sends the whole log.
    pub tail: Option<usize>,
    pub follow: bool,
    pub reply: String,
    /// Only lines written at or after this time (Unix ms, host clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// Send each line's time ([`LogChunk::times`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timestamps: bool,
}

/// A command to run in a container instance (`atoll exec`), sent to its
/// host by a server, answered with an [`ExecReply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecRequest {
    pub v: u32,
    pub instance: String,
    pub argv: Vec<String>,
    /// How long the command may run; it is killed after.
    pub timeout_ms: u64,
    /// An interactive session (`atoll exec -i`/`-t`): the command's
    /// bytes go both ways as [`crate::exec_session::Frame`]s, and it runs
    /// until it exits or the session ends; `timeout_ms` does not apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<ExecSession>,
}

/// Where an interactive exec's frames go. The host sends its frames
/// (numbered from 0: `Started` or `Exit` first) to the request's reply
/// subject, and reads the server's from `input`, a subject under its own
/// inbox (which only it may read and only servers may write); every
/// server frame carries the same reply subject, which keeps the host's
/// permission to answer there alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecSession {
    pub input: String,
    /// Give the command a terminal (its output then all comes as stdout).
    pub tty: bool,
    /// Pass the client's input (else the command's stdin is empty).
    pub stdin: bool,
    pub rows: u16,
    pub cols: u16,
}

/// What a command run by [`ExecRequest`] did. Output past
/// [`EXEC_OUTPUT_MAX`] bytes (each stream) is cut, and `truncated` says so.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecReply {
    /// Its exit status; `None` if it did not run or was killed.
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    #[serde(default)]
    pub truncated: bool,
    /// Why it could not run (no such instance here, not a container,
    /// the runtime failed, the timeout passed).
    #[serde(default)]
    pub error: Option<String>,
}

/// The output an exec keeps of each stream.
pub const EXEC_OUTPUT_MAX: usize = 1 << 20;

/// The longest an exec may run.
pub const EXEC_TIMEOUT_MAX_MS: u64 = 600_000;

/// How long a followed log keeps streaming without a renewal.
pub const LOG_LEASE_MS: u64 = 15_000;

/// Lines of one instance's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogChunk {
    pub instance: String,
    pub lines: Vec<String>,
    /// When each line was written (Unix ms, host clock; at most a tenth
    /// of a second late), when the request asked for `timestamps`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<u64>,
    /// No more chunks follow (the tail was sent and `follow` is off, or the
    /// log is gone).
    pub eof: bool,
    /// Why the log cannot be read.
    pub error: Option<String>,
}

/// A cluster event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub v: u32,
    pub at_ms: u64,
    /// `deploy`, `place`, `stop`, `host-down`, `host-up`, `instance-failed` …
    pub kind: String,
    pub app: Option<String>,
    pub message: String,
}

/// Milliseconds since the Unix epoch, for timestamps in messages.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod sender_tests {
    use super::Names;

    #[test]
    fn the_sender_is_the_last_token_of_its_own_subjects() {
        let n = Names::new("c1");
        assert_eq!(n.sender(&n.heartbeat("h1")), Some("h1"));
        assert_eq!(n.sender(&n.metrics("edge-7")), Some("edge-7"));
        assert_eq!(n.sender("atoll.c2.hb.h1"), None);
        assert_eq!(n.sender("atoll.c1.wake"), None);
        assert_eq!(n.sender("atoll.c1.hb."), None);
        assert_eq!(n.sender("atoll.c1.hb.a.b"), None);
        assert_eq!(n.sender("atoll.c10.hb.h1"), None);
    }
}
