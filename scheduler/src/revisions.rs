//! Revisions of an app: every deploy writes one to the apps bucket, whose
//! history keeps the last 16. A rollback deploys an earlier revision's
//! spec again as a new revision (as `kubectl rollout undo` does), so the
//! history only grows and every change is a rolling update.

use crate::cluster::Cluster;
use atoll_sdk::protocol::{AppRecord, now_ms};
use futures::StreamExt;
use std::time::Duration;

/// Every revision of `app` still in the bucket's history, oldest first.
pub async fn history(cluster: &Cluster, app: &str) -> Vec<AppRecord> {
    let Ok(mut entries) = cluster.buckets.apps.history(app).await else {
        return Vec::new();
    };
    let mut out: Vec<AppRecord> = Vec::new();
    while let Ok(Some(Ok(entry))) =
        tokio::time::timeout(Duration::from_secs(2), entries.next()).await
    {
        if let Ok(r) = serde_json::from_slice::<AppRecord>(&entry.value) {
            out.retain(|o| o.revision != r.revision);
            out.push(r);
        }
        if entry.delta == 0 {
            break;
        }
    }
    out.sort_by_key(|r| r.revision);
    out
}

/// Makes `service`'s canary its version (`atoll promote`): a new revision
/// where the service runs the canary's artifact, without a canary; a
/// rolling update then replaces the old version. The new revision.
pub async fn promote(cluster: &Cluster, app: &str, service: &str) -> Result<u64, String> {
    change(cluster, app, |spec| {
        let svc = (spec.services.get_mut(service))
            .ok_or_else(|| format!("app {app} has no service {service:?}"))?;
        let canary = (svc.canary.take())
            .ok_or_else(|| format!("service {service} of app {app} has no canary"))?;
        svc.artifact = canary.artifact;
        Ok(format!("promote the canary of {service}"))
    })
    .await
}

/// Stops `service`'s canary (`atoll rollback APP/SERVICE` while it has
/// one): a new revision without it. The new revision.
pub async fn drop_canary(cluster: &Cluster, app: &str, service: &str) -> Result<u64, String> {
    change(cluster, app, |spec| {
        let svc = (spec.services.get_mut(service))
            .ok_or_else(|| format!("app {app} has no service {service:?}"))?;
        svc.canary
            .take()
            .ok_or_else(|| format!("service {service} of app {app} has no canary"))?;
        Ok(format!("drop the canary of {service}"))
    })
    .await
}

/// Writes a new revision: the current spec changed by `edit` (which says
/// why, or why not).
async fn change(
    cluster: &Cluster,
    app: &str,
    edit: impl FnOnce(&mut atoll_sdk::spec::App) -> Result<String, String>,
) -> Result<u64, String> {
    let current = cluster
        .apps
        .get(app)
        .ok_or_else(|| format!("no app named {app}"))?;
    let now = &current.value;
    let mut spec = now.spec.clone();
    let cause = edit(&mut spec)?;
    let record = AppRecord {
        v: now.v,
        revision: now.revision + 1,
        spec,
        compose: now.compose.clone(),
        deployed_at_ms: now_ms(),
        warnings: Vec::new(),
        rollback_of: None,
        cause: Some(cause),
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
    cluster
        .buckets
        .apps
        .update(app, bytes.into(), current.revision)
        .await
        .map_err(|e| format!("app {app} changed meanwhile, try again: {e}"))?;
    Ok(record.revision)
}

/// Deploys revision `to` of `app` again (the one before the current one
/// when `None`) as a new revision; only `service` of it when given. The
/// revision restored and the new revision's number.
pub async fn restore(
    cluster: &Cluster,
    app: &str,
    service: Option<&str>,
    to: Option<u64>,
    cause: String,
) -> Result<(u64, u64), String> {
    let current = cluster
        .apps
        .get(app)
        .ok_or_else(|| format!("no app named {app}"))?;
    let now = &current.value;
    let revisions = history(cluster, app).await;
    let target = match to {
        Some(rev) => revisions
            .iter()
            .find(|r| r.revision == rev)
            .ok_or_else(|| {
                let kept: Vec<String> = revisions.iter().map(|r| r.revision.to_string()).collect();
                format!(
                    "app {app} has no revision {rev} (kept: {})",
                    kept.join(", ")
                )
            })?,
        None => (revisions.iter().rev())
            .find(|r| r.revision < now.revision)
            .ok_or_else(|| format!("app {app} has no revision before {}", now.revision))?,
    };
    let mut spec = now.spec.clone();
    match service {
        Some(name) => {
            let old = target.spec.services.get(name).ok_or_else(|| {
                format!(
                    "revision {} of app {app} has no service {name:?}",
                    target.revision
                )
            })?;
            if !spec.services.contains_key(name) {
                return Err(format!("app {app} has no service {name:?}"));
            }
            spec.services.insert(name.to_string(), old.clone());
        }
        None => spec = target.spec.clone(),
    }
    let record = AppRecord {
        v: now.v,
        revision: now.revision + 1,
        spec,
        compose: target.compose.clone(),
        deployed_at_ms: now_ms(),
        warnings: Vec::new(),
        rollback_of: Some(now.revision),
        cause: Some(cause),
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
    cluster
        .buckets
        .apps
        .update(app, bytes.into(), current.revision)
        .await
        .map_err(|e| format!("app {app} changed meanwhile, try again: {e}"))?;
    Ok((target.revision, record.revision))
}

/// A failed update's automatic rollback: to the revision before, unless
/// the current revision is itself a rollback (that one pauses instead).
/// The revision restored, if a rollback was made.
pub async fn restore_previous(
    cluster: &Cluster,
    app: &str,
    why: &str,
) -> Result<Option<u64>, String> {
    let Some(current) = cluster.apps.get(app) else {
        return Ok(None);
    };
    if current.value.rollback_of.is_some() {
        return Ok(None);
    }
    let cause = format!(
        "automatic rollback of revision {}: {why}",
        current.value.revision
    );
    let (restored, _) = restore(cluster, app, None, None, cause).await?;
    Ok(Some(restored))
}
