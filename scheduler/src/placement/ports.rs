//! Published ports across the cluster. A published port opens on every
//! host (the routing mesh), so it can belong to one service of one app
//! only; a deploy that would publish a port another app already publishes
//! is refused before anything is stored. (Within one file the spec parser
//! already refuses a port published twice.)

use atoll_sdk::spec::App;

/// A port `app` would publish that another app already publishes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "services.{service}.ports: port {port} is already published by app {other_app} (service {other_service})"
)]
pub(crate) struct PortConflict {
    /// The service of the app being deployed.
    pub service: String,
    pub port: u16,
    pub other_app: String,
    pub other_service: String,
}

/// The first port of `app` that one of the `deployed` apps already
/// publishes. The deployed app of the same name is skipped: it is the one
/// being replaced. Order: deployed apps as given, then their services,
/// then `app`'s services and ports, all in name order.
pub(crate) fn check_ports<'a>(
    app: &App,
    deployed: impl IntoIterator<Item = &'a App>,
) -> Result<(), PortConflict> {
    for other in deployed {
        if other.name == app.name {
            continue;
        }
        for theirs in other.services.values() {
            for mine in app.services.values() {
                for p in &mine.ports {
                    if theirs.ports.iter().any(|q| q.published == p.published) {
                        return Err(PortConflict {
                            service: mine.name.clone(),
                            port: p.published,
                            other_app: other.name.clone(),
                            other_service: theirs.name.clone(),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fixtures::service;
    use atoll_sdk::spec::{PortMapping, Service};

    fn publishing(name: &str, published: &[u16]) -> Service {
        let mut s = service(name);
        s.ports = (published.iter())
            .map(|&p| PortMapping {
                published: p,
                target: 80,
            })
            .collect();
        s
    }

    fn app(name: &str, services: Vec<Service>) -> App {
        App {
            name: name.into(),
            services: services.into_iter().map(|s| (s.name.clone(), s)).collect(),
        }
    }

    #[test]
    fn a_port_another_app_publishes_is_refused_with_both_names() {
        let shop = app("shop", vec![publishing("web", &[8080])]);
        let blog = app("blog", vec![publishing("front", &[9000, 8080])]);
        let e = check_ports(&blog, [&shop]).expect_err("8080 is taken");
        assert_eq!(
            e,
            PortConflict {
                service: "front".into(),
                port: 8080,
                other_app: "shop".into(),
                other_service: "web".into(),
            }
        );
        assert_eq!(
            e.to_string(),
            "services.front.ports: port 8080 is already published by app shop (service web)"
        );
    }

    #[test]
    fn a_redeploy_of_the_same_app_keeps_its_ports() {
        let v1 = app("shop", vec![publishing("web", &[8080])]);
        let v2 = app("shop", vec![publishing("api", &[8080])]);
        assert_eq!(check_ports(&v2, [&v1]), Ok(()));
    }

    #[test]
    fn distinct_ports_and_apps_without_ports_pass() {
        let shop = app("shop", vec![publishing("web", &[8080]), service("db")]);
        let blog = app("blog", vec![publishing("front", &[8081]), service("db")]);
        assert_eq!(check_ports(&blog, [&shop]), Ok(()));
        assert_eq!(check_ports(&blog, []), Ok(()));
    }

    #[test]
    fn the_first_conflict_in_name_order_is_reported() {
        let a = app("a", vec![publishing("x", &[1000])]);
        let b = app("b", vec![publishing("y", &[2000])]);
        let new = app(
            "c",
            vec![publishing("s", &[2000]), publishing("t", &[1000])],
        );
        let e = check_ports(&new, [&a, &b]).expect_err("both taken");
        assert_eq!((e.other_app.as_str(), e.service.as_str()), ("a", "t"));
    }
}
