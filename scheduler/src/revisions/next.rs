//! What the next revision of an app is, when it is not a new file: a
//! promotion or a rollback. Plain functions of the current revision and
//! the kept ones; [`super`] writes what they decide.

use atoll_sdk::protocol::AppRecord;
use atoll_sdk::spec::App;

/// Why a promotion or a rollback cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NextError {
    #[error("app {app} has no service {service:?}")]
    NoService { app: String, service: String },
    #[error("service {service} of app {app} has no canary")]
    NoCanary { app: String, service: String },
    #[error(
        "service {service} of app {app} runs one instance per eligible host (deploy.mode: global): it has no replica count"
    )]
    Global { app: String, service: String },
    #[error(
        "service {service} of app {app} is autoscaled ({min} to {max} replicas, x-atoll.autoscale): its replica count follows the load"
    )]
    Autoscaled {
        app: String,
        service: String,
        min: u32,
        max: u32,
    },
    #[error("app {app} has no revision {revision} (kept: {})", list(.kept))]
    NoRevision {
        app: String,
        revision: u64,
        /// The revisions the history still has.
        kept: Vec<u64>,
    },
    #[error("app {app} has no revision before {revision}")]
    NoneBefore { app: String, revision: u64 },
    #[error("revision {revision} of app {app} has no service {service:?}")]
    NotInRevision {
        app: String,
        revision: u64,
        service: String,
    },
}

/// `1, 2, 3`.
fn list(revisions: &[u64]) -> String {
    let all: Vec<String> = revisions.iter().map(u64::to_string).collect();
    all.join(", ")
}

/// A revision to write after the current one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Next {
    pub spec: App,
    /// The Compose text it comes from.
    pub compose: String,
    /// The revision whose spec it restores (the current one when it only
    /// drops a canary).
    pub restored: u64,
    /// Set when it undoes the current revision.
    pub rollback_of: Option<u64>,
    pub cause: String,
    /// Whether the app is stopped (`atoll stop`) in it.
    pub stopped: bool,
}

/// `service`'s canary made its version (`atoll promote`): the service runs
/// the canary's artifact, without a canary.
pub(crate) fn promoted(now: &AppRecord, service: &str) -> Result<Next, NextError> {
    let app = &now.spec.name;
    let mut spec = now.spec.clone();
    let svc = (spec.services.get_mut(service)).ok_or_else(|| NextError::NoService {
        app: app.clone(),
        service: service.to_string(),
    })?;
    let canary = (svc.canary.take()).ok_or_else(|| NextError::NoCanary {
        app: app.clone(),
        service: service.to_string(),
    })?;
    svc.artifact = canary.artifact;
    Ok(Next {
        spec,
        compose: now.compose.clone(),
        restored: now.revision,
        rollback_of: None,
        cause: format!("promote the canary of {service}"),
        stopped: now.stopped,
    })
}

/// What `atoll rollback` makes of the current revision `now`, given the
/// kept `revisions`: revision `to` (the one before `now` when `None`) again,
/// or only `service` of it. A service that has a canary, rolled back
/// without `to`, drops the canary instead.
pub(crate) fn rolled_back(
    now: &AppRecord,
    revisions: &[AppRecord],
    service: Option<&str>,
    to: Option<u64>,
) -> Result<Next, NextError> {
    if let (Some(name), None) = (service, to)
        && let Some(next) = without_canary(now, name)
    {
        return Ok(next);
    }
    let target = target(now, revisions, to)?;
    let spec = match service {
        Some(name) => with_service_of(now, target, name)?,
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
        // Rolling a stop (or a start) back undoes it; one service's
        // rollback leaves the app as it is.
        stopped: if service.is_some() {
            now.stopped
        } else {
            target.stopped
        },
    })
}

/// `now` without `service`'s canary, if it has one.
fn without_canary(now: &AppRecord, service: &str) -> Option<Next> {
    let mut spec = now.spec.clone();
    spec.services.get_mut(service)?.canary.take()?;
    Some(Next {
        spec,
        compose: now.compose.clone(),
        restored: now.revision,
        rollback_of: None,
        cause: format!("drop the canary of {service}"),
        stopped: now.stopped,
    })
}

/// The kept revision a rollback restores: `to`, or the one before `now`.
fn target<'r>(
    now: &AppRecord,
    revisions: &'r [AppRecord],
    to: Option<u64>,
) -> Result<&'r AppRecord, NextError> {
    let app = &now.spec.name;
    match to {
        Some(rev) => {
            (revisions.iter().find(|r| r.revision == rev)).ok_or_else(|| NextError::NoRevision {
                app: app.clone(),
                revision: rev,
                kept: revisions.iter().map(|r| r.revision).collect(),
            })
        }
        None => (revisions.iter().rev())
            .find(|r| r.revision < now.revision)
            .ok_or_else(|| NextError::NoneBefore {
                app: app.clone(),
                revision: now.revision,
            }),
    }
}

/// `now`'s spec with `service` as `target` had it.
fn with_service_of(now: &AppRecord, target: &AppRecord, service: &str) -> Result<App, NextError> {
    let app = &now.spec.name;
    let old = (target.spec.services.get(service)).ok_or_else(|| NextError::NotInRevision {
        app: app.clone(),
        revision: target.revision,
        service: service.to_string(),
    })?;
    if !now.spec.services.contains_key(service) {
        return Err(NextError::NoService {
            app: app.clone(),
            service: service.to_string(),
        });
    }
    let mut spec = now.spec.clone();
    spec.services.insert(service.to_string(), old.clone());
    Ok(spec)
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
        let missing = rolled_back(&kept[2], &kept, None, Some(9)).expect_err("no 9");
        assert_eq!(
            missing.to_string(),
            "app shop has no revision 9 (kept: 1, 2, 3)"
        );
        let first = rolled_back(&kept[0], &kept, None, None).expect_err("none before");
        assert_eq!(first.to_string(), "app shop has no revision before 1");
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
        let nope = rolled_back(&now, &kept, Some("web"), None).expect_err("no web");
        assert_eq!(
            nope.to_string(),
            "revision 1 of app shop has no service \"web\""
        );
        let gone = rolled_back(&revision(2, "2"), &[revision(1, "1")], Some("web"), Some(1));
        assert!(
            matches!(gone, Err(NextError::NotInRevision { .. })),
            "{gone:?}"
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
        let none = super::promoted(&revision(2, "2"), "api").expect_err("no canary");
        assert_eq!(none.to_string(), "service api of app shop has no canary");
        let nope = super::promoted(&now, "web").expect_err("no web");
        assert_eq!(nope.to_string(), "app shop has no service \"web\"");
    }
}
