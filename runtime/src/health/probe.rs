//! Running one probe against one instance: an HTTP `GET` (in-process for
//! a component, over the bridge for a container) or a command inside the
//! container. Every probe is bounded by the check's timeout.

use crate::container::Containers;
use crate::wasm::WasmInstance;
use atoll_sdk::spec::Probe;
use bytes::Bytes;
use http_body_util::Full;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a probe runs against.
#[derive(Clone)]
pub enum Target {
    Wasm(WasmInstance),
    Container {
        id: String,
        address: Ipv4Addr,
        /// The port an HTTP probe without one goes to.
        default_port: u16,
        containers: Arc<Containers>,
    },
}

/// `Ok` when the instance passed; otherwise what went wrong.
pub async fn run(probe: &Probe, target: &Target, timeout: Duration) -> Result<(), String> {
    let work = async {
        match (probe, target) {
            (Probe::Http { path, .. }, Target::Wasm(inst)) => wasm_get(inst, path).await,
            (
                Probe::Http { path, port },
                Target::Container {
                    address,
                    default_port,
                    ..
                },
            ) => {
                let at = SocketAddr::from((*address, port.unwrap_or(*default_port)));
                http_get(at, path).await
            }
            (Probe::Command { argv }, Target::Container { id, containers, .. }) => {
                containers.exec_check(id, argv, timeout).await
            }
            (Probe::Command { .. }, Target::Wasm(_)) => {
                Err("a component cannot run a command check".to_string())
            }
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

fn judge(path: &str, status: u16) -> Result<(), String> {
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("GET {path} answered {status}"))
    }
}

async fn wasm_get(inst: &WasmInstance, path: &str) -> Result<(), String> {
    let req = http::Request::get(path)
        .header(http::header::HOST, "localhost")
        .header(http::header::USER_AGENT, "atoll-health")
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("GET {path}: {e}"))?;
    let resp = inst.handle(req).await;
    judge(path, resp.status().as_u16())
}

/// A minimal HTTP/1.1 `GET` that reads only the status line: a probe
/// needs no more, and a body that never ends cannot hold it.
async fn http_get(at: SocketAddr, path: &str) -> Result<(), String> {
    let mut stream = tokio::net::TcpStream::connect(at)
        .await
        .map_err(|e| format!("GET {path} on port {}: {e}", at.port()))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {at}\r\nUser-Agent: atoll-health\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status = (line.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("GET {path}: not an HTTP answer"))?;
    judge(path, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_and_three_hundreds_pass() {
        assert!(judge("/", 200).is_ok());
        assert!(judge("/", 302).is_ok());
        assert_eq!(judge("/h", 503), Err("GET /h answered 503".to_string()));
    }

    #[tokio::test]
    async fn an_http_probe_reads_the_status_line() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let at = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            for status in ["200 OK", "500 Internal Server Error"] {
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let resp = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        assert!(http_get(at, "/").await.is_ok());
        assert_eq!(
            http_get(at, "/x").await,
            Err("GET /x answered 500".to_string())
        );
        server.await.expect("server");
        assert!(http_get(at, "/").await.is_err(), "nothing listens any more");
    }
}
