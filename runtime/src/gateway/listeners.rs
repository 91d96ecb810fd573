//! Opens and closes the published ports as the routing table changes, and
//! the mesh port; the accept loop and HTTP serving every listener shares.

use super::responses::prometheus_text;
use super::server_limits::{ServerLimits, Slots};
use super::{Gateway, HOP_HEADER, ResponseBody, routes};
use atoll_sdk::protocol::Endpoints;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Every service's endpoints by `app.service`, as the endpoints bucket
/// holds them (or as the host makes them up from its cached assignment
/// before it has reached NATS).
pub type EndpointsMap = BTreeMap<String, Endpoints>;

/// Keeps the routing table and the listeners in step with `endpoints`,
/// until the task is aborted (which closes every listener). When the
/// sender is gone the last table stays.
pub async fn run(gw: Arc<Gateway>, mut endpoints: watch::Receiver<Arc<EndpointsMap>>) {
    let mut open = Listeners::default();
    loop {
        let all = endpoints.borrow_and_update().clone();
        let table = routes::build(&all, &gw.table());
        let ports: Vec<u16> = table.by_port.keys().copied().collect();
        gw.set_table(table);
        open.sync(&gw, &ports).await;
        // Wake on a change, or retry ports that failed to bind.
        let retry = tokio::time::sleep(Duration::from_secs(2));
        tokio::select! {
            _ = retry => {}
            Ok(()) = endpoints.changed() => {}
        }
    }
}

/// How long a peer has to finish the mesh's TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Binds `addr`, again every second until it can.
async fn bind_retrying(addr: SocketAddr, what: &str) -> tokio::net::TcpListener {
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot open the {what}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Takes what other hosts forward on `bind:port`: over mutual TLS when
/// this host has an identity (a peer without a host certificate of the
/// cluster fails the handshake), plain otherwise, when the host's
/// Prometheus endpoint shares the port. With an identity, `/metrics` is
/// served on `metrics` instead.
pub async fn run_mesh(
    gw: Arc<Gateway>,
    port: u16,
    metrics: Arc<crate::metrics::HostMetrics>,
    metrics_addr: SocketAddr,
) {
    let addr = SocketAddr::new(gw.bind, port);
    let listener = bind_retrying(addr, "mesh port").await;
    let Some(tls) = gw.peers.tls().cloned() else {
        tracing::info!(%addr, "mesh port open (plain: this host has no identity)");
        return accept(&gw.limits.clone(), listener, move |stream| {
            let (gw, metrics) = (gw.clone(), metrics.clone());
            let timeout = gw.limits.header_timeout;
            serve_http(stream, timeout, move |req| {
                let (gw, metrics) = (gw.clone(), metrics.clone());
                async move {
                    if req.uri().path() == "/metrics" && !req.headers().contains_key(HOP_HEADER) {
                        return render(metrics).await;
                    }
                    gw.serve_peer(req).await
                }
            })
        })
        .await;
    };
    tracing::info!(%addr, "mesh port open (mutual TLS)");
    let metrics_task = tokio::spawn(serve_metrics(metrics_addr, metrics, gw.limits));
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server);
    let limits = gw.limits;
    accept(&limits, listener, move |stream| {
        let (gw, acceptor) = (gw.clone(), acceptor.clone());
        async move {
            let peer = stream.peer_addr().ok();
            let stream = match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::warn!(peer = ?peer, error = %e, "mesh TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::warn!(peer = ?peer, "mesh TLS handshake timed out");
                    return;
                }
            };
            let timeout = gw.limits.header_timeout;
            serve_http(stream, timeout, move |req| {
                let gw = gw.clone();
                async move { gw.serve_peer(req).await }
            })
            .await
        }
    })
    .await;
    metrics_task.abort();
}

async fn render(metrics: Arc<crate::metrics::HostMetrics>) -> Response<ResponseBody> {
    let text = tokio::task::spawn_blocking(move || metrics.render()).await;
    prometheus_text(text.unwrap_or_default())
}

/// The host's Prometheus endpoint on a listener of its own (loopback by
/// default: see [`default_metrics_addr`]).
async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<crate::metrics::HostMetrics>,
    limits: ServerLimits,
) {
    // Said once, then tried again quietly: a port another host on this
    // machine holds may never come free (give each --metrics-listen).
    let mut said = false;
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if !said => {
                tracing::warn!(%addr, error = %e, "cannot open the metrics port (set --metrics-listen); trying again every 10 s");
                said = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    };
    tracing::info!(%addr, "metrics at /metrics");
    accept(&limits, listener, move |stream| {
        let metrics = metrics.clone();
        serve_http(stream, limits.header_timeout, move |req| {
            let metrics = metrics.clone();
            async move {
                if req.uri().path() == "/metrics" {
                    render(metrics).await
                } else {
                    super::text(http::StatusCode::NOT_FOUND, "only /metrics here".into())
                }
            }
        })
    })
    .await;
}

/// Where a host with an identity serves `/metrics` unless told: its bind
/// address when that is a loopback one, else 127.0.0.1; port `mesh + 1`.
pub fn default_metrics_addr(bind: std::net::IpAddr, mesh_port: u16) -> SocketAddr {
    let ip = if bind.is_loopback() {
        bind
    } else {
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
    };
    SocketAddr::new(ip, mesh_port.saturating_add(1))
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
                    self.by_port.insert(
                        port,
                        tokio::spawn(accept_published(gw.clone(), port, listener)),
                    );
                }
                Err(e) => {
                    tracing::error!(%addr, error = %e, "cannot open published port; retrying")
                }
            }
        }
    }
}

/// Accepts connections until the task is aborted, each served by `serve`
/// in a task of its own. Connections live in a set owned by this task, so
/// closing the listener (aborting it) drops them too.
/// At most `limits.max_connections` at once: more wait in the kernel's
/// accept queue until one closes.
pub(super) async fn accept<F, Fut>(
    limits: &ServerLimits,
    listener: tokio::net::TcpListener,
    serve: F,
) where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Slots::new(limits);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let slot = slots.take().await;
        while conns.try_join_next().is_some() {}
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(addr = ?listener.local_addr().ok(), error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = serve(stream);
        conns.spawn(async move {
            conn.await;
            drop(slot);
        });
    }
}

/// Serves HTTP/1.1 on one connection (keep-alive, upgrades for tunnels),
/// each request answered by `handle`. A client gets `header_timeout` to
/// send each request's headers (and to start the next one).
pub(super) async fn serve_http<S, F, Fut>(stream: S, header_timeout: Duration, handle: F)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + 'static,
    Fut: Future<Output = Response<ResponseBody>> + Send + 'static,
{
    let svc = service_fn(move |req| {
        let resp = handle(req);
        async move { Ok::<_, std::convert::Infallible>(resp.await) }
    });
    // hyper applies the header timeout only with a timer.
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades()
        .await;
}

/// A published port's connections: HTTP is balanced per request; any
/// other TCP (a database's protocol, say) is spliced to one instance of
/// the service, at the container port behind the published one — the
/// routing mesh is L4 for them, as Swarm's.
async fn accept_published(gw: Arc<Gateway>, port: u16, listener: tokio::net::TcpListener) {
    let limits = gw.limits;
    accept(&limits, listener, move |stream| {
        let gw = gw.clone();
        async move {
            if !super::tcp::speaks_http(&stream).await {
                let table = gw.table();
                let Some(route) = table.by_port.get(&port) else {
                    return;
                };
                let target = (route.ports.iter())
                    .find(|p| p.published == port)
                    .map_or(port, |p| p.target);
                return gw
                    .tcp_to_service(&route.app, &route.service, target, stream)
                    .await;
            }
            let timeout = gw.limits.header_timeout;
            serve_http(stream, timeout, move |req| {
                let gw = gw.clone();
                async move { gw.handle(port, req).await }
            })
            .await
        }
    })
    .await;
}
