//! The front end: an HTML page at `/`, and the API tier's JSON under
//! `/api/…` (`/api/items` → `http://api/items`). `GET /api/whoami` shows
//! which instance of each tier answered, on which host. `/svc/NAME/PATH`
//! calls any service of the app by name (`/svc/data/whoami`), handy to
//! see the service layer at work.

use three_tier_kit as kit;
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

const PAGE: &str = include_str!("index.html");

struct Front;

wasi::http::proxy::export!(Front);

impl Guest for Front {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let req = kit::read(request);
        if req.path == "/" || req.path == "/index.html" {
            return kit::respond(out, 200, "text/html; charset=utf-8", PAGE.as_bytes());
        }
        if let Some(rest) = req.path.strip_prefix("/svc/") {
            let (service, path) = rest.split_once('/').unwrap_or((rest, ""));
            return match kit::call(req.method, service, &format!("/{path}"), &req.body) {
                Ok((status, body)) => kit::respond(out, status, "text/plain; charset=utf-8", &body),
                Err(e) => kit::error(out, 502, &format!("{service}: {e}")),
            };
        }
        let Some(path) = req.path.strip_prefix("/api").filter(|p| p.starts_with('/')) else {
            return kit::error(out, 404, "unknown path: try / or /api/items");
        };
        let path = path.to_string();
        match kit::call(req.method.clone(), "api", &path, &req.body) {
            Ok((status, body)) if path == "/whoami" && status == 200 => {
                let api = String::from_utf8_lossy(&body);
                // {"api":…,"data":…} → {"front":…,"api":…,"data":…}
                let rest = api.trim().strip_prefix('{').unwrap_or("\"api\":null}");
                kit::json(
                    out,
                    200,
                    &format!(
                        "{{\"front\":{{\"instance\":{},\"host\":{}}},{rest}",
                        kit::json_string(&kit::env("ATOLL_INSTANCE")),
                        kit::json_string(&kit::env("ATOLL_HOST"))
                    ),
                );
            }
            Ok((status, body)) => kit::respond(out, status, "application/json", &body),
            Err(e) => kit::error(out, 502, &format!("api tier: {e}")),
        }
    }
}

