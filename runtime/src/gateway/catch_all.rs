//! The service proxy's catch-all: in Compose every port of a service is
//! reachable from the others (`db:5432` whether or not `ports:` names
//! 5432), so a connection to a service address on a port without a
//! listener of its own is turned by the firewall (NAT) to one listener on
//! the bridge address, which reads where it was headed
//! (`SO_ORIGINAL_DST`) and serves it as the service's listener there
//! would. Which app may reach which address is the firewall's decision
//! (containers) and the component socket check's (`vips::serves`).

use super::Gateway;
use super::listeners::accept;
use super::routes::Route;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

/// A listener on a free port of `address` (the bridge's).
pub(super) fn bind(address: Ipv4Addr) -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((address, 0).into())?;
    socket.listen(1024)
}

/// Where `stream` was headed before NAT turned it here; `None` for a
/// connection made to the catch-all itself.
fn original_destination(stream: &TcpStream) -> Option<SocketAddrV4> {
    let mut addr = libc::sockaddr_in {
        sin_family: 0,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: 0 },
        sin_zero: [0; 8],
    };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `addr`, which is
    // that large, on a descriptor `stream` keeps open.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_IP,
            libc::SO_ORIGINAL_DST,
            (&mut addr as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    };
    if rc != 0 || i32::from(addr.sin_family) != libc::AF_INET {
        return None;
    }
    Some(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
        u16::from_be(addr.sin_port),
    ))
}

/// The app and service whose address is `vip`.
pub fn service_at(
    by_service: &BTreeMap<(String, String), Route>,
    vip: Ipv4Addr,
) -> Option<(String, String)> {
    (by_service.iter())
        .find(|(_, route)| route.vip == vip)
        .map(|(key, _)| key.clone())
}

/// Serves the catch-all until aborted.
pub(super) async fn serve(gw: Arc<Gateway>, listener: TcpListener) {
    let limits = gw.limits;
    accept(&limits, listener, move |stream| {
        let gw = gw.clone();
        async move {
            let local = stream.local_addr().ok();
            let Some(to) = original_destination(&stream).filter(|to| Some((*to).into()) != local)
            else {
                return;
            };
            let Some((app, service)) = service_at(&gw.table().by_service, *to.ip()) else {
                tracing::debug!(%to, "a connection to an address no service has now");
                return;
            };
            super::service_stream::serve(gw, stream, app, service, to.port()).await;
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::cluster::service_vip;
    use std::time::Duration;

    #[test]
    fn an_address_names_its_service() {
        let route = |app: &str, service: &str| Route {
            app: app.into(),
            service: service.into(),
            ports: Vec::new(),
            timeout: Duration::from_secs(1),
            endpoints: Vec::new(),
            canary_weight: 0,
            wake: false,
            vip: service_vip(app, service),
        };
        let by_service = BTreeMap::from([
            (("shop".into(), "db".into()), route("shop", "db")),
            (("blog".into(), "db".into()), route("blog", "db")),
        ]);
        assert_eq!(
            service_at(&by_service, service_vip("blog", "db")),
            Some(("blog".into(), "db".into()))
        );
        assert_eq!(service_at(&by_service, Ipv4Addr::new(10, 90, 0, 0)), None);
    }

    #[tokio::test]
    async fn a_direct_connection_has_no_original_destination_elsewhere() {
        let listener = bind(Ipv4Addr::LOCALHOST).unwrap();
        let at = listener.local_addr().unwrap();
        let client = TcpStream::connect(at).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        // Without NAT the kernel answers the connection's own address (or
        // nothing, without conntrack): never another one.
        let got = original_destination(&server);
        assert!(got.is_none() || got.map(std::net::SocketAddr::from) == Some(at));
        drop(client);
    }
}
