//! Endpoints: for each service, its running instances and the addresses of
//! their hosts. Computed from assignments and observed state; the gateways
//! read the result from the endpoints bucket.

use crate::snapshot::Snapshot;
use atoll_sdk::cluster::{HostState, InstanceState};
use atoll_sdk::protocol::{Endpoint, Endpoints, VERSION, endpoints_key};
use std::collections::BTreeMap;

/// Every service of every app → its endpoints (ready instances only).
pub fn compute(snap: &Snapshot) -> BTreeMap<String, Endpoints> {
    let mut out: BTreeMap<String, Endpoints> = BTreeMap::new();
    for app in &snap.apps {
        for svc in app.spec.services.values() {
            out.insert(
                endpoints_key(&app.spec.name, &svc.name),
                Endpoints {
                    v: VERSION,
                    app: app.spec.name.clone(),
                    service: svc.name.clone(),
                    ports: svc.ports.clone(),
                    timeout_ms: svc.timeout_ms,
                    instances: Vec::new(),
                },
            );
        }
    }
    let ready_hosts: BTreeMap<&str, &str> = snap
        .hosts
        .iter()
        .filter(|h| h.state == HostState::Ready)
        .map(|h| (h.info.name.as_str(), h.info.address.as_str()))
        .collect();
    for (host, assignment) in &snap.assignments {
        let Some(address) = ready_hosts.get(host.as_str()) else {
            continue;
        };
        for inst in &assignment.instances {
            let running = snap
                .observed
                .get(&inst.id)
                .is_some_and(|o| o.state == InstanceState::Running);
            let key = endpoints_key(&inst.app, &inst.service);
            if let (true, Some(eps)) = (running, out.get_mut(&key)) {
                eps.instances.push(Endpoint {
                    id: inst.id.clone(),
                    host: host.clone(),
                    address: (*address).to_string(),
                });
            }
        }
    }
    for eps in out.values_mut() {
        eps.instances.sort_by(|a, b| a.id.cmp(&b.id));
    }
    out
}
