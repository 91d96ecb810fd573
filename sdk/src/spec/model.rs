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
    /// The port opened on every host (the routing mesh).
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
}

impl Default for Deploy {
    fn default() -> Self {
        Deploy {
            mode: Mode::Replicated,
            replicas: 1,
            placement: Placement::default(),
            resources: Resources::default(),
        }
    }
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
