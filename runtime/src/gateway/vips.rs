//! The service proxy. Inside a container, each service of its app
//! resolves (`/etc/hosts`) to the service's virtual IP ([`service_vip`]);
//! a component's name lookups give the same addresses (`wasm::names`).
//! This host puts those addresses on its container bridge (so they go
//! when the bridge goes) and answers on them — on port 80 and on the
//! service's container ports — through the gateway, so a call reaches a
//! ready instance anywhere in the cluster: HTTP per request, anything else
//! spliced per connection.
//!
//! Apps get addresses here when they have a container on this host, or
//! when one of their components looked a service up; a host whose
//! components never do makes none. Listeners use `SO_REUSEPORT`, so two
//! hosts on one machine can both serve a VIP (each routes cluster-wide,
//! so either answers right).

use super::Gateway;
use super::listeners::accept;
use super::routes::Route;
use crate::container::Containers;
use crate::container::network;
use crate::wasm::links::AddressError;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How often the wanted addresses are compared with the present ones.
const SYNC_EVERY: Duration = Duration::from_millis(500);

/// How long a component's name lookup waits for its service's address.
pub(crate) const READY_WAIT: Duration = Duration::from_secs(2);

/// `(vip, port)` → the service it answers for.
type Wanted = BTreeMap<(Ipv4Addr, u16), (String, String)>;

/// What the gateway's callers and [`run`] share about service addresses.
#[derive(Default)]
pub struct ServiceAddresses {
    /// Apps whose components asked for a service address, or whose
    /// containers started here (their addresses are served before they
    /// start).
    asked: Mutex<BTreeSet<String>>,
    wake: Notify,
    /// Addresses present with all their listeners up.
    ready: watch::Sender<BTreeSet<Ipv4Addr>>,
    /// Whether [`run`] runs (it needs the container bridge).
    enabled: AtomicBool,
}

impl ServiceAddresses {
    /// Waits (bounded) until `vip`, service `service` of `app`, is served
    /// here, asking for the app's addresses first.
    pub async fn ready(&self, app: &str, vip: Ipv4Addr) -> Result<(), AddressError> {
        if !self.enabled.load(Ordering::Relaxed) {
            return Err(AddressError::Disabled);
        }
        let fresh = (self.asked.lock())
            .unwrap_or_else(|e| e.into_inner())
            .insert(app.to_string());
        if fresh {
            self.wake.notify_one();
        }
        let mut rx = self.ready.subscribe();
        match tokio::time::timeout(READY_WAIT, rx.wait_for(|r| r.contains(&vip))).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(AddressError::NotServed(vip)),
        }
    }

    /// Whether `vip` is served here now.
    pub fn is_ready(&self, vip: Ipv4Addr) -> bool {
        self.ready.borrow().contains(&vip)
    }

    /// The apps that asked and still exist (the others are forgotten).
    fn asked(&self, by_service: &BTreeMap<(String, String), Route>) -> BTreeSet<String> {
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        asked.retain(|app| by_service.keys().any(|(a, _)| a == app));
        asked.clone()
    }
}

/// The service addresses and ports this host must answer on: every
/// service of each app in `apps` (those with a container here, or whose
/// components asked), on port 80 and on its container ports.
pub fn wanted(apps: &BTreeSet<String>, by_service: &BTreeMap<(String, String), Route>) -> Wanted {
    let mut out = Wanted::new();
    for ((app, service), route) in by_service {
        if !apps.contains(app) {
            continue;
        }
        let vip = route.vip;
        let ports = std::iter::once(80).chain(route.ports.iter().map(|p| p.target));
        for port in ports {
            out.insert((vip, port), (app.clone(), service.clone()));
        }
    }
    out
}

/// Whether a component of `app` may open a connection to `addr`: a
/// service address of its own app, on any port (the ports without a
/// listener of their own reach the catch-all, as containers' do).
pub fn serves(
    by_service: &BTreeMap<(String, String), Route>,
    app: &str,
    addr: std::net::SocketAddr,
) -> bool {
    let std::net::IpAddr::V4(ip) = addr.ip() else {
        return false;
    };
    (by_service.iter()).any(|((a, _), route)| a == app && route.vip == ip)
}

/// Keeps the VIPs on the container bridge and their listeners in step,
/// until aborted.
pub async fn run(gw: Arc<Gateway>, containers: Arc<Containers>) {
    let shared = &gw.vips;
    shared.enabled.store(true, Ordering::Relaxed);
    let iface = containers.bridge().to_string();
    let mut listeners: BTreeMap<(Ipv4Addr, u16), JoinHandle<()>> = BTreeMap::new();
    // The catch-all (every other port of the addresses): opened with the
    // first address, kept for the run.
    let mut catch_all: Option<(u16, JoinHandle<()>)> = None;
    let mut addresses: BTreeSet<Ipv4Addr> = BTreeSet::new();
    loop {
        let table = gw.table();
        let asked = shared.asked(&table.by_service);
        let mut apps = gw.local.bridged_apps();
        // A component-only host makes the bridge for the addresses.
        if !asked.is_empty()
            && let Err(e) = containers.network_ready().await
        {
            tracing::warn!(error = %e, "cannot make the bridge for service addresses");
        }
        apps.extend(asked);
        let want = wanted(&apps, &table.by_service);
        let want_addrs: BTreeSet<Ipv4Addr> = want.keys().map(|(a, _)| *a).collect();
        for addr in want_addrs.difference(&addresses.clone()) {
            match network::add_address(&iface, *addr).await {
                Ok(()) => {
                    addresses.insert(*addr);
                }
                Err(e) => tracing::warn!(%addr, error = %e, "cannot add a service address"),
            }
        }
        listeners.retain(|key, task| {
            let keep = want.contains_key(key) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for (key, (app, service)) in &want {
            if listeners.contains_key(key) || !addresses.contains(&key.0) {
                continue;
            }
            match listen(SocketAddr::from(*key)) {
                Ok(l) => {
                    let task =
                        tokio::spawn(serve(gw.clone(), l, app.clone(), service.clone(), key.1));
                    listeners.insert(*key, task);
                }
                Err(e) => {
                    tracing::warn!(addr = %SocketAddr::from(*key), error = %e, "cannot listen for a service")
                }
            }
        }
        for addr in addresses.clone().difference(&want_addrs) {
            network::remove_address(&iface, *addr).await;
            addresses.remove(addr);
        }
        if catch_all
            .as_ref()
            .is_none_or(|(_, task)| task.is_finished())
            && !want.is_empty()
        {
            let bound = super::catch_all::bind(containers.bridge_address());
            match bound.and_then(|l| Ok((l.local_addr()?.port(), l))) {
                Ok((port, l)) => {
                    catch_all = Some((port, tokio::spawn(super::catch_all::serve(gw.clone(), l))))
                }
                Err(e) => tracing::warn!(error = %e, "cannot open the service catch-all"),
            }
        }
        let catch_port = catch_all.as_ref().map(|(port, _)| *port);
        let served: BTreeSet<Ipv4Addr> = (addresses.iter().copied())
            .filter(|a| {
                catch_port.is_some()
                    && want
                        .keys()
                        .filter(|(vip, _)| vip == a)
                        .all(|key| listeners.contains_key(key))
            })
            .collect();
        // The firewall lets each app's containers reach exactly the
        // listeners open for it, and keeps them off peers' mesh ports.
        let open: BTreeSet<(String, Ipv4Addr, u16)> = (listeners.keys())
            .filter_map(|key| want.get(key).map(|(app, _)| (app.clone(), key.0, key.1)))
            .collect();
        let peers: BTreeSet<(Ipv4Addr, u16)> = (table.by_service.values())
            .flat_map(|r| r.endpoints.iter())
            .filter_map(|e| Some((e.endpoint.address.parse().ok()?, e.endpoint.mesh_port)))
            .collect();
        // Without the firewall's rules a component's socket to a service
        // address could reach whatever else listens on the host's
        // addresses: nothing counts as served until they are written.
        let served = match containers.serve_addresses(open, catch_port, peers).await {
            Ok(()) => served,
            Err(e) => {
                tracing::warn!(error = %e, "cannot update the containers' firewall");
                BTreeSet::new()
            }
        };
        shared.ready.send_if_modified(|r| {
            let changed = *r != served;
            *r = served;
            changed
        });
        tokio::select! {
            _ = tokio::time::sleep(SYNC_EVERY) => {}
            _ = shared.wake.notified() => {}
        }
    }
}

fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn serve(
    gw: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    app: String,
    service: String,
    port: u16,
) {
    let limits = gw.limits;
    accept(&limits, listener, move |stream| {
        super::service_stream::serve(gw.clone(), stream, app.clone(), service.clone(), port)
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::cluster::service_vip;
    use atoll_sdk::spec::PortMapping;

    /// A route of `app`'s `service` at its hashed address.
    fn route(app: &str, service: &str, ports: &[(u16, u16)]) -> Route {
        Route {
            app: app.into(),
            service: service.into(),
            ports: (ports.iter())
                .map(|&(published, target)| PortMapping { published, target })
                .collect(),
            timeout: Duration::from_secs(1),
            endpoints: Vec::new(),
            canary_weight: 0,
            wake: false,
            vip: service_vip(app, service),
        }
    }

    #[test]
    fn only_apps_with_a_local_container_get_addresses_on_80_and_their_ports() {
        let by_service = BTreeMap::from([
            (
                ("shop".into(), "db".into()),
                route("shop", "db", &[(15432, 5432)]),
            ),
            (
                ("shop".into(), "web".into()),
                route("shop", "web", &[(8080, 80)]),
            ),
            (("blog".into(), "web".into()), route("blog", "web", &[])),
        ]);
        let apps = BTreeSet::from(["shop".to_string()]);
        let got = wanted(&apps, &by_service);
        let db = service_vip("shop", "db");
        let web = service_vip("shop", "web");
        let keys: Vec<(Ipv4Addr, u16)> = got.keys().copied().collect();
        let mut expected = vec![(db, 80), (db, 5432), (web, 80)];
        expected.sort();
        assert_eq!(keys, expected);
        assert!(wanted(&BTreeSet::new(), &by_service).is_empty());
    }

    #[test]
    fn components_connect_to_their_apps_service_addresses_only() {
        let by_service = BTreeMap::from([
            (
                ("shop".into(), "db".into()),
                route("shop", "db", &[(15432, 5432)]),
            ),
            (
                ("blog".into(), "db".into()),
                route("blog", "db", &[(25432, 5432)]),
            ),
        ]);
        let at = |app: &str, port: u16| std::net::SocketAddr::from((service_vip(app, "db"), port));
        assert!(serves(&by_service, "shop", at("shop", 5432)));
        assert!(serves(&by_service, "shop", at("shop", 80)));
        assert!(
            serves(&by_service, "shop", at("shop", 6379)),
            "an undeclared port: the catch-all's"
        );
        assert!(
            !serves(&by_service, "shop", at("blog", 5432)),
            "another app"
        );
    }
}
