//! `faulty`: a `wasi:http` component that misbehaves on purpose, for the
//! host's bad-input tests.
//!
//! - `/trap` panics, which aborts: the host sees a trap.
//! - `/loop` spins forever: only the host's deadline can stop it.
//! - `/grow` allocates memory until an allocation fails: the host's memory
//!   limit must stop it.
//! - `/partial` sends its headers and part of a body, then panics: the
//!   host must cut the response off rather than pass it as complete.
//! - `/count` reads the request body to its end and answers its length
//!   (for the gateway's streaming of large uploads).
//! - `/config/KEY` answers the value `wasi:config/store` gives for KEY
//!   (a service's secret or config), or 404.
//! - `/` (and anything else) answers `200 ok`.

use std::io::Write as _;

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{
    ErrorCode, Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// Bindings for `wasi:config/store` (in a module of their own: their
/// root module is named `wasi` too).
mod config {
    wit_bindgen::generate!({ path: "wit", world: "faulty", generate_all });
}

struct Faulty;

wasi::http::proxy::export!(Faulty);

impl Guest for Faulty {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default();
        match path {
            "/trap" => panic!("faulty: /trap asked for a panic"),
            p if p.starts_with("/config/") => {
                let key = &p["/config/".len()..];
                match config::wasi::config::store::get(key) {
                    Ok(Some(value)) => respond(response_out, &value),
                    Ok(None) => respond_status(response_out, 404, &format!("no {key}\n")),
                    Err(e) => respond_status(response_out, 500, &format!("{e:?}\n")),
                }
            }
            "/loop" => spin(),
            "/partial" => partial(response_out),
            "/count" => match count(request) {
                Ok(n) => respond(response_out, &format!("{n}\n")),
                Err(e) => respond(response_out, &format!("error after reading: {e}\n")),
            },
            "/grow" => {
                let held = grow();
                // Only reached if the host lets the guest have all the
                // memory it wants; answer so the test can tell.
                respond(response_out, &format!("grew to {held} MiB\n"));
            }
            _ => respond(response_out, "ok\n"),
        }
    }
}

/// The bytes of the request body, read in pieces as they arrive.
fn count(request: IncomingRequest) -> Result<u64, String> {
    let body = request.consume().map_err(|()| "body already taken".to_string())?;
    let stream = body.stream().map_err(|()| "stream already taken".to_string())?;
    let mut total: u64 = 0;
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => total += chunk.len() as u64,
            Err(wasi::io::streams::StreamError::Closed) => return Ok(total),
            Err(e) => return Err(format!("{e:?} at byte {total}")),
        }
    }
}

/// Loop forever without calling the host. `black_box` keeps the optimiser
/// from proving the loop does nothing.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Keep 1 MiB blocks alive and write to each page of them (so the memory
/// is really used, not just reserved) until an allocation fails, which on
/// wasm aborts, i.e. traps. Returns the MiB held if it never fails, capped
/// at 4 GiB, the most a 32-bit memory can hold.
fn grow() -> usize {
    const MIB: usize = 1 << 20;
    let mut held: Vec<Vec<u8>> = Vec::new();
    while held.len() < 4096 {
        let mut block = vec![0u8; MIB];
        for page in block.chunks_mut(64 * 1024) {
            page[0] = 1;
        }
        held.push(std::hint::black_box(block));
    }
    held.len()
}

/// Starts a streamed (chunked) response, writes a first piece, then
/// panics with the body still open.
fn partial(out: ResponseOutparam) {
    let response = OutgoingResponse::new(Fields::new());
    let Ok(outgoing) = response.body() else {
        let msg = "response body already taken".to_string();
        ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(msg))));
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(mut stream) = outgoing.write() {
        let _ = stream
            .write_all(b"partial\n")
            .and_then(|()| std::io::Write::flush(&mut stream));
    }
    panic!("faulty: /partial fails after the headers");
}

fn respond(out: ResponseOutparam, body: &str) {
    respond_status(out, 200, body)
}

fn respond_status(out: ResponseOutparam, status: u16, body: &str) {
    let headers = match Fields::from_list(&[(
        "content-type".to_string(),
        b"text/plain; charset=utf-8".to_vec(),
    )]) {
        Ok(headers) => headers,
        Err(e) => {
            let msg = format!("building headers: {e:?}");
            ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(msg))));
            return;
        }
    };
    let response = OutgoingResponse::new(headers);
    if response.set_status_code(status).is_err() {
        let msg = format!("bad status {status}");
        ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(msg))));
        return;
    }
    let Ok(outgoing) = response.body() else {
        let msg = "response body already taken".to_string();
        ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(msg))));
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(mut stream) = outgoing.write() {
        if stream
            .write_all(body.as_bytes())
            .and_then(|()| std::io::Write::flush(&mut stream))
            .is_err()
        {
            return;
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
