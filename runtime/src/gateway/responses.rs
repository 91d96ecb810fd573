//! What the gateway answers by itself: plain-text errors and the host's
//! Prometheus metrics.

use crate::wasm::ResponseBody;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};

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
