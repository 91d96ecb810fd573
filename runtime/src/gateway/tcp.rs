//! Plain TCP to a service (a container's database port, say): the
//! connection is spliced to one instance, chosen like an HTTP request's
//! (least outstanding, power of two choices, another on connect failure).
//! A local container is dialled at its address; a remote one through a
//! tunnel to the peer's mesh port (`CONNECT` with the hop, instance and
//! port headers), which the peer splices to its container.

use super::attempts::{Attempts, Outstanding};
use super::forward::Unsent;
use super::forwarded::forwarded_to;
use super::mesh_tls::MeshTls;
use super::{Gateway, HOP_HEADER, INSTANCE_HEADER, PORT_HEADER, ResponseBody, text};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on dialling an instance (and on the tunnel's answer).
const DIAL: Duration = Duration::from_secs(2);

/// Whether the first bytes of a connection look like an HTTP request.
pub fn looks_like_http(first: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"HEAD ",
        b"DELETE ",
        b"PATCH ",
        b"OPTIONS ",
        b"CONNECT ",
        b"TRACE ",
    ];
    first.len() >= 3
        && METHODS.iter().any(|m| {
            let n = first.len().min(m.len());
            m[..n] == first[..n]
        })
}

/// How long a new connection may stay silent before it is taken as TCP.
const PEEK: Duration = Duration::from_millis(300);

/// Whether a new connection's first bytes are an HTTP request. A client
/// that says nothing first (server-speaks-first protocols, such as
/// MySQL's) is taken as TCP after [`PEEK`].
pub(super) async fn speaks_http(stream: &TcpStream) -> bool {
    let mut first = [0u8; 8];
    let n = match tokio::time::timeout(PEEK, stream.peek(&mut first)).await {
        Ok(Ok(n)) => n,
        _ => 0,
    };
    looks_like_http(&first[..n])
}

impl Gateway {
    /// Splices `client` to an instance of `service` of `app` at `port`;
    /// closes it when none can be reached.
    pub async fn tcp_to_service(&self, app: &str, service: &str, port: u16, mut client: TcpStream) {
        let table = self.table();
        let Some(route) = table
            .by_service
            .get(&(app.to_string(), service.to_string()))
        else {
            return;
        };
        // Draws from the thread RNG, one call at a time: a `ThreadRng`
        // itself is not `Send`, and the attempts are held across awaits.
        let mut attempts = Attempts::new(route, false, rand::random::<u64>);
        while let Some((i, ep)) = attempts.next() {
            let _guard = Outstanding::enter(ep);
            // A local connection counts as in flight on its instance, so a
            // drain waits for it (up to the grace period).
            let upstream = if ep.endpoint.host == self.host {
                (self.dial_local(&ep.endpoint.id, port).await)
                    .map(|(stream, in_flight)| (Box::new(stream) as Box<dyn Io>, Some(in_flight)))
                    .ok_or(Unsent::Absent)
            } else {
                let stream = self.tunnel(&ep.endpoint, port).await;
                stream.map(|s| (s, None))
            };
            match upstream {
                Ok((mut up, in_flight)) => {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                    drop(in_flight);
                    return;
                }
                // Only an unreachable peer takes its host's other
                // instances out; one that refused (draining) does not.
                Err(why) => {
                    let host_down = why == Unsent::Unreachable && ep.endpoint.host != self.host;
                    attempts.failed(i, host_down);
                }
            }
        }
        tracing::debug!(app, service, port, "no instance took the TCP connection");
    }

    /// Serves what a peer sent to the mesh port: a tunnel or a request.
    pub(super) async fn serve_peer(
        &self,
        req: Request<hyper::body::Incoming>,
    ) -> Response<ResponseBody> {
        if req.method() == http::Method::CONNECT {
            self.serve_tunnel(req).await
        } else {
            self.serve_mesh(req).await
        }
    }

    /// The mesh side of a tunnel: a `CONNECT` for a local container's port,
    /// answered 200 and spliced once the caller's connection is handed over.
    pub async fn serve_tunnel(
        &self,
        req: Request<hyper::body::Incoming>,
    ) -> Response<ResponseBody> {
        let Some((id, port)) = forwarded_to(req.headers()) else {
            return text(
                StatusCode::BAD_REQUEST,
                "tunnels are for atoll hosts only".into(),
            );
        };
        let Some((mut upstream, in_flight)) = self.dial_local_allowed(&id, port).await else {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "instance {id} is not a reachable container on host {}",
                    self.host
                ),
            );
        };
        tokio::spawn(async move {
            if let Ok(upgraded) = hyper::upgrade::on(req).await {
                let mut io = TokioIo::new(upgraded);
                let _ = tokio::io::copy_bidirectional(&mut io, &mut upstream).await;
            }
            drop(in_flight);
        });
        let empty = http_body_util::Full::new(bytes::Bytes::new())
            .map_err(|never| match never {})
            .boxed_unsync();
        Response::new(empty)
    }
}

/// Both ends of a spliced connection: a TCP stream, or TLS over one.
pub(super) trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

impl Gateway {
    /// A tunnel through the endpoint's host's mesh port to its instance's
    /// `port` (over mutual TLS when this host has an identity); why not
    /// when the peer cannot be reached or refuses (the instance is not
    /// there).
    async fn tunnel(
        &self,
        ep: &atoll_sdk::protocol::Endpoint,
        port: u16,
    ) -> Result<Box<dyn Io>, Unsent> {
        let (address, id) = (&ep.address, &ep.id);
        let s = (dial(&format!("{address}:{}", ep.mesh_port)).await).ok_or(Unsent::Unreachable)?;
        let mut s: Box<dyn Io> = match self.peers.tls() {
            Some(tls) => {
                let name = MeshTls::server_name(&ep.host).ok_or(Unsent::Unreachable)?;
                let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
                let handshake = connector.connect(name, s);
                let tls = tokio::time::timeout(DIAL, handshake).await;
                Box::new(tls.map_err(|_| Unsent::Unreachable)?.map_err(|e| {
                    tracing::debug!(%address, error = %e, "mesh TLS handshake failed");
                    Unsent::Unreachable
                })?)
            }
            None => Box::new(s),
        };
        tunnel_open(&mut s, address, id, port).await?;
        Ok(s)
    }
}

pub(super) async fn dial(addr: &str) -> Option<TcpStream> {
    let s = tokio::time::timeout(DIAL, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let _ = s.set_nodelay(true);
    Some(s)
}

/// Asks for the tunnel on `s` and reads the answer's head.
async fn tunnel_open(
    s: &mut Box<dyn Io>,
    address: &str,
    id: &str,
    port: u16,
) -> Result<(), Unsent> {
    let unreachable = |_: std::io::Error| Unsent::Unreachable;
    let req = format!(
        "CONNECT {id}:{port} HTTP/1.1\r\nHost: {address}\r\n{HOP_HEADER}: 1\r\n{INSTANCE_HEADER}: {id}\r\n{PORT_HEADER}: {port}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.map_err(unreachable)?;
    // Read the answer's head byte by byte: nothing past it may be taken
    // from the stream (it belongs to the spliced connection).
    let mut head = Vec::new();
    let read_head = async {
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
            if s.read(&mut b).await.map_err(unreachable)? == 0 {
                return Err(Unsent::Unreachable);
            }
            head.push(b[0]);
        }
        Ok(())
    };
    (tokio::time::timeout(DIAL, read_head).await).map_err(|_| Unsent::Unreachable)??;
    let status_ok = head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200");
    // The 200's body is empty but announced: a content-length of 0. Any
    // other answer is the peer saying the instance is not there.
    if status_ok {
        Ok(())
    } else {
        Err(Unsent::Absent)
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_http;

    #[test]
    fn http_is_told_from_other_protocols() {
        assert!(looks_like_http(b"GET / HT"));
        assert!(looks_like_http(b"POST /x"));
        assert!(looks_like_http(b"DEL"));
        assert!(!looks_like_http(b"ping\n"));
        assert!(!looks_like_http(b"\x00\x00\x00\x08"));
        assert!(!looks_like_http(b"GE"), "too short to tell: TCP");
    }
}
