//! Forwarding to a peer host's gateway over pooled keep-alive connections.

use crate::wasm::ResponseBody;
use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
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
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Peers {
    pub fn new() -> Peers {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(connector);
        Peers { client }
    }

    /// Sends `req` to `address:port`; why not when the peer could not be
    /// reached or said the instance is not there (safe to retry elsewhere).
    pub async fn send(
        &self,
        address: &str,
        port: u16,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<ResponseBody>, Unsent> {
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let uri: Uri =
            (format!("http://{address}:{port}{path}").parse()).map_err(|_| Unsent::Unreachable)?;
        *req.uri_mut() = uri;
        *req.version_mut() = http::Version::HTTP_11;
        let idempotent = req.method().is_idempotent();
        match self.client.request(req).await {
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
}
