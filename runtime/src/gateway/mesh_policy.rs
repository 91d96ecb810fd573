//! What a request another host forwarded may reach here: only what a
//! routing table could have sent it to. Decided from what this host knows
//! of its own instances (which does not lag behind the sender's table as
//! the endpoints here may): a service call reaches a ready local instance
//! on any port (in Compose every port of a service is reachable from the
//! app's other services, and only hosts of the cluster reach the mesh
//! port); a request for a published port reaches an instance of the
//! service published there. Pure.

use super::routes::Table;

/// Whether a forwarded service call may reach a local instance at
/// `port`: any port but 0 (no connection can be made there).
pub fn allows_service_call(port: u16) -> bool {
    port != 0
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
    use atoll_sdk::spec::PortMapping;
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
    fn a_forwarded_call_reaches_any_port_and_a_published_one_its_service_only() {
        assert!(allows_service_call(5432), "declared or not");
        assert!(allows_service_call(80));
        assert!(!allows_service_call(0));
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
