//! What a request another host forwarded may reach here: only what the
//! routing table would have sent it to. A service call reaches an
//! instance of a service in the table, on a port that service is called
//! on (80, or a container port of its `ports:`; a component answers on
//! any, it has one handler); a request for a published port reaches an
//! instance of the service published there. Pure.

use super::routes::{Route, Table};

fn routes_to(route: &Route, id: &str) -> bool {
    route.endpoints.iter().any(|e| e.endpoint.id == id)
}

/// Whether a forwarded service call may reach instance `id` at `port`.
pub fn allows_service_call(table: &Table, id: &str, port: u16, in_process: bool) -> bool {
    table.by_service.values().any(|route| {
        routes_to(route, id)
            && (in_process || port == 80 || route.ports.iter().any(|p| p.target == port))
    })
}

/// Whether a forwarded request for published port `port` may reach
/// instance `id`.
pub fn allows_published(table: &Table, id: &str, port: u16) -> bool {
    table
        .by_port
        .get(&port)
        .is_some_and(|route| routes_to(route, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::routes::RouteEndpoint;
    use atoll_sdk::protocol::Endpoint;
    use atoll_sdk::spec::PortMapping;
    use std::time::Duration;

    fn route(app: &str, ids: &[&str], ports: &[(u16, u16)]) -> Route {
        Route {
            app: app.into(),
            service: "s".into(),
            ports: (ports.iter())
                .map(|&(published, target)| PortMapping { published, target })
                .collect(),
            timeout: Duration::from_secs(1),
            endpoints: (ids.iter())
                .map(|id| RouteEndpoint {
                    endpoint: Endpoint {
                        id: id.to_string(),
                        host: "h2".into(),
                        address: "127.0.0.2".into(),
                        mesh_port: 7421,
                        canary: false,
                    },
                    outstanding: Default::default(),
                })
                .collect(),
            canary_weight: 0,
            wake: false,
        }
    }

    #[test]
    fn a_forwarded_call_reaches_routed_instances_on_their_ports_only() {
        let mut t = Table::default();
        t.by_service.insert(
            ("shop".into(), "db".into()),
            route("shop", &["db-1"], &[(5432, 5432)]),
        );
        t.by_port
            .insert(8080, route("shop", &["web-1"], &[(8080, 80)]));
        t.by_service.insert(
            ("shop".into(), "web".into()),
            route("shop", &["web-1"], &[(8080, 80)]),
        );
        assert!(allows_service_call(&t, "db-1", 5432, false));
        assert!(allows_service_call(&t, "db-1", 80, false));
        assert!(
            !allows_service_call(&t, "db-1", 22, false),
            "a port it does not serve"
        );
        assert!(
            allows_service_call(&t, "web-1", 9000, true),
            "a component: one handler"
        );
        assert!(
            !allows_service_call(&t, "ghost", 80, false),
            "an instance not routed"
        );
        assert!(allows_published(&t, "web-1", 8080));
        assert!(
            !allows_published(&t, "db-1", 8080),
            "another service's instance"
        );
        assert!(!allows_published(&t, "web-1", 9999));
    }
}
