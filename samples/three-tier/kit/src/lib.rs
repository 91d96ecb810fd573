//! What the three-tier sample's components share: reading a request,
//! answering, and calling another service of the app by name
//! (`http://api/items`), which atoll routes wherever that service runs.

use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest,
    OutgoingResponse, ResponseOutparam, Scheme,
};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

/// Largest body read (more than the store takes, so that it is the store
/// that says a value is too large).
const MAX_BODY: usize = 4 << 20;

/// A request as plain data.
pub struct Request {
    pub method: Method,
    /// Path without the query.
    pub path: String,
    pub body: Vec<u8>,
}

/// Reads the whole request (bodies past 4 MiB are cut).
pub fn read(request: IncomingRequest) -> Request {
    let method = request.method();
    let full = request.path_with_query().unwrap_or_else(|| "/".into());
    let path = full.split('?').next().unwrap_or("/").to_string();
    let body = body_bytes(request.consume().ok());
    Request { method, path, body }
}

/// The whole of an incoming body (requests and responses alike).
fn body_bytes(body: Option<IncomingBody>) -> Vec<u8> {
    let Some(body) = body else {
        return Vec::new();
    };
    let bytes = body.stream().map(|s| read_all(&s)).unwrap_or_default();
    drop(IncomingBody::finish(body));
    bytes
}

fn read_all(stream: &InputStream) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                out.extend_from_slice(&chunk);
                if out.len() > MAX_BODY {
                    out.truncate(MAX_BODY);
                    return out;
                }
            }
            Err(StreamError::Closed) => return out,
            Err(StreamError::LastOperationFailed(_)) => return out,
        }
    }
}

fn write_all(stream: &OutputStream, bytes: &[u8]) -> bool {
    bytes
        .chunks(4096)
        .all(|chunk| stream.blocking_write_and_flush(chunk).is_ok())
}

/// Sends a whole response.
pub fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &[u8]) {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[content_type.as_bytes().to_vec()]);
    let response = OutgoingResponse::new(headers);
    if response.set_status_code(status).is_err() {
        let e = ErrorCode::InternalError(Some(format!("invalid status {status}")));
        ResponseOutparam::set(out, Err(e));
        return;
    }
    let Ok(outgoing) = response.body() else {
        ResponseOutparam::set(out, Err(ErrorCode::InternalError(None)));
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        let _ = write_all(&stream, body);
        drop(stream);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

/// A JSON answer.
pub fn json(out: ResponseOutparam, status: u16, body: &str) {
    respond(out, status, "application/json", body.as_bytes());
}

/// `{"error": "..."}`.
pub fn error(out: ResponseOutparam, status: u16, message: &str) {
    json(out, status, &format!("{{\"error\":{}}}", json_string(message)));
}

/// Calls `http://<service><path>` and returns the status and body; an
/// error when the call could not be made at all.
pub fn call(method: Method, service: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[b"application/json".to_vec()]);
    let request = OutgoingRequest::new(headers);
    let _ = request.set_method(&method);
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(service));
    let _ = request.set_path_with_query(Some(path));
    let outgoing = request.body().map_err(|()| "request body taken".to_string())?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    if let Ok(stream) = outgoing.write() {
        let _ = write_all(&stream, body);
        drop(stream);
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(format!("{service}: {e:?}")),
        _ => return Err(format!("{service}: no response")),
    };
    let status = response.status();
    Ok((status, body_bytes(response.consume().ok())))
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An environment variable atoll sets (`ATOLL_INSTANCE`, `ATOLL_HOST`…).
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| "?".into())
}
