//! The gateway: every host listens on every published port of the cluster
//! (on its `--bind` address) and balances each request over the ready
//! instances of the service behind that port — local ones in-process,
//! remote ones through the peer host's gateway. No NATS on the request
//! path: the routing table comes from a mirror of the endpoints bucket
//! (before the host has reached NATS, from its cached assignment).
//!
//! This file holds the gateway, its table and the request path; each
//! policy on that path is a file of its own: `wake` (hold a request for a
//! service scaled to zero), `timeout`, `retry` (another instance on
//! connect failure, another round on a stale table), `attempts` and
//! `balance` (which instances to try), `dispatch` (reaching one),
//! `forwarded` (serving what other hosts forwarded), `service_calls`
//! (components' calls by name) and `responses`.

mod attempts;
pub(crate) mod balance;
mod catch_all;
mod dispatch;
mod forward;
mod forwarded;
mod idle_body;
mod listeners;
mod mesh_policy;
pub(crate) mod mesh_tls;
mod payload;
mod responses;
mod retry;
pub(crate) mod routes;
mod server_limits;
mod service_calls;
mod service_stream;
mod tcp;
mod timeout;
pub(crate) mod vips;
mod wake;

/// The pure parts the fuzz targets (`fuzz/`) drive directly.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::gateway::forwarded::forwarded_to;
    pub use crate::gateway::mesh_policy::{allows_published, allows_service_call};
    pub use crate::gateway::routes::{Route, Table, build};
    pub use crate::gateway::{HOP_HEADER, INSTANCE_HEADER, PORT_HEADER};
}

pub(crate) use listeners::{EndpointsMap, default_metrics_addr, run, run_mesh};
pub(crate) use payload::read_body;
pub(crate) use payload::{Payload, RequestBody};
pub(crate) use responses::text;
pub use server_limits::ServerLimits;
pub(crate) use service_calls::ServiceCalls;
pub(crate) use wake::Waker;

use crate::local_instances::LocalInstances;
use crate::wasm::ResponseBody;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use routes::{Route, Table};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock, RwLock};

/// Set on requests one gateway forwards to another: the receiver serves
/// them from the named local instance only, so a request never loops.
pub const HOP_HEADER: &str = "x-atoll-hop";
/// The instance a forwarded request is for.
pub const INSTANCE_HEADER: &str = "x-atoll-instance";
/// On a forwarded service call: the port the caller asked for.
pub const PORT_HEADER: &str = "x-atoll-port";
/// On a forwarded request for a published port (rather than a service
/// call): the port is the published one.
pub const PUBLISHED_HEADER: &str = "x-atoll-published";
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

pub struct Gateway {
    host: String,
    bind: IpAddr,
    table: RwLock<Arc<Table>>,
    /// Woken whenever the table is replaced.
    table_changed: tokio::sync::Notify,
    waker: OnceLock<Waker>,
    local: LocalInstances,
    peers: forward::Peers,
    vips: vips::ServiceAddresses,
    /// What each listener grants a client.
    limits: ServerLimits,
}

impl Gateway {
    /// `tls`: the mesh's, for a host with an identity (plain otherwise).
    pub fn new(
        host: &str,
        bind: IpAddr,
        local: LocalInstances,
        tls: Option<mesh_tls::MeshTls>,
        limits: ServerLimits,
    ) -> Arc<Gateway> {
        Arc::new(Gateway {
            host: host.to_string(),
            bind,
            table: RwLock::default(),
            table_changed: tokio::sync::Notify::new(),
            waker: OnceLock::new(),
            local,
            peers: forward::Peers::new(tls),
            vips: vips::ServiceAddresses::default(),
            limits,
        })
    }

    /// Waits (bounded: [`vips::READY_WAIT`]) until this host answers on
    /// `app`'s service addresses, so that a container starting now can
    /// call its app's services from its first instruction, as on a Compose
    /// network. Names what is not served yet; the caller starts the
    /// container anyway (the addresses follow within a moment).
    pub(crate) async fn serve_addresses_of(
        &self,
        app: &str,
        addresses: impl Iterator<Item = std::net::Ipv4Addr>,
    ) -> Result<(), crate::wasm::links::AddressError> {
        let waits = addresses.map(|vip| self.vips.ready(app, vip));
        futures::future::try_join_all(waits).await.map(drop)
    }

    fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_table(&self, t: Table) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(t);
        self.table_changed.notify_waiters();
    }

    /// Serves one request that arrived on published port `port`.
    pub async fn handle<B>(&self, port: u16, req: Request<B>) -> Response<ResponseBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let req = match read_body(req, self.limits.body_timeout).await {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let table = self.table();
        let Some(route) = table.by_port.get(&port) else {
            return text(
                StatusCode::NOT_FOUND,
                format!("no service is published on port {port}"),
            );
        };
        self.balance(route, Via::Published(port), &req).await
    }

    /// Serves `req` from the route's instances: a service scaled to zero
    /// is woken first, then the attempts (and their retries) run within
    /// the service's timeout.
    async fn balance(
        &self,
        route: &Route,
        via: Via,
        req: &Request<Payload>,
    ) -> Response<ResponseBody> {
        let woken;
        let route = if wake::asleep(route) {
            woken = match self.wake(route).await {
                Ok(r) => r,
                Err(resp) => return resp,
            };
            &woken
        } else {
            route
        };
        timeout::within(route, self.attempt(route, via, req)).await
    }
}
