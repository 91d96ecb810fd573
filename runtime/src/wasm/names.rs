//! Plain TCP from components to their app's services, by name.
//!
//! A component opens a socket with `wasi:sockets` (Rust's
//! `TcpStream::connect("db:5432")`, say). Its name lookups are answered
//! here instead of by the system resolver: a service of its own app
//! resolves to that service's virtual IP, which the host's gateway answers
//! on (see `gateway::vips`); any other name is unresolvable. The socket
//! check lets a component connect to those addresses only: no listening,
//! no UDP, nothing outside its app.
//!
//! `wasmtime-wasi`'s own `ip-name-lookup` is shadowed in the linker by the
//! functions below; its resource type cannot be built outside that crate,
//! so the address stream is a resource of ours.

use std::net::IpAddr;

use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::{DynPollable, Network, Pollable, subscribe};

use super::host::HostState;
use super::links::OutboundRoute;

/// The interface shadowed: the version `wasmtime-wasi` links, which
/// serves every 0.2.x import.
const INTERFACE: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// The addresses one lookup found, handed out one by one.
pub(crate) struct Lookup {
    addresses: std::vec::IntoIter<IpAddr>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Lookup {
    // Resolved before the resource is made: always ready.
    async fn ready(&mut self) {}
}

/// Replaces `wasi:sockets/ip-name-lookup` in `linker` (which must have
/// the WASI interfaces already) with service-name resolution.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut inst = linker.instance(INTERFACE)?;
    inst.resource(
        "resolve-address-stream",
        ResourceType::host::<Lookup>(),
        |mut store, rep| {
            store
                .data_mut()
                .table()
                .delete(Resource::<Lookup>::new_own(rep))?;
            Ok(())
        },
    )?;
    inst.func_wrap_async(
        "resolve-addresses",
        |mut store, (network, name): (Resource<Network>, String)| {
            Box::new(async move {
                let state = store.data_mut();
                // The network handle is the capability; it must be valid.
                state.table().get(&network)?;
                let route = state.outbound_route();
                let found = match resolve(route, &name).await {
                    Ok(addresses) => Ok(state.table().push(Lookup {
                        addresses: addresses.into_iter(),
                    })?),
                    Err(code) => Err(code),
                };
                Ok((found,))
            })
        },
    )?;
    inst.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store, (this,): (Resource<Lookup>,)| {
            let lookup = store.data_mut().table().get_mut(&this)?;
            let next: Result<Option<IpAddress>, ErrorCode> =
                Ok(lookup.addresses.next().map(IpAddress::from));
            Ok((next,))
        },
    )?;
    inst.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store, (this,): (Resource<Lookup>,)| {
            let pollable: Resource<DynPollable> = subscribe(store.data_mut().table(), this)?;
            Ok((pollable,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A service name of the component's app → its address; an IP literal →
/// itself (the socket check decides whether it may be used).
async fn resolve(route: Option<OutboundRoute>, name: &str) -> Result<Vec<IpAddr>, ErrorCode> {
    if let Ok(ip) = name.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let Some(route) = route else {
        return Err(ErrorCode::PermanentResolverFailure);
    };
    match route
        .to
        .service_address(route.app.clone(), name.to_string())
        .await
    {
        Ok(ip) => Ok(vec![IpAddr::V4(ip)]),
        Err(reason) => {
            tracing::debug!(app = %route.app, name, %reason, "a component's name lookup failed");
            Err(ErrorCode::NameUnresolvable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ResponseBody;
    use super::super::links::{AddressError, Outbound, socket_check};
    use super::*;
    use bytes::Bytes;
    use futures::future::BoxFuture;
    use std::net::Ipv4Addr;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use wasmtime_wasi::sockets::SocketAddrUse;

    /// A gateway whose app `shop` has one service, `db`, at 10.90.0.7.
    struct OneService;

    const DB: Ipv4Addr = Ipv4Addr::new(10, 90, 0, 7);

    impl Outbound for OneService {
        fn call(
            &self,
            _: String,
            _: String,
            _: u16,
            _: http::Request<Bytes>,
        ) -> BoxFuture<'static, Option<http::Response<ResponseBody>>> {
            Box::pin(async { None })
        }

        fn service_address(
            &self,
            app: String,
            name: String,
        ) -> BoxFuture<'static, Result<Ipv4Addr, AddressError>> {
            Box::pin(async move {
                (app == "shop" && name == "db")
                    .then_some(DB)
                    .ok_or(AddressError::NoService { app, service: name })
            })
        }

        fn may_connect(&self, app: &str, addr: std::net::SocketAddr) -> bool {
            app == "shop" && addr.ip() == IpAddr::V4(DB)
        }
    }

    fn route() -> OutboundRoute {
        OutboundRoute {
            app: "shop".into(),
            to: Arc::new(OneService),
        }
    }

    #[tokio::test]
    async fn service_names_resolve_and_other_names_do_not() {
        assert_eq!(
            resolve(Some(route()), "db").await.ok(),
            Some(vec![IpAddr::V4(DB)])
        );
        assert!(matches!(
            resolve(Some(route()), "example.com").await,
            Err(ErrorCode::NameUnresolvable)
        ));
        assert!(resolve(None, "db").await.is_err(), "no route, no lookups");
        let literal: IpAddr = "127.0.0.1"
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            resolve(Some(route()), "127.0.0.1").await.ok(),
            Some(vec![literal])
        );
    }

    #[tokio::test]
    async fn only_connections_to_the_apps_services_are_allowed() {
        let check = socket_check(route());
        let at = |ip: Ipv4Addr, port: u16| SocketAddr::from((ip, port));
        assert!(check(at(DB, 5432), SocketAddrUse::TcpConnect).await);
        assert!(!check(at(Ipv4Addr::LOCALHOST, 5432), SocketAddrUse::TcpConnect).await);
        assert!(check(at(Ipv4Addr::UNSPECIFIED, 0), SocketAddrUse::TcpBind).await);
        assert!(!check(at(Ipv4Addr::UNSPECIFIED, 8080), SocketAddrUse::TcpBind).await);
        assert!(!check(at(Ipv4Addr::UNSPECIFIED, 0), SocketAddrUse::TcpListen).await);
        assert!(!check(at(DB, 53), SocketAddrUse::UdpBind).await);
    }
}
