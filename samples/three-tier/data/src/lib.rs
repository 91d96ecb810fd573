//! The data tier: items kept through `wasi:keyvalue`, which atoll backs
//! with the app's JetStream bucket, so they outlive this instance and its
//! host. HTTP, for the API tier only:
//!
//! - `GET /items` → `[item, …]` (stored JSON documents, by id)
//! - `GET /items/{id}` → the item, or 404
//! - `PUT /items/{id}` with a JSON body → stored (201)
//! - `DELETE /items/{id}` → 204, or 404
//! - `GET /whoami` → this instance and its host

use three_tier_kit as kit;
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

/// Bindings for the `wasi:keyvalue` imports (in a module of their own:
/// their root module is named `wasi` too).
mod kv {
    wit_bindgen::generate!({ path: "wit", world: "data", generate_all });
}

use kv::wasi::keyvalue::store;

struct Data;

wasi::http::proxy::export!(Data);

impl Guest for Data {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let req = kit::read(request);
        let bucket = match store::open("items") {
            Ok(b) => b,
            Err(e) => return kit::error(out, 503, &format!("store: {e:?}")),
        };
        let id = req.path.strip_prefix("/items/").filter(|s| !s.is_empty());
        match (req.method, id) {
            (Method::Get, None) if req.path == "/items" => list(out, &bucket),
            (Method::Get, None) if req.path == "/whoami" => kit::json(
                out,
                200,
                &format!(
                    "{{\"instance\":{},\"host\":{}}}",
                    kit::json_string(&kit::env("ATOLL_INSTANCE")),
                    kit::json_string(&kit::env("ATOLL_HOST"))
                ),
            ),
            (Method::Get, Some(id)) => match bucket.get(id) {
                Ok(Some(v)) => kit::respond(out, 200, "application/json", &v),
                Ok(None) => kit::error(out, 404, &format!("no item {id}")),
                Err(e) => kit::error(out, 503, &format!("store: {e:?}")),
            },
            (Method::Put, Some(id)) => match bucket.set(id, &req.body) {
                Ok(()) => kit::respond(out, 201, "application/json", &req.body),
                // Over the size limit, among others: the store says why.
                Err(e) => kit::error(out, 413, &format!("store: {e:?}")),
            },
            (Method::Delete, Some(id)) => match bucket.exists(id) {
                Ok(true) => match bucket.delete(id) {
                    Ok(()) => kit::respond(out, 204, "application/json", b""),
                    Err(e) => kit::error(out, 503, &format!("store: {e:?}")),
                },
                Ok(false) => kit::error(out, 404, &format!("no item {id}")),
                Err(e) => kit::error(out, 503, &format!("store: {e:?}")),
            },
            _ => kit::error(out, 404, "unknown path"),
        }
    }
}

fn list(out: ResponseOutparam, bucket: &store::Bucket) {
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let page = match bucket.list_keys(cursor) {
            Ok(p) => p,
            Err(e) => return kit::error(out, 503, &format!("store: {e:?}")),
        };
        for key in &page.keys {
            if let Ok(Some(v)) = bucket.get(key) {
                items.push(String::from_utf8_lossy(&v).into_owned());
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    kit::json(out, 200, &format!("[{}]", items.join(",")));
}
