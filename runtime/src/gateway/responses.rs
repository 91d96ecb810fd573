//! What the gateway answers by itself (plain-text errors, the host's
//! Prometheus metrics), and the request body it reads first: whole and
//! bounded by [`MAX_REQUEST_BODY`], because a request whose connection
//! failed is retried on another instance and must still be at hand.

use crate::wasm::ResponseBody;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};

/// Largest request body the gateway buffers (it buffers so that a request
/// whose connection failed can be retried on another instance).
pub const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// The whole body of a request, up to [`MAX_REQUEST_BODY`], or the 413 to
/// answer.
pub(crate) async fn read_body<B>(req: Request<B>) -> Result<Request<Bytes>, Response<ResponseBody>>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(b) => Ok(Request::from_parts(parts, b.to_bytes())),
        Err(e) => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body rejected: {e} (limit {MAX_REQUEST_BODY} bytes)"),
        )),
    }
}

/// A short plain-text answer from the gateway itself.
pub fn text(status: StatusCode, msg: String) -> Response<ResponseBody> {
    with_body(status, msg + "\n", "text/plain; charset=utf-8")
}

/// A Prometheus exposition.
pub fn prometheus_text(text: String) -> Response<ResponseBody> {
    with_body(StatusCode::OK, text, atoll_sdk::prometheus::CONTENT_TYPE)
}

fn with_body(
    status: StatusCode,
    body: String,
    content_type: &'static str,
) -> Response<ResponseBody> {
    let body = Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    resp
}
