//! Serving what other hosts' gateways forwarded here. A forwarded request
//! carries the hop marker and names its instance, and is served from that
//! local instance only — never balanced again, so a request cannot loop
//! between hosts. When the instance is not here (any more), the answer
//! says so ([`absent`](Gateway::absent)) and the sender tries another.
//! Containers get requests without atoll's routing headers.

use super::payload::copy_request;
use super::{
    Gateway, HOP_HEADER, INSTANCE_HEADER, PORT_HEADER, PUBLISHED_HEADER, Payload, RequestBody,
    ResponseBody, Via, mesh_policy, read_body, text,
};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};

impl Gateway {
    /// Serves what another host forwarded to this host's mesh port: a
    /// service call, from the named local instance at the port the caller
    /// asked; a request for a published port, from the named instance of
    /// the service published there. Only what the routing table allows
    /// ([`mesh_policy`](super::mesh_policy)).
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
        let published = req.headers().contains_key(PUBLISHED_HEADER);
        let req = match read_body(req, self.limits.body_timeout).await {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        if published {
            return self.serve_forwarded(port, req).await;
        }
        let Some(req) = copy_request(&req) else {
            return self.absent(&id);
        };
        let req = strip_hop(req);
        let served = match self.local.checkout(&id) {
            Some(instance) => {
                if !mesh_policy::allows_service_call(port) {
                    return refused(&id, port);
                }
                self.serve_local(instance, Via::Service(port), req).await
            }
            None => None,
        };
        served.unwrap_or_else(|| self.absent(&id))
    }

    /// Serves a request another gateway forwarded for published port
    /// `port`, from the named local instance — only if that instance
    /// belongs to the service published on this port.
    async fn serve_forwarded(&self, port: u16, req: Request<Payload>) -> Response<ResponseBody> {
        let id = req
            .headers()
            .get(INSTANCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let Some((app, service)) = self.local.service_of(&id) else {
            return self.absent(&id);
        };
        if !mesh_policy::allows_published(&self.table(), (&app, &service), port) {
            return refused(&id, port);
        }
        let Some(req) = copy_request(&req) else {
            return self.absent(&id);
        };
        let req = strip_hop(req);
        let served = match self.local.checkout(&id) {
            Some(instance) => self.serve_local(instance, Via::Published(port), req).await,
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

/// The local instance and port a request another host forwarded to the
/// mesh port is for (it must carry the hop marker).
pub fn forwarded_to(headers: &http::HeaderMap) -> Option<(String, u16)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header(HOP_HEADER)?;
    let id = header(INSTANCE_HEADER)?.to_string();
    let port = header(PORT_HEADER)?.parse().ok()?;
    Some((id, port))
}

/// A forwarded call the routing table here does not allow. Answered like
/// an absent instance (the sender tries another): a table that lags the
/// sender's by a moment must not fail a request.
pub(super) fn refused(id: &str, port: u16) -> Response<ResponseBody> {
    tracing::warn!(
        instance = id,
        port,
        "refused a forwarded call the routing table does not allow"
    );
    let mut resp = text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("refused: the routing table here does not lead to instance {id} on port {port}"),
    );
    resp.headers_mut()
        .insert(INSTANCE_HEADER, HeaderValue::from_static("refused"));
    resp
}

/// A container is not a gateway: it gets the request without atoll's
/// routing headers.
fn strip_hop(mut req: Request<RequestBody>) -> Request<RequestBody> {
    req.headers_mut().remove(HOP_HEADER);
    req.headers_mut().remove(INSTANCE_HEADER);
    req.headers_mut().remove(PORT_HEADER);
    req.headers_mut().remove(PUBLISHED_HEADER);
    req
}
