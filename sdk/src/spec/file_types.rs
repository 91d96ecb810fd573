//! Plain types of Compose secrets and configs (read in `secrets.rs`).

use serde::{Deserialize, Serialize};

/// The largest value a secret or config may hold (Docker's limit for
/// secrets): it is kept in memory and in NATS messages.
pub const MAX_FILE_VALUE: usize = 512 * 1024;

/// A secret or a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Secret,
    Config,
}

impl FileKind {
    /// The Compose key (`secrets`, `configs`).
    pub fn key(self) -> &'static str {
        match self {
            FileKind::Secret => "secrets",
            FileKind::Config => "configs",
        }
    }

    /// For messages.
    pub fn noun(self) -> &'static str {
        match self {
            FileKind::Secret => "secret",
            FileKind::Config => "config",
        }
    }
}

/// Where a declared secret's or config's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    /// A file, relative to the Compose file's folder.
    File(String),
    /// A variable of the deploying client's environment.
    Environment(String),
    /// The value itself (configs only).
    Content(String),
}

/// One secret or config a service mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMount {
    pub kind: FileKind,
    /// The declared name.
    pub name: String,
    /// Absolute path inside a container (a component finds the value
    /// under `name` in `wasi:config/store`).
    pub target: String,
    /// Owner; `None`: the container's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// File mode: 0400 for secrets, 0444 for configs unless given.
    pub mode: u32,
    /// A keyed digest of the value, filled in by the server (empty in a
    /// freshly parsed file): which stored value the mount is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
}
