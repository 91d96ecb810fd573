//! Running one probe against one instance: an HTTP `GET` (in-process, or
//! over the bridge for an instance reached there) or a command inside the
//! instance. Every probe is bounded by the check's timeout.

use crate::driver::{ExecError, Handler, Reach, Running};
use atoll_sdk::spec::Probe;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a probe runs against: the instance, and the port an HTTP probe
/// without one goes to.
#[derive(Clone)]
pub(crate) struct Target {
    pub running: Arc<dyn Running>,
    pub default_port: u16,
}

/// Why a probe did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error("GET {path} answered {status}")]
    Status { path: String, status: u16 },
    #[error("GET {path} on port {port}: {reason}")]
    Connect {
        path: String,
        port: u16,
        reason: String,
    },
    #[error("GET {path}: {reason}")]
    Exchange { path: String, reason: String },
    #[error("GET {path}: not an HTTP answer")]
    NotHttp { path: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Command(#[from] ExecError),
}

/// `Ok` when the instance passed; otherwise what went wrong.
pub(crate) async fn run(
    probe: &Probe,
    target: &Target,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let work = async {
        match probe {
            Probe::Http { path, port } => match target.running.reach() {
                Reach::InProcess(handler) => in_process_get(handler.as_ref(), path).await,
                Reach::Network { address, .. } => {
                    let at = SocketAddr::from((address, port.unwrap_or(target.default_port)));
                    http_get(at, path).await
                }
            },
            Probe::Command { argv } => Ok(target.running.exec(argv, timeout).await?),
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::Timeout(timeout)),
    }
}

fn judge(path: &str, status: u16) -> Result<(), ProbeError> {
    if (200..400).contains(&status) {
        Ok(())
    } else {
        let path = path.to_string();
        Err(ProbeError::Status { path, status })
    }
}

/// A failed exchange of a `GET path`.
fn exchange(path: &str) -> impl Fn(std::io::Error) -> ProbeError + '_ {
    move |e| ProbeError::Exchange {
        path: path.to_string(),
        reason: e.to_string(),
    }
}

async fn in_process_get(handler: &dyn Handler, path: &str) -> Result<(), ProbeError> {
    let req = http::Request::get(path)
        .header(http::header::HOST, "localhost")
        .header(http::header::USER_AGENT, "atoll-health")
        .body(
            Full::new(Bytes::new())
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .map_err(|e| ProbeError::Exchange {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
    let resp = handler.handle(req).await;
    judge(path, resp.status().as_u16())
}

/// A minimal HTTP/1.1 `GET` that reads only the status line: a probe
/// needs no more, and a body that never ends cannot hold it.
async fn http_get(at: SocketAddr, path: &str) -> Result<(), ProbeError> {
    let mut stream = tokio::net::TcpStream::connect(at)
        .await
        .map_err(|e| ProbeError::Connect {
            path: path.to_string(),
            port: at.port(),
            reason: e.to_string(),
        })?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {at}\r\nUser-Agent: atoll-health\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(exchange(path))?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = stream.read(&mut buf).await.map_err(exchange(path))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status = (line.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| ProbeError::NotHttp {
            path: path.to_string(),
        })?;
    judge(path, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_and_three_hundreds_pass() {
        assert!(judge("/", 200).is_ok());
        assert!(judge("/", 302).is_ok());
        assert_eq!(
            judge("/h", 503).map_err(|e| e.to_string()),
            Err("GET /h answered 503".to_string())
        );
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
            http_get(at, "/x").await.map_err(|e| e.to_string()),
            Err("GET /x answered 500".to_string())
        );
        server.await.expect("server");
        assert!(http_get(at, "/").await.is_err(), "nothing listens any more");
    }
}
