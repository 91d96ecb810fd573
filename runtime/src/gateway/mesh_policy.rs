//! What a request another host forwarded may reach here: only what a
//! routing table could have sent it to. Decided from what this host knows
//! of its own instances (which does not lag behind the sender's table as
//! the endpoints here may): a service call reaches a ready local instance
//! on a port its service is called on (80, or a container port of its
//! `ports:`; a component answers on any, it has one handler); a request
//! for a published port reaches an instance of the service published
//! there. Pure.

use super::routes::Table;
use atoll_sdk::spec::PortMapping;

/// Whether a forwarded service call may reach a local instance at
/// `port`: `container_ports` are a container's (`None`: a component).
pub fn allows_service_call(container_ports: Option<&[PortMapping]>, port: u16) -> bool {
    match container_ports {
        None => true,
        Some(ports) => port == 80 || ports.iter().any(|p| p.target == port),
    }
}

/// Whether a forwarded request for published port `port` may reach a
/// local instance of `service` (app, service).
pub fn allows_published(table: &Table, service: (&str, &str), port: u16) -> bool {
    (table.by_port.get(&port)).is_some_and(|r| (r.app.as_str(), r.service.as_str()) == service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::routes::Route;
    use std::time::Duration;

    fn route(app: &str, service: &str) -> Route {
        Route {
            app: app.into(),
            service: service.into(),
            ports: vec![PortMapping {
                published: 8080,
                target: 80,
            }],
            timeout: Duration::from_secs(1),
            endpoints: Vec::new(),
            canary_weight: 0,
            wake: false,
            vip: std::net::Ipv4Addr::new(10, 90, 0, 1),
        }
    }

    #[test]
    fn a_forwarded_call_reaches_a_service_on_its_ports_only() {
        let db = [PortMapping {
            published: 15432,
            target: 5432,
        }];
        assert!(allows_service_call(Some(&db), 5432));
        assert!(allows_service_call(Some(&db), 80));
        assert!(
            !allows_service_call(Some(&db), 22),
            "a port it does not serve"
        );
        assert!(!allows_service_call(Some(&db), 15432), "the published one");
        assert!(allows_service_call(None, 9000), "a component: one handler");
        let mut t = Table::default();
        t.by_port.insert(8080, route("shop", "web"));
        assert!(allows_published(&t, ("shop", "web"), 8080));
        assert!(
            !allows_published(&t, ("shop", "db"), 8080),
            "another service"
        );
        assert!(!allows_published(&t, ("blog", "web"), 8080), "another app");
        assert!(!allows_published(&t, ("shop", "web"), 9999));
    }
}
