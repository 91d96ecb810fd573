//! Serving what other hosts' gateways forwarded here. A forwarded request
//! carries the hop marker and names its instance, and is served from that
//! local instance only — never balanced again, so a request cannot loop
//! between hosts. When the instance is not here (any more), the answer
//! says so ([`absent`](Gateway::absent)) and the sender tries another.
//! Containers get requests without atoll's routing headers.

use super::{
    Gateway, HOP_HEADER, INSTANCE_HEADER, PORT_HEADER, ResponseBody, Via, read_body, text,
};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;

impl Gateway {
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
            Some(instance) => self.serve_local(instance, Via::Service(port), req).await,
            None => None,
        };
        served.unwrap_or_else(|| self.absent(&id))
    }

    /// Serves a request another gateway forwarded to published port `port`,
    /// from the named local instance — only if that instance belongs to the
    /// service published on this port, so the header cannot reach another
    /// app's instances.
    pub(super) async fn serve_forwarded(
        &self,
        port: u16,
        req: Request<Bytes>,
    ) -> Response<ResponseBody> {
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
        let req = strip_hop(req.map(Full::new));
        let served = match self.local.checkout(&id).filter(|_| routed) {
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
pub(super) fn forwarded_to(headers: &http::HeaderMap) -> Option<(String, u16)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header(HOP_HEADER)?;
    let id = header(INSTANCE_HEADER)?.to_string();
    let port = header(PORT_HEADER)?.parse().ok()?;
    Some((id, port))
}

/// A container is not a gateway: it gets the request without atoll's
/// routing headers.
fn strip_hop(mut req: Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    req.headers_mut().remove(HOP_HEADER);
    req.headers_mut().remove(INSTANCE_HEADER);
    req.headers_mut().remove(PORT_HEADER);
    req
}
