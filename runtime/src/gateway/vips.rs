//! The service proxy for containers. Inside a container, each service of
//! its app resolves (`/etc/hosts`) to the service's virtual IP
//! ([`service_vip`]); this host puts those addresses on its container
//! bridge (so they go when the bridge goes) and answers HTTP on them — on port 80 and on the service's
//! container ports — by calling the service through the gateway, so the
//! call reaches a ready instance anywhere in the cluster.
//!
//! Only apps with a container on this host get addresses and listeners;
//! a host that runs only components makes none. Listeners use
//! `SO_REUSEPORT`, so two hosts on one machine can both serve a VIP (each
//! routes cluster-wide, so either answers right).

use super::listeners::{accept, serve_http};
use super::routes::Route;
use super::{Gateway, read_body, text};
use crate::oci::network;
use atoll_sdk::cluster::service_vip;
use http::StatusCode;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a new connection may stay silent before it is taken as TCP.
const PEEK: Duration = Duration::from_millis(300);
/// How often the wanted addresses are compared with the present ones.
const SYNC_EVERY: Duration = Duration::from_millis(500);

/// `(vip, port)` → the service it answers for.
type Wanted = BTreeMap<(Ipv4Addr, u16), (String, String)>;

/// The service addresses and ports this host must answer on: every
/// service of each app in `apps` (those with a container here), on port 80
/// and on its container ports.
pub fn wanted(apps: &BTreeSet<String>, by_service: &BTreeMap<(String, String), Route>) -> Wanted {
    let mut out = Wanted::new();
    for ((app, service), route) in by_service {
        if !apps.contains(app) {
            continue;
        }
        let vip = service_vip(app, service);
        let ports = std::iter::once(80).chain(route.ports.iter().map(|p| p.target));
        for port in ports {
            out.insert((vip, port), (app.clone(), service.clone()));
        }
    }
    out
}

/// Keeps the VIPs on `iface` (the container bridge, which exists once a
/// container runs) and their listeners in step, until aborted.
pub async fn run(gw: Arc<Gateway>, iface: String) {
    let mut listeners: BTreeMap<(Ipv4Addr, u16), JoinHandle<()>> = BTreeMap::new();
    let mut addresses: BTreeSet<Ipv4Addr> = BTreeSet::new();
    loop {
        let want = wanted(&gw.local.container_apps(), &gw.table().by_service);
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
        tokio::time::sleep(SYNC_EVERY).await;
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
    accept(listener, move |stream| {
        let (gw, app, service) = (gw.clone(), app.clone(), service.clone());
        async move {
            // HTTP is proxied per request; anything else is spliced to one
            // instance. A client that says nothing first (server-speaks-
            // first protocols) is TCP.
            let mut first = [0u8; 8];
            let n = match tokio::time::timeout(PEEK, stream.peek(&mut first)).await {
                Ok(Ok(n)) => n,
                _ => 0,
            };
            if !super::tcp::looks_like_http(&first[..n]) {
                return gw.tcp_to_service(&app, &service, port, stream).await;
            }
            serve_http(stream, move |req| {
                let (gw, app, service) = (gw.clone(), app.clone(), service.clone());
                async move {
                    let req = match read_body(req).await {
                        Ok(r) => r,
                        Err(resp) => return resp,
                    };
                    match gw.call_service(&app, &service, port, req).await {
                        Some(r) => r,
                        None => text(
                            StatusCode::BAD_GATEWAY,
                            format!("app {app} has no service {service:?}"),
                        ),
                    }
                }
            })
            .await;
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::spec::PortMapping;

    fn route(ports: &[(u16, u16)]) -> Route {
        Route {
            app: String::new(),
            service: String::new(),
            ports: (ports.iter())
                .map(|&(published, target)| PortMapping { published, target })
                .collect(),
            timeout: Duration::from_secs(1),
            endpoints: Vec::new(),
        }
    }

    #[test]
    fn only_apps_with_a_local_container_get_addresses_on_80_and_their_ports() {
        let by_service = BTreeMap::from([
            (("shop".into(), "db".into()), route(&[(15432, 5432)])),
            (("shop".into(), "web".into()), route(&[(8080, 80)])),
            (("blog".into(), "web".into()), route(&[])),
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
}
