//! The gateway's endpoints before the host has reached NATS: made up from
//! its cached assignment, each assigned service served by this host's own
//! instances, so its published ports answer while the endpoints bucket
//! cannot be read. Pure.

use atoll_sdk::cluster::Assignment;
use atoll_sdk::protocol::{Endpoint, Endpoints, VERSION, endpoints_key};

use crate::gateway::EndpointsMap;

/// Where this host's instances are reached (the `host`, `address` and
/// `mesh_port` of its endpoints).
pub(super) struct Here<'a> {
    pub host: &'a str,
    pub address: &'a str,
    pub mesh_port: u16,
}

/// One entry per service of the assignment, listing its instances here.
/// A service whose instances differ in revision (a rolling update cut
/// short) gets the newest one's ports and timeout.
pub(super) fn endpoints(assignment: &Assignment, here: &Here<'_>) -> EndpointsMap {
    let mut by_revision: Vec<_> = assignment.instances.iter().collect();
    by_revision.sort_by_key(|i| i.revision);
    let mut out = EndpointsMap::new();
    for spec in by_revision {
        let entry = (out.entry(endpoints_key(&spec.app, &spec.service))).or_insert_with(|| {
            Endpoints {
                v: VERSION,
                app: spec.app.clone(),
                service: spec.service.clone(),
                ports: Vec::new(),
                timeout_ms: spec.timeout_ms,
                instances: Vec::new(),
                // Unknown here: canaries are tried after the others.
                canary_weight: 0,
                wake: false,
                vip: spec.service_vips.get(&spec.service).copied(),
            }
        });
        entry.ports = spec.ports.clone();
        entry.timeout_ms = spec.timeout_ms;
        entry.instances.push(Endpoint {
            id: spec.id.clone(),
            host: here.host.to_string(),
            address: here.address.to_string(),
            mesh_port: here.mesh_port,
            canary: spec.canary,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::cluster::InstanceSpec;
    use atoll_sdk::spec::PortMapping;

    fn spec(id: &str, service: &str, revision: u64, published: u16) -> InstanceSpec {
        serde_json::from_value(serde_json::json!({
            "id": id, "app": "shop", "service": service, "revision": revision,
            "spec_hash": "h", "artifact": {"kind": "stored", "ref": "sha256:00"},
            "env": {}, "ports": [{"published": published, "target": 80}],
            "limits": {"memory": null, "cpus_milli": null},
            "reservations": {"memory": null, "cpus_milli": null},
            "timeout_ms": 1000 * revision
        }))
        .expect("spec")
    }

    const HERE: Here<'static> = Here {
        host: "h1",
        address: "127.0.0.2",
        mesh_port: 7421,
    };

    #[test]
    fn each_service_is_served_by_the_instances_here() {
        let a = Assignment {
            host: "h1".into(),
            instances: vec![
                spec("web-1", "web", 1, 8080),
                spec("api-1", "api", 1, 9090),
                spec("web-2", "web", 1, 8080),
            ],
            epoch: 0,
        };
        let map = endpoints(&a, &HERE);
        assert_eq!(
            map.keys().collect::<Vec<_>>(),
            ["shop.api", "shop.web"],
            "keyed as the endpoints bucket is"
        );
        let web = &map["shop.web"];
        assert_eq!((web.app.as_str(), web.service.as_str()), ("shop", "web"));
        let ids: Vec<&str> = web.instances.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["web-1", "web-2"]);
        assert_eq!(
            web.ports,
            [PortMapping {
                published: 8080,
                target: 80
            }]
        );
        let e = &web.instances[0];
        assert_eq!((e.host.as_str(), e.address.as_str()), ("h1", "127.0.0.2"));
        assert_eq!(e.mesh_port, 7421);
        assert!(!web.wake);
    }

    #[test]
    fn the_newest_revision_gives_the_ports_and_an_empty_assignment_nothing() {
        let a = Assignment {
            host: "h1".into(),
            instances: vec![spec("web-b", "web", 2, 8081), spec("web-a", "web", 1, 8080)],
            epoch: 0,
        };
        let web = &endpoints(&a, &HERE)["shop.web"];
        assert_eq!(web.ports[0].published, 8081);
        assert_eq!(web.timeout_ms, 2000);
        assert_eq!(web.instances.len(), 2);
        assert!(endpoints(&Assignment::default(), &HERE).is_empty());
    }
}
