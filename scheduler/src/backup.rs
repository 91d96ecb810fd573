//! `atoll export` and `atoll import`: the cluster's desired state (apps
//! with the revisions their history keeps, the autoscaler's counts,
//! retired hosts) out as an [`ExportFile`], and back in.
//!
//! An import checks everything before it writes anything: the file
//! ([`atoll_sdk::export::parse`]), each app against the cluster's
//! ([`revisions::decide_import`]: a newer or different app is refused
//! unless forced), and published ports across apps. Apps go through
//! [`revisions`], the one writer of desired state, compare-and-set like a
//! deploy; apps missing from the file are left alone. Into an empty
//! cluster whose hosts run on, the controller then adopts what they run
//! (see `reconcile::adopt`).

use crate::artifacts;
use crate::cas::{CasError, compare_and_set};
use crate::cluster::Cluster;
use crate::placement::{PortConflict, check_ports};
use crate::revisions::{self, Decision, RevisionError};
use atoll_sdk::api::{ImportResponse, ImportedApp, SkippedApp};
use atoll_sdk::export::{EXPORT_VERSION, ExportError, ExportFile, ExportedApp};
use atoll_sdk::protocol::{AppRecord, endpoints_key, now_ms};
use atoll_sdk::spec::{App, Artifact, privilege};
use std::collections::{BTreeMap, BTreeSet};

/// Why an import changed nothing (or, for a write error, stopped).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImportError {
    #[error("invalid export file: {0}")]
    Invalid(#[from] ExportError),
    /// Apps the cluster has newer, or otherwise at the same revision.
    #[error("import refused, nothing was changed: {} app(s) would be overwritten", .0.len())]
    Refused(Vec<String>),
    #[error("import refused, nothing was changed: app {app}: {source}")]
    Ports { app: String, source: PortConflict },
    #[error(transparent)]
    Revision(#[from] RevisionError),
    #[error("restoring {what}: {source}")]
    Write { what: String, source: CasError },
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The cluster's desired state: every app with the revisions its history
/// keeps (the current one as the mirror has it), scale records and
/// retired hosts.
pub(crate) async fn export(cluster: &Cluster) -> Result<ExportFile, RevisionError> {
    let mut apps = Vec::new();
    for (name, current) in cluster.apps.all() {
        let current = current.value;
        // Whole or not at all: a backup missing revisions would pass for
        // a complete one.
        let mut kept = revisions::history(cluster, &name).await?;
        // A number may have been written twice (a forced import): the
        // current revision is what the key holds now.
        kept.retain(|r| r.revision != current.revision);
        kept.push(current.clone());
        kept.sort_by_key(|r| r.revision);
        for r in &mut kept {
            r.importing_since_ms = None;
        }
        apps.push(ExportedApp {
            name,
            current: current.revision,
            revisions: kept,
        });
    }
    Ok(ExportFile {
        v: EXPORT_VERSION,
        cluster: cluster.buckets.names.cluster.clone(),
        exported_at_ms: now_ms(),
        apps,
        scale: cluster.scale.all().into_values().map(|v| v.value).collect(),
        removed_hosts: cluster.removed().into_values().collect(),
    })
}

/// Restores `bytes` (an export file) into the cluster; `force` overwrites
/// apps the cluster has newer or different.
pub(crate) async fn import(
    cluster: &Cluster,
    bytes: &[u8],
    force: bool,
) -> Result<ImportResponse, ImportError> {
    let file = atoll_sdk::export::parse(bytes)?;
    let at_ms = now_ms();
    let mut writes: Vec<(&ExportedApp, Vec<AppRecord>, Option<u64>)> = Vec::new();
    let mut skipped = Vec::new();
    let mut refused = Vec::new();
    for app in &file.apps {
        let (now, kv_revision) = revisions::read_current(cluster, &app.name).await?;
        match revisions::decide_import(app, now.as_ref(), force, at_ms) {
            Decision::Write(records) => {
                // The current revision is what will run: it must pass this
                // server's policy (the exporting cluster's may have been
                // looser).
                let current = records.iter().find(|r| r.revision == app.current);
                let privileges = current
                    .map(|r| privilege::of_app(&r.spec))
                    .unwrap_or_default();
                let errs = cluster.policy.check(&privileges);
                if errs.is_empty() {
                    writes.push((app, records, kv_revision));
                } else {
                    let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
                    refused.push(format!("app {}: {}", app.name, errs.join("; ")));
                }
            }
            Decision::Skip(why) => skipped.push(SkippedApp {
                name: app.name.clone(),
                why,
            }),
            Decision::Refuse(why) => refused.push(why),
        }
    }
    if !refused.is_empty() {
        return Err(ImportError::Refused(refused));
    }
    check_all_ports(cluster, &writes)?;
    let written: BTreeSet<&str> = writes.iter().map(|(a, _, _)| a.name.as_str()).collect();

    let removed_hosts = restore_removed_hosts(cluster, &file).await?;
    let scale = restore_scale(cluster, &file, &written).await?;
    let mut imported = Vec::new();
    for (app, records, expected) in &writes {
        revisions::write_imported(cluster, &app.name, records, *expected).await?;
        imported.push(ImportedApp {
            name: app.name.clone(),
            revisions: records.len(),
            current: app.current,
        });
    }
    cluster.wake_controller();
    let warnings = missing_components(cluster, &writes).await;
    Ok(ImportResponse {
        imported,
        skipped,
        scale,
        removed_hosts,
        warnings,
    })
}

/// Every app's published ports against the others', as they will be: a
/// deploy would be refused such a clash, so is an import.
fn check_all_ports(
    cluster: &Cluster,
    writes: &[(&ExportedApp, Vec<AppRecord>, Option<u64>)],
) -> Result<(), ImportError> {
    let mut after: BTreeMap<String, App> = (cluster.apps.all().into_iter())
        .map(|(name, v)| (name, v.value.spec))
        .collect();
    for (app, records, _) in writes {
        if let Some(last) = records.last() {
            after.insert(app.name.clone(), last.spec.clone());
        }
    }
    for (app, records, _) in writes {
        if let Some(last) = records.last() {
            check_ports(&last.spec, after.values()).map_err(|source| ImportError::Ports {
                app: app.name.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Records the file's retired hosts the cluster does not know yet; how
/// many.
async fn restore_removed_hosts(cluster: &Cluster, file: &ExportFile) -> Result<usize, ImportError> {
    let known = cluster.removed();
    let mut n = 0;
    for host in file
        .removed_hosts
        .iter()
        .filter(|h| !known.contains_key(&h.name))
    {
        let bytes = serde_json::to_vec(host)?;
        let kv = &cluster.buckets.removed_hosts;
        (compare_and_set(kv, &host.name, bytes.into(), None).await).map_err(|source| {
            ImportError::Write {
                what: format!("retired host {}", host.name),
                source,
            }
        })?;
        n += 1;
    }
    Ok(n)
}

/// Writes the scale records of the apps being imported, before their
/// revisions, so the controller's first pass places the autoscaler's
/// counts rather than the file's; how many.
async fn restore_scale(
    cluster: &Cluster,
    file: &ExportFile,
    apps: &BTreeSet<&str>,
) -> Result<usize, ImportError> {
    let mut n = 0;
    for record in file.scale.iter().filter(|r| apps.contains(r.app.as_str())) {
        let key = endpoints_key(&record.app, &record.service);
        let bytes = serde_json::to_vec(record)?;
        let expected = cluster.scale.get(&key).map(|v| v.revision);
        (compare_and_set(&cluster.buckets.scale, &key, bytes.into(), expected).await).map_err(
            |source| ImportError::Write {
                what: format!("the scale of {key}"),
                source,
            },
        )?;
        n += 1;
    }
    Ok(n)
}

/// Components the imported revisions run that this cluster's artifact
/// store lacks: hosts that ran them keep them cached, others cannot start
/// them until the app is deployed again from its files.
async fn missing_components(
    cluster: &Cluster,
    writes: &[(&ExportedApp, Vec<AppRecord>, Option<u64>)],
) -> Vec<String> {
    let mut digests: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (app, _, _) in writes {
        for service in app.revisions.iter().flat_map(|r| r.spec.services.values()) {
            let canary = service.canary.as_ref().map(|c| &c.artifact);
            for artifact in std::iter::once(&service.artifact).chain(canary) {
                if let Artifact::Stored(digest) = artifact {
                    digests.entry(digest.clone()).or_default().insert(&app.name);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (digest, apps) in digests {
        if !artifacts::exists(cluster, &digest).await {
            let apps: Vec<&str> = apps.into_iter().collect();
            out.push(format!(
                "component {digest} (app {}) is not in this cluster's artifact store: hosts that ran it have it cached, others cannot start it until the app is deployed again",
                apps.join(", ")
            ));
        }
    }
    out
}
