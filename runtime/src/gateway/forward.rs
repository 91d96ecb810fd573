//! Forwarding to a peer host's gateway over pooled keep-alive connections
//! (mutual TLS between hosts with an identity), and to local containers.

use super::RequestBody;
use super::mesh_tls::{MeshTls, PeerAddresses};
use crate::wasm::ResponseBody;
use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Why a request went nowhere (it was not sent, or is safe to send again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsent {
    /// The peer could not be reached: its host is likely down.
    Unreachable,
    /// The peer answered that the instance is not there (stopped or not
    /// ready any more): its other instances are fine.
    Absent,
}

pub struct Peers {
    /// Plain HTTP: local containers, and peers of a lab cluster.
    client: Client<HttpConnector, RequestBody>,
    /// Peers over mutual TLS, when this host has an identity.
    mesh: Option<Mesh>,
}

struct Mesh {
    client: Client<HttpsConnector<HttpConnector<PeerAddresses>>, RequestBody>,
    addresses: PeerAddresses,
    tls: MeshTls,
}

fn pooled<C>(connector: C) -> Client<C, RequestBody>
where
    C: hyper_util::client::legacy::connect::Connect + Clone,
{
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build(connector)
}

impl Peers {
    pub fn new(tls: Option<MeshTls>) -> Peers {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        connector.set_nodelay(true);
        let mesh = tls.map(|tls| {
            let addresses = PeerAddresses::default();
            let mut http = HttpConnector::new_with_resolver(addresses.clone());
            http.set_connect_timeout(Some(Duration::from_secs(1)));
            http.set_nodelay(true);
            http.enforce_http(false);
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(rustls::ClientConfig::clone(&tls.client))
                .https_only()
                .enable_http1()
                .wrap_connector(http);
            Mesh {
                client: pooled(https),
                addresses,
                tls,
            }
        });
        Peers {
            client: pooled(connector),
            mesh,
        }
    }

    /// The mesh's TLS settings, when this host has an identity.
    pub fn tls(&self) -> Option<&MeshTls> {
        self.mesh.as_ref().map(|m| &m.tls)
    }

    /// Sends `req` to peer `host`'s gateway at `address:port` (its mesh
    /// port): over mutual TLS when this host has an identity.
    pub async fn send_peer(
        &self,
        host: &str,
        address: &str,
        port: u16,
        req: Request<RequestBody>,
    ) -> Result<Response<ResponseBody>, Unsent> {
        let Some(mesh) = &self.mesh else {
            return self.send(address, port, req).await;
        };
        let ip: std::net::IpAddr = address.parse().map_err(|_| Unsent::Unreachable)?;
        mesh.addresses.learn(host, ip);
        let authority = format!("{}:{port}", atoll_sdk::api::mesh_name(host));
        let (req, idempotent) = aimed(req, "https", &authority)?;
        finish(mesh.client.request(req).await, address, port, idempotent)
    }

    /// Sends `req` to `address:port` in plain HTTP; why not when the peer
    /// could not be reached or said the instance is not there (safe to
    /// retry elsewhere).
    pub async fn send(
        &self,
        address: &str,
        port: u16,
        req: Request<RequestBody>,
    ) -> Result<Response<ResponseBody>, Unsent> {
        let (req, idempotent) = aimed(req, "http", &format!("{address}:{port}"))?;
        finish(self.client.request(req).await, address, port, idempotent)
    }
}

/// `req` aimed at `scheme://authority` (its path kept), and whether it
/// may be sent twice.
fn aimed(
    mut req: Request<RequestBody>,
    scheme: &str,
    authority: &str,
) -> Result<(Request<RequestBody>, bool), Unsent> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let uri: Uri =
        (format!("{scheme}://{authority}{path}").parse()).map_err(|_| Unsent::Unreachable)?;
    *req.uri_mut() = uri;
    *req.version_mut() = http::Version::HTTP_11;
    let idempotent = req.method().is_idempotent();
    Ok((req, idempotent))
}

fn finish(
    sent: Result<Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
    address: &str,
    port: u16,
    idempotent: bool,
) -> Result<Response<ResponseBody>, Unsent> {
    match sent {
        Ok(resp) => {
            if resp.status() == http::StatusCode::SERVICE_UNAVAILABLE
                && resp.headers().contains_key(super::INSTANCE_HEADER)
            {
                return Err(Unsent::Absent);
            }
            Ok(resp.map(|b| b.map_err(Into::into).boxed_unsync()))
        }
        // Nothing was sent, or sending it twice is harmless (a pooled
        // connection to a peer that just died fails after the write):
        // try another instance.
        Err(e) if e.is_connect() || idempotent => {
            tracing::debug!(%address, port, error = %e, "peer gateway unreachable");
            Err(Unsent::Unreachable)
        }
        // A POST may have reached the instance: retrying could run it
        // twice, so the client gets the failure.
        Err(e) => Ok(super::text(
            http::StatusCode::BAD_GATEWAY,
            format!("peer gateway {address}:{port} failed mid-request: {e}"),
        )),
    }
}
