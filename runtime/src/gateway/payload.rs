//! A request's body on its way through the gateway. A small body (a known
//! length up to [`BUFFER_UP_TO`]) is read whole first, so that a request
//! whose instance could not be reached is retried on another; a larger or
//! chunked one is streamed to the instance as it arrives (memory stays
//! flat for an upload of any size), and goes to the first instance that
//! takes it, without a retry. Both are bounded by [`MAX_REQUEST_BODY`]:
//! a declared length over it is answered 413 at once, a stream that grows
//! past it is cut; and in time, by [`super::idle_body`].

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};

use hyper::body::Body as _;

use super::idle_body::{BodyStalled, IdleBounded};
use super::responses::text;
use crate::wasm::{BodyError, ResponseBody};

/// Largest request body (declared or streamed).
pub const MAX_REQUEST_BODY: usize = 1024 * 1024 * 1024;
/// Bodies of a known length up to this are read whole (and retried).
pub const BUFFER_UP_TO: usize = 1024 * 1024;

/// The body as it is sent on to an instance.
pub type RequestBody = UnsyncBoxBody<Bytes, BodyError>;

/// A request body the gateway holds: whole, or a stream that can be sent
/// once.
pub enum Payload {
    Whole(Bytes),
    Streamed(Mutex<Option<RequestBody>>),
}

impl Payload {
    /// The body for one attempt; `None` when a stream was already sent.
    fn take(&self) -> Option<RequestBody> {
        match self {
            Payload::Whole(b) => Some(
                Full::new(b.clone())
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            ),
            Payload::Streamed(s) => s.lock().unwrap_or_else(|e| e.into_inner()).take(),
        }
    }
}

/// How the gateway reads `req`'s body, from its declared length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// No body, or a known small one: read it whole.
    Whole,
    /// Larger than [`BUFFER_UP_TO`], or of unknown length: stream it.
    Stream,
    /// Declared larger than [`MAX_REQUEST_BODY`]: refuse it.
    TooLarge,
}

/// The plan for a body of `declared` length (`Content-Length`), if any;
/// `ended`: the body is known to be empty.
pub fn plan(declared: Option<u64>, ended: bool) -> Plan {
    match declared {
        _ if ended => Plan::Whole,
        Some(n) if n > MAX_REQUEST_BODY as u64 => Plan::TooLarge,
        Some(n) if n <= BUFFER_UP_TO as u64 => Plan::Whole,
        _ => Plan::Stream,
    }
}

/// Takes `req`'s body as [`plan`] says, or the answer to give instead.
/// A client that sends no part of the body for `idle` is answered 408
/// (or, once the body streams to an instance, cut).
pub(crate) async fn read_body<B>(
    req: Request<B>,
    idle: Duration,
) -> Result<Request<Payload>, Response<ResponseBody>>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BodyError>,
{
    let (parts, body) = req.into_parts();
    let body = IdleBounded::new(body, idle);
    let declared = (parts.headers.get(http::header::CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body too large (limit {MAX_REQUEST_BODY} bytes)"),
        )
    };
    let payload = match plan(declared, body.is_end_stream()) {
        Plan::TooLarge => return Err(too_large()),
        Plan::Whole => match Limited::new(body, BUFFER_UP_TO).collect().await {
            Ok(b) => Payload::Whole(b.to_bytes()),
            Err(e) if e.is::<BodyStalled>() => {
                return Err(text(StatusCode::REQUEST_TIMEOUT, format!("{e}")));
            }
            Err(e) => {
                return Err(text(
                    StatusCode::BAD_REQUEST,
                    format!("request body could not be read: {e}"),
                ));
            }
        },
        Plan::Stream => {
            let limited = Limited::new(body, MAX_REQUEST_BODY).map_err(BodyError::from);
            Payload::Streamed(Mutex::new(Some(limited.boxed_unsync())))
        }
    };
    Ok(Request::from_parts(parts, payload))
}

/// A copy of `req` for one attempt; `None` when its streamed body was
/// already sent to another instance.
pub(super) fn copy_request(req: &Request<Payload>) -> Option<Request<RequestBody>> {
    let mut out = Request::new(req.body().take()?);
    *out.method_mut() = req.method().clone();
    *out.uri_mut() = req.uri().clone();
    *out.version_mut() = req.version();
    *out.headers_mut() = req.headers().clone();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_are_read_whole_and_large_or_unknown_ones_streamed() {
        assert_eq!(plan(None, true), Plan::Whole, "no body");
        assert_eq!(plan(Some(0), false), Plan::Whole);
        assert_eq!(plan(Some(BUFFER_UP_TO as u64), false), Plan::Whole);
        assert_eq!(plan(Some(BUFFER_UP_TO as u64 + 1), false), Plan::Stream);
        assert_eq!(plan(None, false), Plan::Stream, "chunked");
        assert_eq!(plan(Some(200 << 20), false), Plan::Stream);
        assert_eq!(
            plan(Some(MAX_REQUEST_BODY as u64 + 1), false),
            Plan::TooLarge
        );
    }

    #[test]
    fn a_streamed_body_is_sent_once_a_whole_one_every_time() {
        let whole = Request::new(Payload::Whole(Bytes::from_static(b"x")));
        assert!(copy_request(&whole).is_some() && copy_request(&whole).is_some());
        let body = Full::new(Bytes::from_static(b"y"))
            .map_err(|never| match never {})
            .boxed_unsync();
        let streamed = Request::new(Payload::Streamed(Mutex::new(Some(body))));
        assert!(copy_request(&streamed).is_some());
        assert!(copy_request(&streamed).is_none(), "not twice");
    }
}
