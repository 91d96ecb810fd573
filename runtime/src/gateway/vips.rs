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

use super::{Gateway, MAX_REQUEST_BODY, text};
use crate::oci::network;
use atoll_sdk::cluster::service_vip;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
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

/// What the routing table and the local containers call for.
pub fn wanted(gw: &Gateway) -> Wanted {
    let apps = gw.local.container_apps();
    let mut out = Wanted::new();
    if apps.is_empty() {
        return out;
    }
    for ((app, service), route) in &gw.table().by_service {
        if !apps.contains(app) {
            continue;
        }
        let vip = service_vip(app, service);
        let ports: BTreeSet<u16> = std::iter::once(80)
            .chain(route.ports.iter().map(|p| p.target))
            .collect();
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
        let want = wanted(&gw);
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
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (gw, app, service) = (gw.clone(), app.clone(), service.clone());
        conns.spawn(async move {
            // HTTP is proxied per request; anything else is spliced to one
            // instance. A client that says nothing first (server-speaks-
            // first protocols) is TCP.
            let mut first = [0u8; 8];
            let peeked = tokio::time::timeout(PEEK, stream.peek(&mut first)).await;
            let n = match peeked {
                Ok(Ok(n)) => n,
                _ => 0,
            };
            if !super::tcp::looks_like_http(&first[..n]) {
                gw.tcp_to_service(&app, &service, port, stream).await;
                return;
            }
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let (gw, app, service) = (gw.clone(), app.clone(), service.clone());
                async move {
                    let (parts, body) = req.into_parts();
                    let resp = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
                        Ok(b) => {
                            let req = Request::from_parts(parts, b.to_bytes());
                            match gw.call_service(&app, &service, port, req).await {
                                Some(r) => r,
                                None => text(
                                    StatusCode::BAD_GATEWAY,
                                    format!("app {app} has no service {service:?}"),
                                ),
                            }
                        }
                        Err(e) => text(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!("request body rejected: {e}"),
                        ),
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}
