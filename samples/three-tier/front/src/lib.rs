//! The front end: an HTML page at `/`, and the API tier's JSON under
//! `/api/…` (`/api/items` → `http://api/items`). `GET /api/whoami` shows
//! which instance of each tier answered, on which host. `/svc/NAME/PATH`
//! calls any service of the app by name (`/svc/data/whoami`), handy to
//! see the service layer at work. `/tcp/NAME:PORT` opens a plain TCP
//! connection to a service by name, sends the request body (or `ping\n`)
//! and answers with what came back: components reach TCP services such as
//! databases the same way.

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
        if let Some(target) = req.path.strip_prefix("/tcp/") {
            let sent: &[u8] = if req.body.is_empty() { b"ping\n" } else { &req.body };
            return match tcp_exchange(target, sent) {
                Ok(reply) => kit::respond(out, 200, "text/plain; charset=utf-8", &reply),
                Err(e) => kit::error(out, 502, &format!("{target}: {e}")),
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


/// Connects to `target` (`name:port`), writes `sent`, closes the sending
/// half and reads the answer to the end (at most 64 KiB).
fn tcp_exchange(target: &str, sent: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(target)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    stream.write_all(sent)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut reply)?;
    Ok(reply)
}
