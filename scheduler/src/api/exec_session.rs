//! `GET /v1/instances/{id}/exec?argv=[…]&tty=&stdin=&rows=&cols=` with
//! `Upgrade: atoll-exec`: an interactive command (`atoll exec -i/-t`).
//! The server asks the instance's host to start it, answers the client
//! with the host's refusal as an HTTP error, or with `101 Switching
//! Protocols` once it runs; then it relays frames (see
//! [`atoll_sdk::exec_session`]) between the upgraded connection and the
//! host over NATS, pings the host while the client is quiet, and tells
//! the host to end the command when the client goes away. Each direction
//! runs on its own, and data is bounded both ways (see
//! [`atoll_sdk::exec_session::WINDOW`]): the client's input waits for the
//! host's acknowledgements, and the host's output for ours, given as the
//! client's connection takes it.

use super::error::{ApiError, ApiResult};
use crate::auth::Caller;
use crate::cluster::Cluster;
use atoll_sdk::exec_session::{ACK_EVERY, Frame, FrameReader, PING_MS, UPGRADE, WINDOW};
use atoll_sdk::protocol::{EXEC_TIMEOUT_MAX_MS, ExecRequest, ExecSession, VERSION};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, watch};

/// How long a host may take to start the command.
const START_WAIT: Duration = Duration::from_secs(15);

#[derive(serde::Deserialize)]
pub(crate) struct SessionQuery {
    /// The command and its arguments, a JSON array.
    argv: String,
    #[serde(default)]
    tty: bool,
    #[serde(default)]
    stdin: bool,
    rows: Option<u16>,
    cols: Option<u16>,
}

pub(crate) async fn exec_session(
    State(c): State<Arc<Cluster>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<SessionQuery>,
    mut req: Request,
) -> ApiResult<Response> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let argv: Vec<String> = serde_json::from_str(&q.argv)
        .map_err(|e| bad(format!("argv: not a JSON list of strings: {e}")))?;
    if argv.is_empty() {
        return Err(bad(
            "no command given: atoll exec -it INSTANCE -- COMMAND [ARG…]".into(),
        ));
    }
    let wants = (req.headers().get(header::UPGRADE))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let (Some(UPGRADE), Some(on_upgrade)) = (wants.as_deref(), upgrade) else {
        return Err(bad(format!(
            "an interactive exec upgrades the connection (Upgrade: {UPGRADE}); POST runs a command without one"
        )));
    };
    let snap = c.snapshot();
    let (host, instance, app) = super::exec::find(&snap, &id)?;
    super::exec::may_touch(&caller, &app)?;
    if !snap.host(&host).is_some_and(|h| h.is_ready()) {
        let m = format!("host {host} of instance {instance} is not connected");
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m));
    }
    let client = c.buckets.js.client();
    let output = client.new_inbox();
    let mut sub = (client.subscribe(output.clone()).await)
        .map_err(|e| ApiError::internal("subscribing for the session", e))?;
    let token = output.rsplit('.').next().unwrap_or("0").to_string();
    let input = format!("{}.exec.{token}", atoll_sdk::nats::host_inbox(&host));
    let request = ExecRequest {
        v: VERSION,
        instance: instance.clone(),
        argv,
        timeout_ms: EXEC_TIMEOUT_MAX_MS,
        session: Some(ExecSession {
            input: input.clone(),
            tty: q.tty,
            stdin: q.stdin,
            rows: q.rows.unwrap_or(24),
            cols: q.cols.unwrap_or(80),
        }),
    };
    let bytes = serde_json::to_vec(&request).map_err(|e| ApiError::internal("exec", e))?;
    let subject = c.buckets.names.exec_requests(&host);
    (client
        .publish_with_reply(subject, output.clone(), bytes.into())
        .await)
        .map_err(|e| ApiError::internal("asking the host", e))?;
    let first = tokio::time::timeout(START_WAIT, sub.next()).await;
    let unavailable = |m: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m);
    let mut relay = Relay {
        c: c.clone(),
        client,
        host: host.clone(),
        input,
        output,
        seq: 0,
    };
    let Ok(Some(first)) = first else {
        // It may start yet: then it ends at once.
        relay.tell_host(Frame::Close).await;
        return Err(unavailable(format!(
            "host {host} did not start the command within {}s",
            START_WAIT.as_secs()
        )));
    };
    match Frame::from_message(&first.payload) {
        Ok((0, Frame::Started)) => {}
        Ok((
            _,
            Frame::Exit {
                error: Some(why), ..
            },
        )) => {
            return Err(ApiError::new(StatusCode::CONFLICT, why));
        }
        other => return Err(unavailable(format!("host {host} answered {other:?}"))),
    }
    tokio::spawn(relay.run(on_upgrade, sub));
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, UPGRADE)
        .body(axum::body::Body::empty())
        .map_err(|e| ApiError::internal("exec", e))
}

/// Frames between the client's connection and the host.
struct Relay {
    c: Arc<Cluster>,
    client: async_nats::Client,
    host: String,
    /// The host reads these…
    input: String,
    /// …and answers here.
    output: String,
    seq: u64,
}

impl Relay {
    /// To the host, with the reply subject that keeps its permission to
    /// answer alive.
    async fn tell_host(&mut self, frame: Frame) {
        let bytes = frame.message(self.seq);
        self.seq += 1;
        let (input, output) = (self.input.clone(), self.output.clone());
        let _ = self
            .client
            .publish_with_reply(input, output, bytes.into())
            .await;
    }

    async fn run(mut self, on_upgrade: hyper::upgrade::OnUpgrade, mut sub: async_nats::Subscriber) {
        let Ok(upgraded) = on_upgrade.await else {
            return self.tell_host(Frame::Close).await;
        };
        let (rd, wr) = tokio::io::split(TokioIo::new(upgraded));
        let (to_host, mut for_host) = mpsc::channel::<Frame>(16);
        // (Unbounded: the host sends no more than the window.)
        let (to_client, for_client) = mpsc::unbounded_channel::<Frame>();
        // The host's acknowledgements of input; ours of its output.
        let (input_acked, input_acks) = watch::channel(0u64);
        let (output_acked, mut output_acks) = watch::channel(0u64);
        let reader = tokio::spawn(from_client(rd, to_host, input_acks));
        let writer = tokio::spawn(to_client_conn(wr, for_client, output_acked));
        let ended = |error: String| Frame::Exit {
            code: None,
            error: Some(error),
        };
        let mut expect = 1u64;
        let mut ping = tokio::time::interval(Duration::from_millis(PING_MS));
        ping.tick().await;
        // What the client is told last, and whether the command ended.
        let (last, ended_by_host) = loop {
            tokio::select! {
                frame = for_host.recv() => match frame {
                    Some(f) => self.tell_host(f).await,
                    // The client left.
                    None => break (None, false),
                },
                Ok(()) = output_acks.changed() => {
                    let n = *output_acks.borrow_and_update();
                    self.tell_host(Frame::Ack(n)).await;
                }
                msg = sub.next() => {
                    let Some(msg) = msg else {
                        break (Some(ended("the server's NATS connection ended".into())), false);
                    };
                    let Ok((seq, frame)) = Frame::from_message(&msg.payload) else { continue };
                    if seq != expect {
                        let lost = format!("output lost between host {} and the server (frame {seq}, expected {expect})", self.host);
                        break (Some(ended(lost)), false);
                    }
                    expect += 1;
                    match frame {
                        Frame::Ack(n) => {
                            let _ = input_acked.send(n);
                        }
                        Frame::Exit { .. } => break (Some(frame), true),
                        other => {
                            if to_client.send(other).is_err() {
                                break (None, false);
                            }
                        }
                    }
                }
                _ = ping.tick() => {
                    if !self.c.observed().is_ready(&self.host) {
                        break (Some(ended(format!("host {} is disconnected", self.host))), false);
                    }
                    self.tell_host(Frame::Ping).await;
                }
            }
        };
        // The client left, or the session cannot go on: the host ends the
        // command.
        if !ended_by_host {
            self.tell_host(Frame::Close).await;
        }
        reader.abort();
        if let Some(frame) = last {
            let _ = to_client.send(frame);
        }
        drop(to_client);
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    }
}

/// The client's frames for the host, its input within the window the
/// host's acknowledgements leave; `Close` when the client is gone.
async fn from_client(
    mut rd: ReadHalf<TokioIo<hyper::upgrade::Upgraded>>,
    to_host: mpsc::Sender<Frame>,
    mut acked: watch::Receiver<u64>,
) {
    let mut frames = FrameReader::default();
    let mut buf = vec![0u8; 64 << 10];
    let mut sent = 0u64;
    while let Ok(n @ 1..) = rd.read(&mut buf).await {
        frames.push(&buf[..n]);
        loop {
            let f = match frames.next_frame() {
                Ok(Some(
                    f
                    @ (Frame::Stdin(_) | Frame::StdinClosed | Frame::Resize { .. } | Frame::Close),
                )) => f,
                Ok(Some(_)) => continue,
                Ok(None) => break,
                // A client that speaks nonsense is gone.
                Err(_) => {
                    let _ = to_host.send(Frame::Close).await;
                    return;
                }
            };
            sent += f.data_len();
            // Room in the window first; meanwhile a client that leaves is
            // noticed (what it sends is kept, up to a window's worth).
            while sent.saturating_sub(*acked.borrow()) > WINDOW {
                tokio::select! {
                    changed = acked.changed() => if changed.is_err() { return },
                    n = rd.read(&mut buf), if frames.buffered() < WINDOW as usize => match n {
                        Ok(n @ 1..) => frames.push(&buf[..n]),
                        _ => {
                            let _ = to_host.send(Frame::Close).await;
                            return;
                        }
                    },
                }
            }
            if to_host.send(f).await.is_err() {
                return;
            }
        }
    }
    let _ = to_host.send(Frame::Close).await;
}

/// Writes the host's frames to the client, acknowledging its output as
/// the connection takes it.
async fn to_client_conn(
    mut wr: WriteHalf<TokioIo<hyper::upgrade::Upgraded>>,
    mut frames: mpsc::UnboundedReceiver<Frame>,
    acked: watch::Sender<u64>,
) {
    let (mut taken, mut told) = (0u64, 0u64);
    while let Some(frame) = frames.recv().await {
        let exit = matches!(frame, Frame::Exit { .. });
        if wr.write_all(&frame.framed()).await.is_err() {
            return;
        }
        taken += frame.data_len();
        if taken - told >= ACK_EVERY.min(WINDOW / 2) {
            told = taken;
            let _ = acked.send(taken);
        }
        if exit {
            break;
        }
    }
    let _ = wr.shutdown().await;
}
