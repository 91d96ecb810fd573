//! The routing table: published port → the service behind it and its ready
//! endpoints, and `(app, service)` → the same, for calls by service name.
//! Rebuilt from the endpoints bucket mirror on every change, so the
//! request path never waits on NATS.

use atoll_sdk::protocol::{Endpoint, Endpoints};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// Where a published port leads.
#[derive(Debug, Clone)]
pub struct Route {
    pub app: String,
    pub service: String,
    /// The service's `ports:` (a container service listens on the targets).
    pub ports: Vec<atoll_sdk::spec::PortMapping>,
    pub timeout: Duration,
    pub endpoints: Vec<RouteEndpoint>,
    /// Percent of requests for the canary endpoints.
    pub canary_weight: u8,
    /// Scaled to zero when idle: a request finding no endpoint is held
    /// while an instance starts.
    pub wake: bool,
    /// The service's address (where containers and components reach it).
    pub vip: std::net::Ipv4Addr,
}

/// One ready instance with its in-flight request counter (shared across
/// table rebuilds, so a rebuild does not reset the balancer's view).
#[derive(Debug, Clone)]
pub struct RouteEndpoint {
    pub endpoint: Endpoint,
    pub outstanding: Arc<AtomicUsize>,
}

#[derive(Debug, Default, Clone)]
pub struct Table {
    pub by_port: BTreeMap<u16, Route>,
    /// Every service, published or not, by app and name.
    pub by_service: BTreeMap<(String, String), Route>,
}

/// Builds the table, reusing `previous`'s counters for endpoints that stay.
pub fn build(all: &BTreeMap<String, Endpoints>, previous: &Table) -> Table {
    let old_counters: BTreeMap<&str, &Arc<AtomicUsize>> = previous
        .by_service
        .values()
        .flat_map(|r| r.endpoints.iter())
        .map(|e| (e.endpoint.id.as_str(), &e.outstanding))
        .collect();
    let mut by_port = BTreeMap::new();
    let mut by_service = BTreeMap::new();
    for eps in all.values() {
        let endpoints: Vec<RouteEndpoint> = eps
            .instances
            .iter()
            .map(|e| RouteEndpoint {
                endpoint: e.clone(),
                outstanding: old_counters
                    .get(e.id.as_str())
                    .map(|c| (*c).clone())
                    .unwrap_or_default(),
            })
            .collect();
        let route = Route {
            app: eps.app.clone(),
            service: eps.service.clone(),
            ports: eps.ports.clone(),
            timeout: Duration::from_millis(eps.timeout_ms.max(1)),
            endpoints,
            canary_weight: eps.canary_weight,
            wake: eps.wake,
            vip: (eps.vip)
                .unwrap_or_else(|| atoll_sdk::cluster::service_vip(&eps.app, &eps.service)),
        };
        for port in &eps.ports {
            by_port.insert(port.published, route.clone());
        }
        by_service.insert((eps.app.clone(), eps.service.clone()), route);
    }
    Table {
        by_port,
        by_service,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::spec::PortMapping;
    use std::sync::atomic::Ordering;

    fn eps(ids: &[&str]) -> BTreeMap<String, Endpoints> {
        let e = Endpoints {
            v: 1,
            app: "a".into(),
            service: "web".into(),
            ports: vec![PortMapping {
                published: 8080,
                target: 80,
            }],
            timeout_ms: 1000,
            vip: None,
            instances: ids
                .iter()
                .map(|id| Endpoint {
                    id: (*id).into(),
                    host: "h1".into(),
                    address: "127.0.0.2".into(),
                    mesh_port: 7421,
                    canary: false,
                })
                .collect(),
            canary_weight: 0,
            wake: false,
        };
        BTreeMap::from([("a.web".to_string(), e)])
    }

    #[test]
    fn maps_published_ports_and_keeps_counters() {
        let t1 = build(&eps(&["i1", "i2"]), &Table::default());
        let route = &t1.by_port[&8080];
        assert_eq!(route.service, "web");
        route.endpoints[0]
            .outstanding
            .fetch_add(3, Ordering::Relaxed);
        let t2 = build(&eps(&["i1", "i3"]), &t1);
        let r2 = &t2.by_port[&8080];
        assert_eq!(r2.endpoints[0].outstanding.load(Ordering::Relaxed), 3);
        assert_eq!(r2.endpoints[1].outstanding.load(Ordering::Relaxed), 0);
    }
}
