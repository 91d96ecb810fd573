//! Endpoints: for each service, its running instances and the addresses of
//! their hosts. Computed from assignments and observed state; the gateways
//! read the result from the endpoints bucket.

use crate::snapshot::Snapshot;
use atoll_sdk::cluster::HostState;
use atoll_sdk::protocol::{Endpoint, Endpoints, VERSION, endpoints_key};
use std::collections::BTreeMap;

/// Every service of every app → its endpoints (ready instances only).
pub(crate) fn compute(snap: &Snapshot) -> BTreeMap<String, Endpoints> {
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
                    canary_weight: svc.canary.as_ref().map_or(0, |k| k.weight),
                    wake: svc.autoscale.is_some_and(|a| a.min == 0),
                    vip: Some(app.vip(&svc.name)),
                },
            );
        }
    }
    let ready_hosts: BTreeMap<&str, (&str, u16)> = snap
        .hosts
        .iter()
        .filter(|h| h.state == HostState::Ready)
        .map(|h| {
            (
                h.info.name.as_str(),
                (h.info.address.as_str(), h.info.mesh_port),
            )
        })
        .collect();
    for (host, assignment) in &snap.assignments {
        let Some(&(address, mesh_port)) = ready_hosts.get(host.as_str()) else {
            continue;
        };
        for inst in &assignment.instances {
            let running = (snap.observed.get(&inst.id)).is_some_and(|o| o.state.is_ready(o.health));
            let key = endpoints_key(&inst.app, &inst.service);
            if let (true, Some(eps)) = (running, out.get_mut(&key)) {
                eps.instances.push(Endpoint {
                    id: inst.id.clone(),
                    host: host.clone(),
                    address: address.to_string(),
                    mesh_port,
                    canary: inst.canary,
                });
            }
        }
    }
    for eps in out.values_mut() {
        eps.instances.sort_by(|a, b| a.id.cmp(&b.id));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::reconcile;
    use crate::snapshot::fixtures::*;
    use atoll_sdk::cluster::{InstanceState, InstanceStatus};

    /// Two hosts, 4 replicas placed; `running` says which instances report
    /// running.
    fn placed(running: &[usize], h2_down: bool) -> (Snapshot, Vec<String>) {
        let mut snap = snapshot(
            vec![host("h1"), host("h2")],
            vec![app("a", vec![service("web").replicas(4)])],
        );
        let mut n = 0;
        let plan = reconcile(&snap, &mut |_, _| {
            n += 1;
            format!("i{n}")
        });
        snap.assignments = plan.assignments;
        let ids: Vec<String> = (1..=4).map(|i| format!("i{i}")).collect();
        for &i in running {
            let id = &ids[i];
            snap.observed.insert(
                id.clone(),
                InstanceStatus::new(id, "a", "web", 1, InstanceState::Running),
            );
        }
        if h2_down {
            snap.hosts[1].state = HostState::Down;
        }
        (snap, ids)
    }

    #[test]
    fn only_running_instances_on_ready_hosts_are_endpoints() {
        let (snap, _) = placed(&[0, 1, 2], false);
        let eps = compute(&snap);
        let web = &eps["a.web"];
        assert_eq!(
            web.instances.len(),
            3,
            "the instance not yet running is left out"
        );

        let (snap, _) = placed(&[0, 1, 2, 3], true);
        let web = &compute(&snap)["a.web"];
        assert!(
            web.instances.iter().all(|e| e.host == "h1"),
            "a down host serves nothing"
        );
        assert_eq!(web.instances.len(), 2);
    }

    #[test]
    fn every_service_has_an_entry_even_with_no_instance() {
        let snap = snapshot(vec![host("h1")], vec![app("a", vec![service("web")])]);
        let eps = compute(&snap);
        assert!(eps["a.web"].instances.is_empty());
    }
}
