//! Request and answer types of the server's HTTP API (`/v1/...`).

use crate::cluster::{Capacity, HostState, InstanceState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /v1/apps`.
#[derive(Clone, Serialize, Deserialize)]
pub struct DeployRequest {
    /// The Compose text.
    pub compose: String,
    /// The app name when the file has no `name:` (the CLI sends the file's
    /// folder name).
    pub default_name: String,
    /// Component path as written in the file → digest of the uploaded file
    /// (`PUT /v1/artifacts/{digest}`).
    pub artifacts: BTreeMap<String, String>,
    /// Values of the top-level `secrets:` the CLI read (`file:`,
    /// `environment:`), by name; the Compose text holds none.
    #[serde(default, with = "crate::base64_bytes::map")]
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// Values of the top-level `configs:` read from `file:` or
    /// `environment:` (`content:` is in the text).
    #[serde(default, with = "crate::base64_bytes::map")]
    pub configs: BTreeMap<String, Vec<u8>>,
    /// The values of the variables the file uses (`${VAR}`) that the CLI
    /// found set (environment, `.env`, `--env-file`); the server
    /// substitutes from these only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// The active profiles (`--profile`, `COMPOSE_PROFILES`): services that
    /// name others are left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Check and compare with what runs, change nothing (`atoll deploy
    /// --dry-run`): the answer is a [`DeployPlan`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// Names the secrets and configs sent, never their values.
impl std::fmt::Debug for DeployRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployRequest")
            .field("compose", &self.compose)
            .field("default_name", &self.default_name)
            .field("artifacts", &self.artifacts)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("configs", &self.configs.keys().collect::<Vec<_>>())
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .field("profiles", &self.profiles)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployResponse {
    pub name: String,
    pub revision: u64,
    /// True when the file matched the current revision and nothing changed.
    pub unchanged: bool,
    pub warnings: Vec<String>,
}

/// What a deploy would change (`atoll deploy --dry-run`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeployPlan {
    pub app: String,
    /// The revision running now; 0 for a new app.
    pub current_revision: u64,
    pub services: Vec<ServicePlan>,
    pub warnings: Vec<String>,
    /// The app is stopped (`atoll stop`): deploying starts it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

/// One service in a [`DeployPlan`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServicePlan {
    pub name: String,
    /// `added`, `changed`, `removed` or `unchanged`.
    pub change: String,
    /// The settings that differ (`image`, `environment`,
    /// `deploy.replicas`…).
    pub fields: Vec<String>,
    /// Instances that would start and stop (a changed service is replaced
    /// by a rolling update; a scaled one only adds or removes).
    pub start: u32,
    pub stop: u32,
}

/// An error answer: a message and, for Compose files, one line per problem.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default)]
    pub details: Vec<String>,
}

/// One row of `atoll ls`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppView {
    pub name: String,
    pub revision: u64,
    /// `running`, `deploying`, `updating` (a rolling update runs),
    /// `paused` (failures stopped it), `degraded`, `failed` or `pending`.
    pub status: String,
    /// Why, when not `running`.
    pub message: Option<String>,
    pub services: Vec<ServiceView>,
    pub deployed_at_ms: u64,
    pub warnings: Vec<String>,
    /// How the last change goes or went: `updating web 2/4`, `paused: …`,
    /// `rolling back: …`, `rolled back: …`; `None` when there is nothing to
    /// say.
    #[serde(default)]
    pub update: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceView {
    pub name: String,
    pub kind: String,
    pub artifact: String,
    pub mode: String,
    /// Desired replicas (global: the number of matching hosts).
    pub desired: u32,
    pub running: u32,
    pub ports: Vec<String>,
    pub message: Option<String>,
}

/// One revision of an app, for `atoll history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevisionView {
    pub revision: u64,
    pub deployed_at_ms: u64,
    /// `deploy`, or what a rollback restored and why.
    pub cause: Option<String>,
    /// The revision a rollback undid.
    pub rollback_of: Option<u64>,
    /// service → what it runs.
    pub services: BTreeMap<String, String>,
    /// Whether this is the revision deployed now.
    pub current: bool,
}

/// `POST /v1/apps/{name}/rollback`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// Only this service; the whole app when `None`.
    pub service: Option<String>,
    /// The revision to go back to; the one before the current when `None`.
    pub to: Option<u64>,
}

/// `POST /v1/apps/{name}/scale`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleRequest {
    pub service: String,
    pub replicas: u32,
}

/// `POST /v1/apps/{name}/restart`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestartRequest {
    /// Only this service; every service of the app when `None`.
    #[serde(default)]
    pub service: Option<String>,
}

/// What a rollback did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackResponse {
    /// The new revision, which restores `restored`.
    pub revision: u64,
    pub restored: u64,
}

/// One row of `atoll ps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceView {
    pub app: String,
    pub service: String,
    pub id: String,
    pub host: String,
    pub state: InstanceState,
    pub revision: u64,
    pub reason: Option<String>,
    pub since_ms: u64,
    /// Times its host started it again after it exited.
    #[serde(default)]
    pub restarts: u32,
    /// While `pulling`: bytes so far and in all.
    #[serde(default)]
    pub pull: Option<crate::cluster::PullBytes>,
    /// The health check's verdict, for instances that have one.
    #[serde(default)]
    pub health: Option<crate::cluster::HealthState>,
    /// Takes traffic: running, and healthy if it has a check.
    #[serde(default)]
    pub ready: bool,
    /// A canary instance (`x-atoll.canary`).
    #[serde(default)]
    pub canary: bool,
    /// How many instances it replaces that failed for good (0: none).
    #[serde(default)]
    pub attempt: u32,
    /// Its host is silent: `state` is what it last said, not confirmed
    /// since (the instance still counts as running, per its
    /// `x-atoll.disconnect.lost_after`).
    #[serde(default)]
    pub unconfirmed: bool,
    /// The instance this one replaced while its host was silent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// Its service's published ports (those the server picked included),
    /// open on every host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<crate::spec::PortMapping>,
}

/// `POST /v1/tokens`: a new token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateTokenRequest {
    pub role: crate::auth::Role,
    /// How long it is valid; none: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// The one app a `deploy` or `read` token may touch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
}

/// `POST /v1/join` (a `host` token): a host asks for its identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The host's name in the cluster.
    pub name: String,
}

/// A host's identity, kept in its data dir (`identity/`): its NATS user
/// (which may publish and read only its own subjects and keys), its mesh
/// certificate and key, and the cluster's CA that signs every host's and
/// the API's certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostIdentity {
    pub cluster: String,
    pub name: String,
    /// A `.creds` file: the user's JWT and its nkey seed.
    pub nats_creds: String,
    pub ca_pem: String,
    pub mesh_cert_pem: String,
    pub mesh_key_pem: String,
}

/// A host's join, as servers keep it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRecord {
    /// The token it joined with.
    pub token: String,
    /// Its NATS user's public key.
    pub user: String,
    pub joined_ms: u64,
}

/// The name a host's mesh certificate is for, and that peers check when
/// they connect to it: a reserved domain, so that it can never name the
/// API or another service.
pub fn mesh_name(host: &str) -> String {
    format!("{host}.hosts.atoll.invalid")
}

/// A token as `atoll token ls` shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub role: crate::auth::Role,
    #[serde(default)]
    pub app: Option<String>,
    pub created_ms: u64,
    /// When it stops being valid (Unix ms); none: until revoked.
    #[serde(default)]
    pub expires_ms: Option<u64>,
}

/// The answer to `POST /v1/tokens`: the only time the token is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub view: TokenView,
}

/// One row of `atoll servers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerView {
    pub name: String,
    /// Its API address.
    pub address: String,
    /// It holds the leader lease.
    pub leader: bool,
    /// The lease's epoch (the leader's; 0 for the others).
    pub epoch: u64,
    /// The leader: since its last lease renewal; the others: since they
    /// last said they are there.
    pub age_ms: u64,
}

/// `PUT /v1/hosts/{name}/availability`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AvailabilityRequest {
    pub availability: crate::protocol::Availability,
    /// With a drain: move services with named volumes too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub volumes: bool,
    /// Change nothing; answer what the change would find.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// What a change of availability found: the instances the host runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AvailabilityResponse {
    pub host: String,
    pub availability: crate::protocol::Availability,
    pub instances: u32,
    /// The services with named volumes that run on the host (`APP/SERVICE`):
    /// what a drain with `volumes` starts elsewhere on an empty volume.
    #[serde(default)]
    pub volume_services: Vec<String>,
}

/// `GET /v1/version`: the server's release.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionView {
    pub version: String,
}

/// One row of `atoll hosts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostView {
    pub name: String,
    pub state: HostState,
    pub address: String,
    pub labels: BTreeMap<String, String>,
    pub arch: String,
    pub os: String,
    pub capacity: Capacity,
    /// Reserved by the instances assigned to it.
    pub allocated: Capacity,
    pub instances: u32,
    pub last_seen_ms: u64,
    pub version: String,
    /// `active`, or `cordoned`/`draining` (`atoll hosts cordon`, `drain`).
    #[serde(default)]
    pub availability: crate::protocol::Availability,
}

/// `atoll top`: the load of every service and host right now.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TopView {
    pub services: Vec<ServiceTop>,
    pub hosts: Vec<HostTop>,
}

/// One service in `atoll top`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceTop {
    pub app: String,
    pub service: String,
    /// Instances wanted (the autoscaler's count for an autoscaled service).
    pub replicas: u32,
    /// Instances taking traffic.
    pub ready: u32,
    pub rps: f64,
    /// Average requests in flight, summed over the instances.
    pub inflight: f64,
    /// 99th percentile latency over the last second, in milliseconds
    /// (a bucket bound); `None` without requests.
    pub p99_ms: Option<u64>,
    /// Percent of one CPU, summed over the instances.
    pub cpu_percent: f64,
    pub memory: u64,
    /// `min–max on <metric> <target>` for an autoscaled service.
    pub autoscale: Option<String>,
}

/// One host in `atoll top`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostTop {
    pub name: String,
    pub state: String,
    /// Percent of the whole machine; `None` before its second sample.
    pub cpu_percent: Option<f64>,
    pub memory_used: u64,
    pub memory_total: u64,
    pub instances: u32,
}

/// What `POST /v1/import` did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportResponse {
    pub imported: Vec<ImportedApp>,
    /// Apps left as they were, and why.
    pub skipped: Vec<SkippedApp>,
    /// Scale records written.
    pub scale: usize,
    /// Retired hosts recorded (those not known yet).
    pub removed_hosts: usize,
    /// What the cluster lacks to run everything it now wants (components
    /// missing from its artifact store).
    pub warnings: Vec<String>,
}

/// An app an import wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportedApp {
    pub name: String,
    /// Revisions written into its history.
    pub revisions: usize,
    /// The revision deployed now.
    pub current: u64,
}

/// An app an import left alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SkippedApp {
    pub name: String,
    pub why: String,
}
