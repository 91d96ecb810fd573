//! Components' calls by service name (`http://api/…`, or a socket to
//! `api:5432`): the runtime hands a component's outgoing request to the
//! gateway, which balances it over the service's ready instances across
//! the cluster like any other request. Names resolve within the caller's
//! app only; a socket may connect only to its own app's service addresses.

use super::{Gateway, Payload, ResponseBody, Via};
use crate::wasm::links::AddressError;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Weak;

impl Gateway {
    /// A call by service name from inside `app` (a component's outgoing
    /// HTTP to `http://api/…`): balanced over the service's ready
    /// instances cluster-wide. `None` when the app has no such service.
    pub async fn call_service(
        &self,
        app: &str,
        service: &str,
        port: u16,
        req: Request<Payload>,
    ) -> Option<Response<ResponseBody>> {
        let table = self.table();
        let route = table
            .by_service
            .get(&(app.to_string(), service.to_string()))?;
        Some(self.balance(route, Via::Service(port), &req).await)
    }
}

/// Components' service calls, through the gateway (held weakly: instances
/// live in the gateway's table, which must not keep the gateway alive).
pub struct ServiceCalls(Weak<Gateway>);

impl ServiceCalls {
    pub fn new(gateway: Weak<Gateway>) -> ServiceCalls {
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
    ) -> BoxFuture<'static, Option<Response<ResponseBody>>> {
        let gw = self.0.upgrade();
        let req = req.map(Payload::Whole);
        Box::pin(async move { gw?.call_service(&app, &service, port, req).await })
    }

    fn service_address(
        &self,
        app: String,
        name: String,
    ) -> BoxFuture<'static, Result<Ipv4Addr, AddressError>> {
        let gw = self.0.upgrade();
        Box::pin(async move {
            let gw = gw.ok_or(AddressError::Stopping)?;
            let key = (app, name);
            let Some(vip) = gw.table().by_service.get(&key).map(|r| r.vip) else {
                let (app, service) = key;
                return Err(AddressError::NoService { app, service });
            };
            gw.vips.ready(&key.0, vip).await?;
            Ok(vip)
        })
    }

    fn may_connect(&self, app: &str, addr: SocketAddr) -> bool {
        let Some(gw) = self.0.upgrade() else {
            return false;
        };
        let IpAddr::V4(ip) = addr.ip() else {
            return false;
        };
        gw.vips.is_ready(ip) && super::vips::serves(&gw.table().by_service, app, addr)
    }
}
