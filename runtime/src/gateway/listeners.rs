//! Opens and closes the published ports as the routing table changes.

use super::{Gateway, routes};
use atoll_sdk::nats::MirrorView;
use atoll_sdk::protocol::Endpoints;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Keeps the routing table and the listeners in step with the endpoints
/// bucket, until the task is aborted (which closes every listener).
pub async fn run(gw: Arc<Gateway>, endpoints: MirrorView<Endpoints>) {
    let mut changes = endpoints.changes();
    let mut open = Listeners::default();
    loop {
        let all = endpoints
            .all()
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect();
        let table = routes::build(&all, &gw.table());
        let ports: Vec<u16> = table.by_port.keys().copied().collect();
        gw.set_table(table);
        open.sync(&gw, &ports).await;
        // Wake on a change, or retry ports that failed to bind.
        let _ = tokio::time::timeout(Duration::from_secs(2), changes.changed()).await;
    }
}

/// Takes service calls other hosts forward on `bind:port`, binding again
/// (every second) until it can.
pub async fn run_mesh(gw: Arc<Gateway>, port: u16) {
    let addr = SocketAddr::new(gw.bind, port);
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot open the mesh port; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    tracing::info!(%addr, "mesh port open");
    accept(gw, None, listener).await;
}

#[derive(Default)]
struct Listeners {
    by_port: BTreeMap<u16, JoinHandle<()>>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for (_, task) in std::mem::take(&mut self.by_port) {
            task.abort();
        }
    }
}

impl Listeners {
    async fn sync(&mut self, gw: &Arc<Gateway>, ports: &[u16]) {
        self.by_port.retain(|port, task| {
            let keep = ports.contains(port) && !task.is_finished();
            if !keep {
                task.abort();
                tracing::info!(port, "closed published port");
            }
            keep
        });
        for &port in ports {
            if self.by_port.contains_key(&port) {
                continue;
            }
            let addr = SocketAddr::new(gw.bind, port);
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => {
                    tracing::info!(%addr, "opened published port");
                    self.by_port
                        .insert(port, tokio::spawn(accept(gw.clone(), Some(port), listener)));
                }
                Err(e) => {
                    tracing::error!(%addr, error = %e, "cannot open published port; retrying")
                }
            }
        }
    }
}

/// Serves a listener: a published port (`Some`), or the mesh port.
async fn accept(gw: Arc<Gateway>, port: Option<u16>, listener: tokio::net::TcpListener) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(port, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let gw = gw.clone();
        // Connections live in the set, so closing the port (aborting this
        // task) drops them too.
        conns.spawn(async move {
            let svc = service_fn(move |req| {
                let gw = gw.clone();
                async move {
                    let resp = match port {
                        Some(port) => gw.handle(port, req).await,
                        None if req.method() == http::Method::CONNECT => gw.serve_tunnel(req).await,
                        None => gw.serve_mesh(req).await,
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}
