//! What a component reaches beyond itself, and only that: its app's
//! services, through the host's gateway ([`Outbound`], [`OutboundRoute`]),
//! and its app's key-value state ([`KeyValue`], [`KvRoute`]). The
//! bindings (`outbound`, `names`, `wasi_keyvalue`) and each request's store
//! (`host`) use these; the host fills them in ([`ComponentLinks`]).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use wasmtime_wasi::sockets::SocketAddrUse;

use super::ResponseBody;

/// What components of this host reach: the gateway and the app state
/// store (none, in a host that grants neither).
#[derive(Clone, Default)]
pub(crate) struct ComponentLinks {
    pub outbound: Option<Arc<dyn Outbound>>,
    pub kv: Option<Arc<dyn KeyValue>>,
}

/// Why a component cannot connect to a service by its address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the host is stopping")]
    Stopping,
    #[error("app {app} has no service {service:?}")]
    NoService { app: String, service: String },
    #[error("this host cannot serve service addresses (containers are not enabled)")]
    Disabled,
    #[error("service address {0} is not served on this host yet")]
    NotServed(Ipv4Addr),
}

/// Why the app state store failed a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("state of app {app} is unavailable: {reason}")]
    Unavailable { app: String, reason: String },
    #[error("{op}: no answer from NATS within {timeout:?}")]
    Timeout { op: &'static str, timeout: Duration },
    #[error("{op}: {reason}")]
    Failed { op: &'static str, reason: String },
}

/// Where service calls go (the host's gateway).
pub trait Outbound: Send + Sync {
    /// `None` when `app` has no service `service`.
    fn call(
        &self,
        app: String,
        service: String,
        port: u16,
        req: Request<Bytes>,
    ) -> BoxFuture<'static, Option<Response<ResponseBody>>>;

    /// The address service `name` of `app` answers plain TCP on, once this
    /// host serves it; why not otherwise.
    fn service_address(
        &self,
        app: String,
        name: String,
    ) -> BoxFuture<'static, Result<Ipv4Addr, AddressError>>;

    /// Whether a component of `app` may open a connection to `addr` (one
    /// of its app's service addresses, on a port atoll answers there).
    fn may_connect(&self, app: &str, addr: SocketAddr) -> bool;
}

/// A component's route out: its app and the gateway.
#[derive(Clone)]
pub struct OutboundRoute {
    pub app: String,
    pub to: Arc<dyn Outbound>,
}

impl std::fmt::Debug for OutboundRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundRoute")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

/// Largest value a component may store.
pub const MAX_VALUE_BYTES: usize = atoll_sdk::nats::APP_STATE_MAX_VALUE;
/// Longest key.
pub const MAX_KEY_BYTES: usize = 1024;

/// The storage behind the interface.
pub trait KeyValue: Send + Sync {
    fn get(
        &self,
        app: &str,
        bucket: &str,
        key: &str,
    ) -> BoxFuture<'static, Result<Option<Vec<u8>>, StoreError>>;
    fn set(
        &self,
        app: &str,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), StoreError>>;
    fn delete(
        &self,
        app: &str,
        bucket: &str,
        key: &str,
    ) -> BoxFuture<'static, Result<(), StoreError>>;
    /// Every key of the bucket, sorted.
    fn keys(&self, app: &str, bucket: &str) -> BoxFuture<'static, Result<Vec<String>, StoreError>>;
}

/// A component's access to key-value storage: its app and the backend.
#[derive(Clone)]
pub struct KvRoute {
    pub app: String,
    pub store: Arc<dyn KeyValue>,
}

impl std::fmt::Debug for KvRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvRoute")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

/// The socket check of a component's store: connecting to its app's
/// service addresses (and the implicit bind that comes with it) only.
pub(crate) fn socket_check(
    route: OutboundRoute,
) -> impl Fn(SocketAddr, SocketAddrUse) -> Pin<Box<dyn Future<Output = bool> + Send + Sync>>
+ Send
+ Sync
+ 'static {
    move |addr, use_| {
        let allowed = match use_ {
            SocketAddrUse::TcpConnect => route.to.may_connect(&route.app, addr),
            // `connect` binds an unbound socket to the wildcard address.
            SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
            _ => false,
        };
        Box::pin(std::future::ready(allowed))
    }
}
