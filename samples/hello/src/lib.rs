//! `hello`: the smallest useful atoll service, a `wasi:http` component.
//!
//! `GET /json` answers `{"instance":..,"host":..,"service":..,"app":..}`;
//! `GET /health` answers 200, or 500 when the environment sets `UNHEALTHY`,
//! or sets `UNHEALTHY_AFTER` (Unix milliseconds) and that time has passed
//! (to show health checks at work); `GET /sleep?ms=N` answers after N
//! milliseconds (at most 10 s: load that keeps requests in flight, for
//! autoscaling); every other request answers
//! `hello from <ATOLL_INSTANCE> on <ATOLL_HOST>`, followed by
//! ` (<VERSION>)` when the environment sets `VERSION`.
//! The values come from the environment atoll gives each instance, so the
//! answer shows which replica on which host served the request (handy to
//! watch load balancing and the routing mesh).

use std::io::Write as _;

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{
    ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Hello;

fn unhealthy() -> bool {
    if std::env::var("UNHEALTHY").is_ok() {
        return true;
    }
    let after = std::env::var("UNHEALTHY_AFTER").ok();
    let after: Option<u128> = after.and_then(|v| v.parse().ok());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    matches!((after, now), (Some(after), Ok(now)) if now.as_millis() >= after)
}

wasi::http::proxy::export!(Hello);

impl Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let is_get = matches!(request.method(), Method::Get);
        if is_get && path == "/health" {
            let (status, body) = if unhealthy() {
                (500, "unhealthy\n")
            } else {
                (200, "ok\n")
            };
            return respond(response_out, status, "text/plain", body.as_bytes());
        }
        if let Some(ms) = path.strip_prefix("/sleep?ms=").filter(|_| is_get) {
            let ms = ms.parse::<u64>().unwrap_or(0).min(10_000);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            return respond(response_out, 200, "text/plain; charset=utf-8", text_body().as_bytes());
        }
        let (content_type, body) = if is_get && (path == "/json" || path.starts_with("/json?")) {
            ("application/json", json_body())
        } else {
            ("text/plain; charset=utf-8", text_body())
        };
        respond(response_out, 200, content_type, body.as_bytes());
    }
}

/// An environment variable, or `?` when atoll did not set it (e.g. when the
/// component runs under plain `wasmtime serve`).
fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| "?".to_string())
}

fn text_body() -> String {
    let version = std::env::var("VERSION")
        .map(|v| format!(" ({v})"))
        .unwrap_or_default();
    format!(
        "hello from {} on {}{version}\n",
        env("ATOLL_INSTANCE"),
        env("ATOLL_HOST")
    )
}

fn json_body() -> String {
    format!(
        "{{\"instance\":{},\"host\":{},\"service\":{},\"app\":{}}}\n",
        json_string(&env("ATOLL_INSTANCE")),
        json_string(&env("ATOLL_HOST")),
        json_string(&env("ATOLL_SERVICE")),
        json_string(&env("ATOLL_APP")),
    )
}

/// JSON string literal for `s` (hand-rolled to keep the component free of
/// dependencies beyond the WASI bindings).
fn json_string(s: &str) -> String {
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

/// Send a complete response. Headers and status are set before the
/// outparam is handed back so that a failure there can still be reported
/// to the host as an error instead of a half-built response.
fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &[u8]) {
    let headers = match Fields::from_list(&[
        ("content-type".to_string(), content_type.as_bytes().to_vec()),
        (
            "content-length".to_string(),
            body.len().to_string().into_bytes(),
        ),
    ]) {
        Ok(headers) => headers,
        Err(e) => {
            let msg = format!("building headers: {e:?}");
            ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(msg))));
            return;
        }
    };
    let response = OutgoingResponse::new(headers);
    let Ok(()) = response.set_status_code(status) else {
        let msg = format!("invalid status {status}");
        ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(msg))));
        return;
    };
    let Ok(outgoing) = response.body() else {
        let msg = "response body already taken".to_string();
        ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(msg))));
        return;
    };
    ResponseOutparam::set(out, Ok(response));

    // After `set` the status line is on its way; a write failure here means
    // the client went away, and all that is left is to stop.
    if let Ok(mut stream) = outgoing.write() {
        if stream
            .write_all(body)
            .and_then(|()| std::io::Write::flush(&mut stream))
            .is_err()
        {
            return;
        }
        // The stream must be dropped before the body can be finished.
        drop(stream);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
