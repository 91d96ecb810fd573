//! `atoll deploy --dry-run`: what a deploy would change, compared with the
//! app as it runs: services added, changed (with the settings that
//! differ), removed, and the instances that would start and stop. Pure:
//! the API hands it the parsed app, the current record and the instance
//! counts.

use atoll_sdk::api::{DeployPlan, ServicePlan};
use atoll_sdk::spec::{App, Mode, Service};
use std::collections::{BTreeMap, BTreeSet};

/// The plan for deploying `next` over `current` (`None`: a new app);
/// `running`: instances assigned now, by service.
pub(crate) fn plan(
    next: &App,
    current: Option<(&App, u64)>,
    running: &BTreeMap<String, u32>,
) -> DeployPlan {
    let empty = BTreeMap::new();
    let before = current.map_or(&empty, |(a, _)| &a.services);
    let names: BTreeSet<&String> = next.services.keys().chain(before.keys()).collect();
    let services = names
        .into_iter()
        .map(|name| {
            let now = running.get(name).copied().unwrap_or(0);
            match (before.get(name), next.services.get(name)) {
                (None, Some(new)) => ServicePlan {
                    name: name.clone(),
                    change: "added".into(),
                    fields: Vec::new(),
                    start: wanted(new),
                    stop: 0,
                },
                (Some(_), None) => ServicePlan {
                    name: name.clone(),
                    change: "removed".into(),
                    fields: Vec::new(),
                    start: 0,
                    stop: now,
                },
                (Some(old), Some(new)) => changed(name, old, new, now),
                (None, None) => ServicePlan::default(),
            }
        })
        .collect();
    DeployPlan {
        app: next.name.clone(),
        current_revision: current.map_or(0, |(_, r)| r),
        services,
        warnings: Vec::new(),
        stopped: false,
    }
}

/// Instances a service asks for (a global one: one per host, counted as 1
/// here since hosts come and go).
fn wanted(s: &Service) -> u32 {
    match s.deploy.mode {
        Mode::Replicated => s.deploy.replicas,
        Mode::Global => 1,
    }
}

fn changed(name: &str, old: &Service, new: &Service, now: u32) -> ServicePlan {
    let fields = differences(old, new);
    let scale_only = fields.iter().all(|f| f == "deploy.replicas");
    let (start, stop) = match () {
        _ if fields.is_empty() => (0, 0),
        _ if scale_only => {
            let (a, b) = (wanted(old), wanted(new));
            (b.saturating_sub(a), a.saturating_sub(b))
        }
        // Only how it is placed or updated: nothing restarts.
        _ if !replaces(&fields) => (0, 0),
        _ => (wanted(new), now),
    };
    ServicePlan {
        name: name.to_string(),
        change: if fields.is_empty() {
            "unchanged"
        } else {
            "changed"
        }
        .into(),
        fields,
        start,
        stop,
    }
}

/// Settings whose change does not replace the instances (see the
/// controller's spec hash).
const IN_PLACE: [&str; 6] = [
    "deploy.replicas",
    "deploy.mode",
    "deploy.placement",
    "deploy.update",
    "deploy.rollback",
    "autoscale",
];

fn replaces(fields: &[String]) -> bool {
    (fields.iter()).any(|f| !IN_PLACE.contains(&f.as_str()) && f != "canary" && f != "disconnect")
}

/// The settings that differ: top-level keys of the service, and one level
/// into `deploy` and `container`.
fn differences(old: &Service, new: &Service) -> Vec<String> {
    let (Ok(a), Ok(b)) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        return vec!["(unreadable)".into()];
    };
    let mut out = Vec::new();
    for (k, x, y) in pairs(&a, &b) {
        match (k.as_str(), x.as_object(), y.as_object()) {
            ("deploy" | "container", Some(_), Some(_)) => {
                out.extend(
                    pairs(x, y)
                        .into_iter()
                        .map(|(sub, _, _)| format!("{k}.{sub}")),
                );
            }
            _ => out.push(k),
        }
    }
    out
}

/// The keys whose values differ between two JSON objects, with both values.
fn pairs<'v>(
    a: &'v serde_json::Value,
    b: &'v serde_json::Value,
) -> Vec<(String, &'v serde_json::Value, &'v serde_json::Value)> {
    static NULL: serde_json::Value = serde_json::Value::Null;
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return Vec::new();
    };
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    (keys.into_iter())
        .map(|k| {
            (
                k.clone(),
                a.get(k).unwrap_or(&NULL),
                b.get(k).unwrap_or(&NULL),
            )
        })
        .filter(|(_, x, y)| x != y)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(text: &str) -> App {
        match atoll_sdk::spec::parse(text, "shop") {
            Ok(p) => p.app,
            Err(e) => panic!("{e}"),
        }
    }

    const V1: &str = "services:\n  web:\n    image: nginx:1\n    deploy:\n      replicas: 2\n  db:\n    image: postgres:16\n";

    fn service<'a>(plan: &'a DeployPlan, name: &str) -> &'a ServicePlan {
        plan.services
            .iter()
            .find(|s| s.name == name)
            .expect("service in plan")
    }

    #[test]
    fn a_new_app_starts_everything() {
        let plan = plan(&app(V1), None, &BTreeMap::new());
        assert_eq!(plan.current_revision, 0);
        assert_eq!(
            (
                service(&plan, "web").change.as_str(),
                service(&plan, "web").start
            ),
            ("added", 2)
        );
        assert_eq!(service(&plan, "db").start, 1);
    }

    #[test]
    fn changes_name_their_fields_and_instances() {
        let running = BTreeMap::from([("web".to_string(), 2), ("db".to_string(), 1)]);
        let v1 = app(V1);
        let same = plan(&app(V1), Some((&v1, 3)), &running);
        assert!(
            same.services
                .iter()
                .all(|s| s.change == "unchanged" && s.start == 0 && s.stop == 0),
            "{same:?}"
        );

        let scaled = app(&V1.replace("replicas: 2", "replicas: 5"));
        let p = plan(&scaled, Some((&v1, 3)), &running);
        let web = service(&p, "web");
        assert_eq!(
            (web.fields.clone(), web.start, web.stop),
            (vec!["deploy.replicas".to_string()], 3, 0)
        );

        let updated = app(&V1.replace("nginx:1", "nginx:2").replace(
            "  db:\n    image: postgres:16\n",
            "  cache:\n    image: redis:7\n",
        ));
        let p = plan(&updated, Some((&v1, 3)), &running);
        let web = service(&p, "web");
        assert_eq!(web.change, "changed");
        assert_eq!(web.fields, ["artifact"]);
        assert_eq!((web.start, web.stop), (2, 2), "a rolling replacement");
        assert_eq!(
            (service(&p, "db").change.as_str(), service(&p, "db").stop),
            ("removed", 1)
        );
        assert_eq!(service(&p, "cache").change, "added");

        let env = app(&V1.replace("    deploy:\n", "    environment:\n      A: \"1\"\n    deploy:\n      update_config:\n        parallelism: 2\n"));
        let p = plan(&env, Some((&v1, 3)), &running);
        assert_eq!(service(&p, "web").fields, ["deploy.update", "environment"]);
        let order = app(&V1.replace(
            "    deploy:\n",
            "    deploy:\n      update_config:\n        parallelism: 2\n",
        ));
        let p = plan(&order, Some((&v1, 3)), &running);
        assert_eq!(
            (service(&p, "web").start, service(&p, "web").stop),
            (0, 0),
            "how it updates restarts nothing"
        );
    }
}
