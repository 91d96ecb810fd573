//! The file of `atoll export` / `atoll import`: a cluster's desired state
//! (every app with the revisions its history keeps, the autoscaler's
//! counts, retired hosts) as JSON, and the checks an import runs on it
//! before anything is written.
//!
//! Components are referred to by digest; their bytes are not in the file
//! (hosts keep the ones they ran in their caches, see the import's
//! warnings).

use crate::protocol::{AppRecord, RemovedHost, ScaleRecord};
use crate::spec::Artifact;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Version of the file format (`"v"`).
pub const EXPORT_VERSION: u32 = 1;

/// A cluster's desired state, as `GET /v1/export` answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportFile {
    /// [`EXPORT_VERSION`].
    pub v: u32,
    /// The cluster it was exported from (shown, not checked: a state may
    /// be restored into a cluster of another name).
    pub cluster: String,
    /// When it was exported (server clock, Unix ms).
    pub exported_at_ms: u64,
    /// By name.
    pub apps: Vec<ExportedApp>,
    /// The autoscaler's decisions.
    #[serde(default)]
    pub scale: Vec<ScaleRecord>,
    /// Hosts an operator retired.
    #[serde(default)]
    pub removed_hosts: Vec<RemovedHost>,
}

/// One app and the revisions its history keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedApp {
    pub name: String,
    /// The revision deployed now (not always the highest: a forced import
    /// of an older state leaves higher ones in the history).
    pub current: u64,
    /// Oldest first.
    pub revisions: Vec<AppRecord>,
}

impl ExportedApp {
    /// The revision deployed now.
    pub fn current_record(&self) -> Option<&AppRecord> {
        self.revisions.iter().find(|r| r.revision == self.current)
    }
}

/// Why a file cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not an atoll export: {0}")]
    NotExport(String),
    #[error(
        "export format version {found} is not supported (this atoll reads version {EXPORT_VERSION})"
    )]
    Version { found: String },
    #[error("{what}: {message}")]
    Malformed { what: String, message: String },
    #[error("app {app}: {why}")]
    Invalid { app: String, why: String },
}

/// Reads and checks an export file: JSON, the version this code reads,
/// every app, revision, scale record and host of the expected shape, and
/// each app consistent (see [`check_app`]). Errors name what is wrong.
pub fn parse(bytes: &[u8]) -> Result<ExportFile, ExportError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ExportError::NotJson(e.to_string()))?;
    let obj = (value.as_object())
        .ok_or_else(|| ExportError::NotExport("the file is not a JSON object".into()))?;
    // The version first: a file of another version may differ anywhere.
    match obj.get("v") {
        None => return Err(ExportError::NotExport("no \"v\" (format version)".into())),
        Some(v) if v.as_u64() == Some(u64::from(EXPORT_VERSION)) => {}
        Some(v) => {
            return Err(ExportError::Version {
                found: v.to_string(),
            });
        }
    }
    let apps = (obj.get("apps").and_then(|a| a.as_array()))
        .ok_or_else(|| ExportError::NotExport("no \"apps\" list".into()))?;
    // Each app on its own, so that an error names the app and revision.
    for (i, app) in apps.iter().enumerate() {
        let name = app.get("name").and_then(|n| n.as_str());
        let what = name.map_or(format!("apps[{i}]"), |n| format!("app {n}"));
        let revisions = app.get("revisions").and_then(|r| r.as_array());
        for (j, r) in revisions.into_iter().flatten().enumerate() {
            let rev = r.get("revision").and_then(|n| n.as_u64());
            let at = rev.map_or(format!("revisions[{j}]"), |n| format!("revision {n}"));
            serde_json::from_value::<AppRecord>(r.clone()).map_err(|e| ExportError::Malformed {
                what: format!("{what} {at}"),
                message: e.to_string(),
            })?;
        }
        serde_json::from_value::<ExportedApp>(app.clone()).map_err(|e| ExportError::Malformed {
            what: what.clone(),
            message: e.to_string(),
        })?;
    }
    let file: ExportFile = serde_json::from_value(value).map_err(|e| ExportError::Malformed {
        what: "the file".into(),
        message: e.to_string(),
    })?;
    let mut names = BTreeSet::new();
    for app in &file.apps {
        check_app(app)?;
        if !names.insert(app.name.as_str()) {
            return Err(invalid(&app.name, "appears twice".into()));
        }
    }
    Ok(file)
}

fn invalid(app: &str, why: String) -> ExportError {
    ExportError::Invalid {
        app: app.to_string(),
        why,
    }
}

/// An app's revisions: at least one, numbered from 1 without repeats,
/// the current one among them, each of this app (its spec's name, every
/// service under its own name) and with every component stored by digest
/// (a path would mean a component that was never uploaded).
pub fn check_app(app: &ExportedApp) -> Result<(), ExportError> {
    if app.name.is_empty() {
        return Err(invalid("\"\"", "an app needs a name".into()));
    }
    if app.revisions.is_empty() {
        return Err(invalid(&app.name, "no revisions".into()));
    }
    let mut seen = BTreeSet::new();
    for r in &app.revisions {
        let n = r.revision;
        if n == 0 || !seen.insert(n) {
            let why = format!(
                "revision {n} is {}",
                if n == 0 {
                    "not a revision number"
                } else {
                    "listed twice"
                }
            );
            return Err(invalid(&app.name, why));
        }
        if r.spec.name != app.name {
            let why = format!("revision {n} is of app {:?}", r.spec.name);
            return Err(invalid(&app.name, why));
        }
        if r.spec.services.is_empty() {
            return Err(invalid(&app.name, format!("revision {n} has no services")));
        }
        for (key, service) in &r.spec.services {
            if *key != service.name {
                let why = format!("revision {n}: service {key:?} is named {:?}", service.name);
                return Err(invalid(&app.name, why));
            }
            if let Artifact::Component(path) = &service.artifact {
                let why = format!(
                    "revision {n}: service {key} refers to the local path {path} (not uploaded)"
                );
                return Err(invalid(&app.name, why));
            }
        }
    }
    if app.current_record().is_none() {
        let why = format!(
            "the current revision {} is not among its revisions",
            app.current
        );
        return Err(invalid(&app.name, why));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
