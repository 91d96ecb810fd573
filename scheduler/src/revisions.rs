//! Revisions of an app: every deploy writes one to the apps bucket, whose
//! history keeps the last 16. A rollback deploys an earlier revision's
//! spec again as a new revision (as `kubectl rollout undo` does), so the
//! history only grows and every change is a rolling update.
//!
//! What a promotion or a rollback makes of the current spec is decided by
//! plain functions ([`promoted`], [`rolled_back`]); one writer puts the
//! result in the bucket (compare-and-set on the current revision).

use crate::cluster::Cluster;
use atoll_sdk::nats::Versioned;
use atoll_sdk::protocol::{AppRecord, now_ms};
use atoll_sdk::spec::App;
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

/// A revision to write after the current one.
#[derive(Debug, Clone, PartialEq)]
pub struct Next {
    pub spec: App,
    /// The Compose text it comes from.
    pub compose: String,
    /// The revision whose spec it restores (the current one when it only
    /// drops a canary).
    pub restored: u64,
    /// Set when it undoes the current revision.
    pub rollback_of: Option<u64>,
    pub cause: String,
}

/// `service`'s canary made its version (`atoll promote`): the service runs
/// the canary's artifact, without a canary.
pub fn promoted(now: &AppRecord, service: &str) -> Result<Next, String> {
    let app = &now.spec.name;
    let mut spec = now.spec.clone();
    let svc = (spec.services.get_mut(service))
        .ok_or_else(|| format!("app {app} has no service {service:?}"))?;
    let canary = (svc.canary.take())
        .ok_or_else(|| format!("service {service} of app {app} has no canary"))?;
    svc.artifact = canary.artifact;
    Ok(Next {
        spec,
        compose: now.compose.clone(),
        restored: now.revision,
        rollback_of: None,
        cause: format!("promote the canary of {service}"),
    })
}

/// What `atoll rollback` makes of the current revision `now`, given the
/// kept `revisions`: revision `to` (the one before `now` when `None`) again,
/// or only `service` of it. A service that has a canary, rolled back
/// without `to`, drops the canary instead.
pub fn rolled_back(
    now: &AppRecord,
    revisions: &[AppRecord],
    service: Option<&str>,
    to: Option<u64>,
) -> Result<Next, String> {
    let app = &now.spec.name;
    if let (Some(name), None) = (service, to)
        && now
            .spec
            .services
            .get(name)
            .is_some_and(|s| s.canary.is_some())
    {
        let mut spec = now.spec.clone();
        if let Some(svc) = spec.services.get_mut(name) {
            svc.canary = None;
        }
        return Ok(Next {
            spec,
            compose: now.compose.clone(),
            restored: now.revision,
            rollback_of: None,
            cause: format!("drop the canary of {name}"),
        });
    }
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
    let spec = match service {
        Some(name) => {
            let old = target.spec.services.get(name).ok_or_else(|| {
                format!(
                    "revision {} of app {app} has no service {name:?}",
                    target.revision
                )
            })?;
            if !now.spec.services.contains_key(name) {
                return Err(format!("app {app} has no service {name:?}"));
            }
            let mut spec = now.spec.clone();
            spec.services.insert(name.to_string(), old.clone());
            spec
        }
        None => target.spec.clone(),
    };
    let what = service.map_or(String::new(), |s| format!(" of {s}"));
    let cause = match to {
        Some(rev) => format!("rollback{what} to revision {rev}"),
        None => format!("rollback{what}"),
    };
    Ok(Next {
        spec,
        compose: target.compose.clone(),
        restored: target.revision,
        rollback_of: Some(now.revision),
        cause,
    })
}

/// Makes `service`'s canary its version; the new revision.
pub async fn promote(cluster: &Cluster, app: &str, service: &str) -> Result<u64, String> {
    let current = current(cluster, app)?;
    let next = promoted(&current.value, service)?;
    write(cluster, app, &current, next).await
}

/// A revision written by a rollback.
pub struct RolledBack {
    /// The revision whose spec it restores.
    pub restored: u64,
    pub revision: u64,
    pub cause: String,
}

/// `atoll rollback` (see [`rolled_back`]).
pub async fn rollback(
    cluster: &Cluster,
    app: &str,
    service: Option<&str>,
    to: Option<u64>,
) -> Result<RolledBack, String> {
    let current = current(cluster, app)?;
    let revisions = history(cluster, app).await;
    let next = rolled_back(&current.value, &revisions, service, to)?;
    let (restored, cause) = (next.restored, next.cause.clone());
    let revision = write(cluster, app, &current, next).await?;
    Ok(RolledBack {
        restored,
        revision,
        cause,
    })
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
    let revisions = history(cluster, app).await;
    let mut next = rolled_back(&current.value, &revisions, None, None)?;
    next.cause = format!(
        "automatic rollback of revision {}: {why}",
        current.value.revision
    );
    let restored = next.restored;
    write(cluster, app, &current, next).await?;
    Ok(Some(restored))
}

fn current(cluster: &Cluster, app: &str) -> Result<Versioned<AppRecord>, String> {
    (cluster.apps.get(app)).ok_or_else(|| format!("no app named {app}"))
}

/// Writes `next` as the revision after `current`, unless the app changed
/// meanwhile; its number.
async fn write(
    cluster: &Cluster,
    app: &str,
    current: &Versioned<AppRecord>,
    next: Next,
) -> Result<u64, String> {
    let now = &current.value;
    let record = AppRecord {
        v: now.v,
        revision: now.revision + 1,
        spec: next.spec,
        compose: next.compose,
        deployed_at_ms: now_ms(),
        warnings: Vec::new(),
        rollback_of: next.rollback_of,
        cause: Some(next.cause),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fixtures::{ServiceExt, app, service};
    use atoll_sdk::spec::{Artifact, Canary};

    fn revision(n: u64, version: &str) -> AppRecord {
        let mut r = app(
            "shop",
            vec![service("api").env("V", version), service("db")],
        );
        r.revision = n;
        r.compose = format!("compose {n}");
        r
    }

    fn with_canary(mut r: AppRecord) -> AppRecord {
        if let Some(api) = r.spec.services.get_mut("api") {
            api.canary = Some(Canary {
                artifact: Artifact::Image("registry.test/api:2".into()),
                weight: 20,
                replicas: 1,
            });
        }
        r
    }

    #[test]
    fn a_rollback_restores_the_revision_before_or_the_one_named() {
        let kept = [revision(1, "1"), revision(2, "2"), revision(3, "3")];
        let back = rolled_back(&kept[2], &kept, None, None).expect("one before");
        assert_eq!(back.restored, 2);
        assert_eq!(back.spec, kept[1].spec);
        assert_eq!(back.compose, "compose 2");
        assert_eq!(back.rollback_of, Some(3));
        assert_eq!(back.cause, "rollback");
        let to_1 = rolled_back(&kept[2], &kept, None, Some(1)).expect("named");
        assert_eq!(
            (to_1.restored, to_1.cause.as_str()),
            (1, "rollback to revision 1")
        );
        let missing = rolled_back(&kept[2], &kept, None, Some(9));
        assert_eq!(
            missing,
            Err("app shop has no revision 9 (kept: 1, 2, 3)".into())
        );
        let first = rolled_back(&kept[0], &kept, None, None);
        assert_eq!(first, Err("app shop has no revision before 1".into()));
    }

    #[test]
    fn a_service_rollback_changes_that_service_only() {
        let mut now = revision(2, "2");
        if let Some(db) = now.spec.services.get_mut("db") {
            db.deploy.replicas = 3;
        }
        let kept = [revision(1, "1"), now.clone()];
        let back = rolled_back(&now, &kept, Some("api"), None).expect("api");
        assert_eq!(back.spec.services["api"], kept[0].spec.services["api"]);
        assert_eq!(
            back.spec.services["db"].deploy.replicas, 3,
            "db as it is now"
        );
        assert_eq!(back.cause, "rollback of api");
        let nope = rolled_back(&now, &kept, Some("web"), None);
        assert_eq!(
            nope,
            Err("revision 1 of app shop has no service \"web\"".into())
        );
    }

    #[test]
    fn a_canary_is_dropped_by_a_service_rollback_and_promoted_into_its_service() {
        let now = with_canary(revision(2, "2"));
        let kept = [revision(1, "1"), now.clone()];
        let dropped = rolled_back(&now, &kept, Some("api"), None).expect("drop");
        assert_eq!(
            dropped.spec,
            revision(2, "2").spec,
            "the same, without the canary"
        );
        assert_eq!((dropped.restored, dropped.rollback_of), (2, None));
        assert_eq!(dropped.cause, "drop the canary of api");

        let promoted = promoted(&now, "api").expect("promote");
        let api = &promoted.spec.services["api"];
        assert_eq!(api.artifact, Artifact::Image("registry.test/api:2".into()));
        assert_eq!(api.canary, None);
        assert_eq!(
            super::promoted(&revision(2, "2"), "api"),
            Err("service api of app shop has no canary".into())
        );
    }
}
