//! Reaching one endpoint: a local instance, or a peer host's gateway.
//! This is the only gateway code that knows the kinds of local instance
//! ([`Reach`]): one in-process is called there on any port, one on the
//! bridge at its address and the port it listens on.

use super::forward::Unsent;
use super::payload::copy_request;
use super::routes::RouteEndpoint;
use super::{
    Gateway, HOP_HEADER, INSTANCE_HEADER, PORT_HEADER, PUBLISHED_HEADER, Payload, RequestBody,
    ResponseBody, Via,
};
use crate::driver::Reach;
use crate::local_instances::InFlight;
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use tokio::net::TcpStream;

impl Gateway {
    /// Sends `req` to the endpoint: served here when the instance is local,
    /// forwarded to its host's gateway otherwise. Why not, when the request
    /// could not be sent to it (safe to try another).
    pub(super) async fn try_endpoint(
        &self,
        ep: &RouteEndpoint,
        via: Via,
        req: &Request<Payload>,
    ) -> Result<Response<ResponseBody>, Unsent> {
        if ep.endpoint.host == self.host {
            let instance = self.local.checkout(&ep.endpoint.id).ok_or(Unsent::Absent)?;
            let Some(copy) = copy_request(req) else {
                return Ok(sent_once());
            };
            return (self.serve_local(instance, via, copy).await).ok_or(Unsent::Absent);
        }
        let Some(mut fwd) = copy_request(req) else {
            return Ok(sent_once());
        };
        let headers = fwd.headers_mut();
        headers.insert(HOP_HEADER, HeaderValue::from_static("1"));
        if let Ok(v) = HeaderValue::from_str(&ep.endpoint.id) {
            headers.insert(INSTANCE_HEADER, v);
        }
        // Through the peer's mesh port either way: the only port between
        // hosts (mutual TLS when they have identities).
        let port = match via {
            Via::Published(port) => {
                headers.insert(PUBLISHED_HEADER, HeaderValue::from_static("1"));
                port
            }
            Via::Service(port) => port,
        };
        headers.insert(PORT_HEADER, HeaderValue::from(port));
        let (host, address) = (&ep.endpoint.host, &ep.endpoint.address);
        (self.peers)
            .send_peer(host, address, ep.endpoint.mesh_port, fwd)
            .await
    }

    /// Serves a request from a checked-out local instance: a component
    /// in-process (any port), one on the bridge at its address and the
    /// port `via` leads to. `None` when it cannot be reached
    /// (safe to retry elsewhere).
    pub(super) async fn serve_local(
        &self,
        (inst, in_flight): (Reach, InFlight),
        via: Via,
        req: Request<RequestBody>,
    ) -> Option<Response<ResponseBody>> {
        let resp = match &inst {
            Reach::InProcess(h) => h.handle(req).await,
            Reach::Network { address, .. } => {
                let port = match via {
                    // A container listens on the target port behind it.
                    Via::Published(p) => inst.target_port(p),
                    Via::Service(p) => Some(p),
                };
                let sent = self.peers.send(&address.to_string(), port?, req).await;
                sent.ok()?
            }
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

    /// [`dial_local`](Self::dial_local) for a peer's tunnel (see
    /// `mesh_policy`).
    pub(super) async fn dial_local_allowed(
        &self,
        id: &str,
        port: u16,
    ) -> Option<(TcpStream, InFlight)> {
        match self.local.checkout(id)? {
            (Reach::Network { address, .. }, in_flight)
                if super::mesh_policy::allows_service_call(port) =>
            {
                let stream = super::tcp::dial(&format!("{address}:{port}")).await?;
                Some((stream, in_flight))
            }
            (Reach::Network { .. }, _) => {
                tracing::warn!(instance = id, port, "refused a tunnel to port 0");
                None
            }
            (Reach::InProcess(_), _) => None,
        }
    }

    /// A TCP connection to local instance `id`'s `port`, counted in flight
    /// while the guard lives. `None` when the instance is not here or not
    /// ready, does not answer, or is served in-process (HTTP only).
    pub(super) async fn dial_local(&self, id: &str, port: u16) -> Option<(TcpStream, InFlight)> {
        match self.local.checkout(id)? {
            (Reach::Network { address, .. }, in_flight) => {
                let stream = super::tcp::dial(&format!("{address}:{port}")).await?;
                Some((stream, in_flight))
            }
            (Reach::InProcess(_), _) => None,
        }
    }
}

/// The answer when a streamed body went to an instance that failed:
/// it cannot be sent again.
fn sent_once() -> Response<ResponseBody> {
    super::text(
        http::StatusCode::BAD_GATEWAY,
        "the instance failed after the request's body was streamed to it; a streamed body is not sent twice".into(),
    )
}
