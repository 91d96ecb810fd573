//! An operator's changes to the current revision, as new revisions:
//! `atoll scale` (a service's replica count), `atoll restart` (every
//! instance replaced, with the update settings), `atoll stop` / `start`
//! (the app kept, its instances stopped or started again). Plain
//! functions of the current revision; `None` when nothing would change.
//! A later `atoll deploy` of the file sets what the file says (as
//! `kubectl apply` after `kubectl scale`).

use super::next::{Next, NextError};
use atoll_sdk::protocol::AppRecord;
use atoll_sdk::spec::Mode;

fn next(now: &AppRecord, spec: atoll_sdk::spec::App, cause: String, stopped: bool) -> Next {
    Next {
        spec,
        compose: now.compose.clone(),
        restored: now.revision,
        rollback_of: None,
        cause,
        stopped,
    }
}

fn no_service(now: &AppRecord, service: &str) -> NextError {
    NextError::NoService {
        app: now.spec.name.clone(),
        service: service.to_string(),
    }
}

/// `service` with `replicas` replicas.
pub(crate) fn scaled(
    now: &AppRecord,
    service: &str,
    replicas: u32,
) -> Result<Option<Next>, NextError> {
    let app = now.spec.name.clone();
    let mut spec = now.spec.clone();
    let svc = (spec.services.get_mut(service)).ok_or_else(|| no_service(now, service))?;
    let named = || (app.clone(), service.to_string());
    if svc.deploy.mode == Mode::Global {
        let (app, service) = named();
        return Err(NextError::Global { app, service });
    }
    if let Some(a) = &svc.autoscale {
        let (app, service) = named();
        let (min, max) = (a.min, a.max);
        return Err(NextError::Autoscaled {
            app,
            service,
            min,
            max,
        });
    }
    if svc.deploy.replicas == replicas {
        return Ok(None);
    }
    let from = svc.deploy.replicas;
    svc.deploy.replicas = replicas;
    let cause = format!("scale {service} from {from} to {replicas}");
    Ok(Some(next(now, spec, cause, now.stopped)))
}

/// Every service (or `service` only) marked restarted at `at_ms`: each
/// instance is replaced as an update replaces it.
pub(crate) fn restarted(
    now: &AppRecord,
    service: Option<&str>,
    at_ms: u64,
) -> Result<Next, NextError> {
    let mut spec = now.spec.clone();
    match service {
        Some(name) => {
            let svc = (spec.services.get_mut(name)).ok_or_else(|| no_service(now, name))?;
            svc.restarted_at_ms = Some(at_ms);
        }
        None => {
            for svc in spec.services.values_mut() {
                svc.restarted_at_ms = Some(at_ms);
            }
        }
    }
    let cause = match service {
        Some(name) => format!("restart {name}"),
        None => "restart".to_string(),
    };
    Ok(next(now, spec, cause, now.stopped))
}

/// What a deployed file becomes against the current revision `previous`
/// (the other apps publishing `taken`): its ports the server picks, and
/// each service's restart mark kept. Shared by a deploy and its dry run.
pub(crate) fn settle(
    app: &mut atoll_sdk::spec::App,
    previous: Option<&atoll_sdk::spec::App>,
    taken: &std::collections::BTreeSet<u16>,
) -> Result<(), crate::placement::free_ports::NoFreePort> {
    keep_restarts(app, previous);
    crate::placement::free_ports::assign(app, previous, taken)
}

/// Keeps each service's `atoll restart` mark from `previous` (a file never
/// has one): deploying the same file again after a restart changes
/// nothing.
fn keep_restarts(app: &mut atoll_sdk::spec::App, previous: Option<&atoll_sdk::spec::App>) {
    let Some(previous) = previous else {
        return;
    };
    for svc in app.services.values_mut() {
        if svc.restarted_at_ms.is_none() {
            svc.restarted_at_ms =
                (previous.services.get(&svc.name)).and_then(|p| p.restarted_at_ms);
        }
    }
}

/// The app stopped (`stop`) or started again; `None` when it already is.
pub(crate) fn stopped(now: &AppRecord, stop: bool) -> Option<Next> {
    (now.stopped != stop).then(|| {
        let cause = if stop { "stop" } else { "start" };
        next(now, now.spec.clone(), cause.to_string(), stop)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fixtures::{ServiceExt, app, service};

    #[test]
    fn a_scale_sets_the_replicas_and_keeps_the_file() {
        let now = app("shop", vec![service("web").replicas(2), service("db")]);
        let next = scaled(&now, "web", 5).unwrap().unwrap();
        assert_eq!(next.spec.services["web"].deploy.replicas, 5);
        assert_eq!(next.spec.services["db"], now.spec.services["db"]);
        assert_eq!(next.cause, "scale web from 2 to 5");
        assert_eq!(next.compose, now.compose);
        assert!(scaled(&now, "web", 2).unwrap().is_none());
        assert!(matches!(
            scaled(&now, "nope", 1),
            Err(NextError::NoService { .. })
        ));
        let global = app("shop", vec![service("agent").global()]);
        let e = scaled(&global, "agent", 3).unwrap_err();
        assert!(e.to_string().contains("deploy.mode: global"), "{e}");
    }

    #[test]
    fn a_restart_changes_what_runs_for_the_services_named() {
        let now = app("shop", vec![service("web"), service("db")]);
        let one = restarted(&now, Some("web"), 42).unwrap();
        assert_eq!(one.spec.services["web"].restarted_at_ms, Some(42));
        assert_eq!(one.spec.services["db"].restarted_at_ms, None);
        let hash = crate::reconcile::spec_hash;
        assert_ne!(
            hash(&one.spec.services["web"]),
            hash(&now.spec.services["web"])
        );
        let all = restarted(&now, None, 43).unwrap();
        assert!(
            (all.spec.services.values()).all(|s| s.restarted_at_ms == Some(43)),
            "{all:?}"
        );
        assert!(restarted(&now, Some("nope"), 1).is_err());
    }

    #[test]
    fn a_deploy_after_a_restart_keeps_the_mark() {
        let now = app("shop", vec![service("web"), service("db")]);
        let restarted = restarted(&now, Some("web"), 7).unwrap();
        let mut file = now.spec.clone();
        keep_restarts(&mut file, Some(&restarted.spec));
        assert_eq!(file, restarted.spec, "the same file: no change");
        keep_restarts(&mut file, None);
        assert_eq!(file.services["web"].restarted_at_ms, Some(7));
    }

    #[test]
    fn stop_and_start_flip_the_app_once() {
        let now = app("shop", vec![service("web")]);
        let stop = stopped(&now, true).unwrap();
        assert!(stop.stopped);
        assert_eq!(stop.spec, now.spec);
        assert!(stopped(&now, false).is_none(), "already started");
        let mut was = now.clone();
        was.stopped = true;
        assert!(!stopped(&was, false).unwrap().stopped);
        // A rollback of the stop starts the app again.
        was.revision = 2;
        let back = super::super::next::rolled_back(&was, &[now.clone(), was.clone()], None, None);
        assert!(!back.unwrap().stopped);
    }
}
