//! The API tier: a REST API over items, kept by the data tier.
//!
//! - `GET /items`, `GET /items/{id}`
//! - `POST /items` with a JSON object → 201 with the item and its new `id`
//! - `PUT /items/{id}` with a JSON object → 200 with the item
//! - `DELETE /items/{id}` → 204
//! - `GET /whoami` → which instances of the API and data tiers answered,
//!   on which hosts

use three_tier_kit as kit;
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

struct Api;

wasi::http::proxy::export!(Api);

impl Guest for Api {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let req = kit::read(request);
        let id = req
            .path
            .strip_prefix("/items/")
            .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        match (&req.method, req.path.as_str(), id) {
            (Method::Get, "/whoami", _) => whoami(out),
            (Method::Get, "/items", _) => pass(out, Method::Get, "/items", b""),
            (Method::Post, "/items", _) => {
                let id = new_id();
                match with_id(&req.body, &id) {
                    Ok(item) => store(out, &id, &item, 201),
                    Err(m) => kit::error(out, 400, &m),
                }
            }
            (Method::Get, _, Some(id)) => pass(out, Method::Get, &format!("/items/{id}"), b""),
            (Method::Put, _, Some(id)) => match with_id(&req.body, id) {
                Ok(item) => store(out, id, &item, 200),
                Err(m) => kit::error(out, 400, &m),
            },
            (Method::Delete, _, Some(id)) => {
                pass(out, Method::Delete, &format!("/items/{id}"), b"")
            }
            _ => kit::error(out, 404, "unknown path: try /items"),
        }
    }
}

/// Stores `item` under `id` in the data tier; answers `status` with it.
fn store(out: ResponseOutparam, id: &str, item: &str, status: u16) {
    match kit::call(Method::Put, "data", &format!("/items/{id}"), item.as_bytes()) {
        Ok((201, _)) => kit::json(out, status, item),
        Ok((s, body)) => kit::respond(out, s, "application/json", &body),
        Err(e) => kit::error(out, 502, &format!("data tier: {e}")),
    }
}

/// Forwards to the data tier and answers what it answered.
fn pass(out: ResponseOutparam, method: Method, path: &str, body: &[u8]) {
    match kit::call(method, "data", path, body) {
        Ok((status, body)) => kit::respond(out, status, "application/json", &body),
        Err(e) => kit::error(out, 502, &format!("data tier: {e}")),
    }
}

/// A JSON object with `"id"` set first: the client's object, trusted only
/// to be an object.
fn with_id(body: &[u8], id: &str) -> Result<String, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    let text = text.trim();
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| "expected a JSON object such as {\"name\":\"tea\"}".to_string())?
        .trim();
    if inner.is_empty() {
        Ok(format!("{{\"id\":{}}}", kit::json_string(id)))
    } else {
        Ok(format!("{{\"id\":{},{inner}}}", kit::json_string(id)))
    }
}

fn new_id() -> String {
    format!("{:016x}", wasi::random::random::get_random_u64())
}

fn whoami(out: ResponseOutparam) {
    let data = match kit::call(Method::Get, "data", "/whoami", b"") {
        Ok((200, body)) => String::from_utf8_lossy(&body).into_owned(),
        Ok((s, _)) => format!("{{\"error\":\"data answered {s}\"}}"),
        Err(e) => format!("{{\"error\":{}}}", kit::json_string(&e)),
    };
    kit::json(
        out,
        200,
        &format!(
            "{{\"api\":{{\"instance\":{},\"host\":{}}},\"data\":{data}}}",
            kit::json_string(&kit::env("ATOLL_INSTANCE")),
            kit::json_string(&kit::env("ATOLL_HOST"))
        ),
    );
}
