//! The gateway: every host listens on every published port of the cluster
//! (on its `--bind` address) and balances each request over the ready
//! instances of the service behind that port — local ones in-process,
//! remote ones through the peer host's gateway. No NATS on the request
//! path: the routing table comes from a mirror of the endpoints bucket.

pub mod balance;
mod forward;
mod listeners;
pub mod routes;
mod tcp;
pub mod vips;

use crate::driver::Reach;
use crate::local_instances::{InFlight, LocalInstances};
use crate::wasm::ResponseBody;
use crate::wasm::links::AddressError;
use atoll_sdk::cluster::service_vip;
use bytes::Bytes;
use forward::Unsent;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use routes::{RouteEndpoint, Table};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

/// Set on requests one gateway forwards to another: the receiver serves
/// them from the named local instance only, so a request never loops.
pub const HOP_HEADER: &str = "x-atoll-hop";
/// The instance a forwarded request is for.
pub const INSTANCE_HEADER: &str = "x-atoll-instance";
/// On a forwarded service call: the port the caller asked for.
pub const PORT_HEADER: &str = "x-atoll-port";
/// `x-atoll-version: canary` sends a request to the service's canary.
pub const VERSION_HEADER: &str = "x-atoll-version";

/// How a request reached the gateway, which decides the port an instance
/// is called on.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// On a published port: a container gets the target port behind it.
    Published(u16),
    /// By service name, at this port (`http://api:8080/`, 80 by default).
    Service(u16),
}
/// Rounds over the routing table for one request when its instances all
/// turned out to be gone, and the wait for a newer table between rounds.
const STALE_ROUNDS: usize = 3;
const STALE_WAIT: std::time::Duration = std::time::Duration::from_millis(25);

/// Largest request body the gateway buffers (it buffers so that a request
/// whose connection failed can be retried on another instance).
pub const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// How long a request for a service scaled to zero is held while an
/// instance starts; past it, 503 with `Retry-After`.
pub const WAKE_HOLD: std::time::Duration = std::time::Duration::from_secs(10);
/// A held request asks again this often, in case a wake-up was lost.
const WAKE_AGAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Asks the control plane for an instance of (app, service).
pub type Waker = Box<dyn Fn(&str, &str) + Send + Sync>;

pub struct Gateway {
    host: String,
    bind: IpAddr,
    table: RwLock<Arc<Table>>,
    /// Woken whenever the table is replaced.
    table_changed: tokio::sync::Notify,
    waker: std::sync::OnceLock<Waker>,
    local: LocalInstances,
    peers: forward::Peers,
    vips: vips::ServiceAddresses,
}

impl Gateway {
    pub fn new(host: &str, bind: IpAddr, local: LocalInstances) -> Arc<Gateway> {
        Arc::new(Gateway {
            host: host.to_string(),
            bind,
            table: RwLock::default(),
            table_changed: tokio::sync::Notify::new(),
            waker: std::sync::OnceLock::new(),
            local,
            peers: forward::Peers::new(),
            vips: vips::ServiceAddresses::default(),
        })
    }

    fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_table(&self, t: Table) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(t);
        self.table_changed.notify_waiters();
    }

    /// Sets how the gateway asks for an instance of a service scaled to
    /// zero (once; later calls are ignored).
    pub fn set_waker(&self, waker: Waker) {
        let _ = self.waker.set(waker);
    }

    /// Holds a request for a service that has no ready instance and scales
    /// from zero: asks for one, and waits (bounded by [`WAKE_HOLD`]) for a
    /// table in which the service has an endpoint.
    async fn hold(&self, app: &str, service: &str) -> Option<Arc<Table>> {
        let deadline = tokio::time::Instant::now() + WAKE_HOLD;
        let key = (app.to_string(), service.to_string());
        let mut asked: Option<tokio::time::Instant> = None;
        loop {
            let changed = self.table_changed.notified();
            let table = self.table();
            if table
                .by_service
                .get(&key)
                .is_some_and(|r| !r.endpoints.is_empty())
            {
                return Some(table);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return None;
            }
            if asked.is_none_or(|at| now >= at + WAKE_AGAIN) {
                if let Some(wake) = self.waker.get() {
                    wake(app, service);
                }
                asked = Some(now);
            }
            let until = deadline.min(now + WAKE_AGAIN);
            let _ = tokio::time::timeout_at(until, changed).await;
        }
    }

    /// Serves one request that arrived on published port `port`.
    pub async fn handle<B>(&self, port: u16, req: Request<B>) -> Response<ResponseBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let req = match read_body(req).await {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        if req.headers().contains_key(HOP_HEADER) {
            return self.serve_forwarded(port, req).await;
        }
        let table = self.table();
        let Some(route) = table.by_port.get(&port) else {
            return text(
                StatusCode::NOT_FOUND,
                format!("no service is published on port {port}"),
            );
        };
        self.balance(route, Via::Published(port), &req).await
    }

    /// Serves `req` from the route's instances within the service's
    /// timeout (504 past it). A service scaled to zero is woken first.
    async fn balance(
        &self,
        route: &routes::Route,
        via: Via,
        req: &Request<Bytes>,
    ) -> Response<ResponseBody> {
        if route.endpoints.is_empty() && route.wake {
            let woken = self.hold(&route.app, &route.service).await;
            let key = (route.app.clone(), route.service.clone());
            let Some(route) = woken.as_ref().and_then(|t| t.by_service.get(&key)) else {
                let mut resp = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "service {} of app {} is starting from zero and was not ready within {WAKE_HOLD:?}; retry",
                        route.service, route.app
                    ),
                );
                resp.headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
                return resp;
            };
            return self.balance_ready(route, via, req).await;
        }
        self.balance_ready(route, via, req).await
    }

    async fn balance_ready(
        &self,
        route: &routes::Route,
        via: Via,
        req: &Request<Bytes>,
    ) -> Response<ResponseBody> {
        match tokio::time::timeout(route.timeout, self.attempt(route, via, req)).await {
            Ok(resp) => resp,
            Err(_) => text(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "service {} of app {} did not answer within {:?}",
                    route.service, route.app, route.timeout
                ),
            ),
        }
    }

    /// Picks an instance, and tries another when the chosen one cannot be
    /// reached (nothing was sent to it, so a retry is safe). When every
    /// instance of this table said it is not there — the table is behind a
    /// rolling update that just moved on — it tries again, a few times,
    /// with the table as it is then.
    async fn attempt(
        &self,
        route: &routes::Route,
        via: Via,
        req: &Request<Bytes>,
    ) -> Response<ResponseBody> {
        // A tester pins a request to the canary with this header.
        let pinned = (req.headers().get(VERSION_HEADER)).is_some_and(|v| v.as_bytes() == b"canary");
        let mut fresh: Option<Arc<Table>> = None;
        for round in 0..STALE_ROUNDS {
            let current = match &fresh {
                Some(t) => t
                    .by_service
                    .get(&(route.app.clone(), route.service.clone())),
                None => Some(route),
            };
            let Some(current) = current else { break };
            let mut attempts = balance::Attempts::new(current, pinned);
            let mut absent = false;
            while let Some((i, ep)) = attempts.next() {
                let _guard = Outstanding::enter(ep);
                match self.try_endpoint(ep, via, req).await {
                    Ok(resp) => return resp,
                    Err(why) => {
                        absent |= why == Unsent::Absent;
                        let host_down = why == Unsent::Unreachable && ep.endpoint.host != self.host;
                        attempts.failed(i, host_down);
                    }
                }
            }
            if !absent || round + 1 == STALE_ROUNDS {
                break;
            }
            tokio::time::sleep(STALE_WAIT).await;
            fresh = Some(self.table());
        }
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no ready instance of service {} (app {}) could take the request",
                route.service, route.app
            ),
        )
    }

    /// Why not, when the request could not be sent to the endpoint.
    async fn try_endpoint(
        &self,
        ep: &RouteEndpoint,
        via: Via,
        req: &Request<Bytes>,
    ) -> Result<Response<ResponseBody>, Unsent> {
        if ep.endpoint.host == self.host {
            let (inst, in_flight) = self.local.checkout(&ep.endpoint.id).ok_or(Unsent::Absent)?;
            let port = match via {
                Via::Published(p) => inst.target_port(p),
                Via::Service(p) => Some(p),
            };
            return (self
                .serve_local(&inst, in_flight, port, copy_request(req))
                .await)
                .ok_or(Unsent::Absent);
        }
        let mut fwd = copy_request(req);
        let headers = fwd.headers_mut();
        headers.insert(HOP_HEADER, HeaderValue::from_static("1"));
        if let Ok(v) = HeaderValue::from_str(&ep.endpoint.id) {
            headers.insert(INSTANCE_HEADER, v);
        }
        match via {
            Via::Published(port) => self.peers.send(&ep.endpoint.address, port, fwd).await,
            Via::Service(port) => {
                headers.insert(PORT_HEADER, HeaderValue::from(port));
                let mesh = ep.endpoint.mesh_port;
                self.peers.send(&ep.endpoint.address, mesh, fwd).await
            }
        }
    }

    /// A call by service name from inside `app` (a component's outgoing
    /// HTTP to `http://api/…`): balanced over the service's ready
    /// instances cluster-wide. `None` when the app has no such service.
    pub async fn call_service(
        &self,
        app: &str,
        service: &str,
        port: u16,
        req: Request<Bytes>,
    ) -> Option<Response<ResponseBody>> {
        let table = self.table();
        let route = table
            .by_service
            .get(&(app.to_string(), service.to_string()))?;
        Some(self.balance(route, Via::Service(port), &req).await)
    }

    /// Serves a service call another host forwarded to this host's mesh
    /// port: from the named local instance, at the port the caller asked.
    pub async fn serve_mesh<B>(&self, req: Request<B>) -> Response<ResponseBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Some((id, port)) = forwarded_to(req.headers()) else {
            return text(
                StatusCode::BAD_REQUEST,
                "the mesh port takes service calls forwarded by atoll hosts only".into(),
            );
        };
        let req = match read_body(req).await {
            Ok(r) => strip_hop(r.map(Full::new)),
            Err(resp) => return resp,
        };
        let served = match self.local.checkout(&id) {
            Some((inst, in_flight)) => self.serve_local(&inst, in_flight, Some(port), req).await,
            None => None,
        };
        served.unwrap_or_else(|| self.absent(&id))
    }

    /// Serves a request another gateway forwarded, from the named local
    /// instance — only if that instance belongs to the service published
    /// on this port, so the header cannot reach another app's instances.
    async fn serve_forwarded(&self, port: u16, req: Request<Bytes>) -> Response<ResponseBody> {
        let id = req
            .headers()
            .get(INSTANCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let routed = self
            .table()
            .by_port
            .get(&port)
            .is_some_and(|r| r.endpoints.iter().any(|e| e.endpoint.id == id));
        let served = match self.local.checkout(&id).filter(|_| routed) {
            Some((inst, in_flight)) => {
                let target = inst.target_port(port);
                self.serve_local(&inst, in_flight, target, strip_hop(req.map(Full::new)))
                    .await
            }
            None => None,
        };
        served.unwrap_or_else(|| self.absent(&id))
    }

    /// The answer for a forwarded request whose instance is not here: the
    /// sender treats it as "not reachable" and tries another.
    fn absent(&self, id: &str) -> Response<ResponseBody> {
        let mut resp = text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("instance {id} does not run on host {}", self.host),
        );
        resp.headers_mut()
            .insert(INSTANCE_HEADER, HeaderValue::from_static("absent"));
        resp
    }
}

impl Gateway {
    /// Serves a request from a local instance: a component in-process (any
    /// port), a container over the bridge at its address and container
    /// port `port`. `None` when the container cannot be reached (safe to
    /// retry elsewhere).
    async fn serve_local(
        &self,
        inst: &Reach,
        in_flight: InFlight,
        port: Option<u16>,
        req: Request<Full<Bytes>>,
    ) -> Option<Response<ResponseBody>> {
        let resp = match inst {
            Reach::InProcess(h) => h.handle(req).await,
            Reach::Network { address, .. } => self
                .peers
                .send(&address.to_string(), port?, req)
                .await
                .ok()?,
        };
        // The request is in flight until its body has been sent: a drain
        // waits for streamed answers too.
        Some(resp.map(|body| {
            body.map_frame(move |frame| {
                let _held = &in_flight;
                frame
            })
            .boxed_unsync()
        }))
    }
}

/// A container is not a gateway: it gets the request without atoll's
/// routing headers.
fn strip_hop(mut req: Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    req.headers_mut().remove(HOP_HEADER);
    req.headers_mut().remove(INSTANCE_HEADER);
    req.headers_mut().remove(PORT_HEADER);
    req
}

/// Components' service calls, through the gateway (held weakly: instances
/// live in the gateway's table, which must not keep the gateway alive).
pub struct ServiceCalls(std::sync::Weak<Gateway>);

impl ServiceCalls {
    pub fn new(gateway: std::sync::Weak<Gateway>) -> Self {
        ServiceCalls(gateway)
    }
}

impl crate::wasm::Outbound for ServiceCalls {
    fn call(
        &self,
        app: String,
        service: String,
        port: u16,
        req: Request<Bytes>,
    ) -> futures::future::BoxFuture<'static, Option<Response<ResponseBody>>> {
        let gw = self.0.upgrade();
        Box::pin(async move { gw?.call_service(&app, &service, port, req).await })
    }

    fn service_address(
        &self,
        app: String,
        name: String,
    ) -> futures::future::BoxFuture<'static, Result<std::net::Ipv4Addr, AddressError>> {
        let gw = self.0.upgrade();
        Box::pin(async move {
            let gw = gw.ok_or(AddressError::Stopping)?;
            let key = (app, name);
            if !gw.table().by_service.contains_key(&key) {
                let (app, service) = key;
                return Err(AddressError::NoService { app, service });
            }
            let vip = service_vip(&key.0, &key.1);
            gw.vips.ready(&key.0, vip).await?;
            Ok(vip)
        })
    }

    fn may_connect(&self, app: &str, ip: IpAddr) -> bool {
        let (Some(gw), IpAddr::V4(ip)) = (self.0.upgrade(), ip) else {
            return false;
        };
        gw.vips.is_ready(ip)
            && (gw.table().by_service.keys()).any(|(a, s)| a == app && service_vip(a, s) == ip)
    }
}

/// The whole body of a request, up to [`MAX_REQUEST_BODY`] (the gateway
/// buffers so that a request whose connection failed can be retried), or
/// the 413 to answer.
pub(crate) async fn read_body<B>(req: Request<B>) -> Result<Request<Bytes>, Response<ResponseBody>>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(b) => Ok(Request::from_parts(parts, b.to_bytes())),
        Err(e) => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body rejected: {e} (limit {MAX_REQUEST_BODY} bytes)"),
        )),
    }
}

/// The local instance and port a request another host forwarded to the
/// mesh port is for (it must carry the hop marker).
fn forwarded_to(headers: &http::HeaderMap) -> Option<(String, u16)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header(HOP_HEADER)?;
    let id = header(INSTANCE_HEADER)?.to_string();
    let port = header(PORT_HEADER)?.parse().ok()?;
    Some((id, port))
}

/// Counts a request against an endpoint for as long as it is in flight.
struct Outstanding<'a>(&'a RouteEndpoint);

impl<'a> Outstanding<'a> {
    fn enter(ep: &'a RouteEndpoint) -> Self {
        ep.outstanding.fetch_add(1, Ordering::Relaxed);
        Outstanding(ep)
    }
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

fn copy_request(req: &Request<Bytes>) -> Request<Full<Bytes>> {
    let mut out = Request::new(Full::new(req.body().clone()));
    *out.method_mut() = req.method().clone();
    *out.uri_mut() = req.uri().clone();
    *out.version_mut() = req.version();
    *out.headers_mut() = req.headers().clone();
    out
}

/// A Prometheus exposition.
fn prometheus_text(text: String) -> Response<ResponseBody> {
    with_body(StatusCode::OK, text, atoll_sdk::prometheus::CONTENT_TYPE)
}

/// A short plain-text answer from the gateway itself.
pub fn text(status: StatusCode, msg: String) -> Response<ResponseBody> {
    with_body(status, msg + "\n", "text/plain; charset=utf-8")
}

fn with_body(
    status: StatusCode,
    body: String,
    content_type: &'static str,
) -> Response<ResponseBody> {
    let body = Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    resp
}

pub use listeners::{run, run_mesh};
