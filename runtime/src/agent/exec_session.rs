//! An interactive `atoll exec` (`-i`/`-t`) on the host: the command runs
//! in the container through the OCI runtime (with a terminal for `-t`,
//! see [`crate::container::pty`]),
//! its output goes to the server as numbered frames on the request's
//! reply subject, and the server's frames (input, terminal size, close,
//! pings) come on the session's input subject. It ends when the command
//! exits, when the client closes it, or when the server has been silent
//! for [`IDLE_MS`] (the command is then killed: nothing runs on for a
//! client that is gone).

use std::sync::Arc;
use std::time::Duration;

use async_nats::Subject;
use atoll_sdk::exec_session::{Frame, IDLE_MS, MAX_DATA};
use atoll_sdk::protocol::{ExecRequest, ExecSession};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::container::{Containers, pty};

/// Output sent between two waits for NATS to take it (a bound on what a
/// fast command can queue up).
const FLUSH_EVERY: usize = 256 << 10;
/// How long output still coming after the command exited is waited for.
const DRAIN: Duration = Duration::from_millis(500);

/// The frames to the server, numbered.
struct Out {
    client: async_nats::Client,
    subject: Subject,
    seq: u64,
    unflushed: usize,
}

impl Out {
    async fn send(&mut self, frame: Frame) {
        let bytes = frame.message(self.seq);
        self.seq += 1;
        self.unflushed += bytes.len();
        let _ = self
            .client
            .publish(self.subject.clone(), bytes.into())
            .await;
        if self.unflushed >= FLUSH_EVERY {
            self.unflushed = 0;
            let _ = self.client.flush().await;
        }
    }

    async fn exit(mut self, code: Option<i32>, error: Option<String>) {
        self.send(Frame::Exit { code, error }).await;
        let _ = self.client.flush().await;
    }
}

/// Refuses a session before it starts.
pub(super) async fn refuse(client: &async_nats::Client, reply: Subject, why: String) {
    let out = Out {
        client: client.clone(),
        subject: reply,
        seq: 0,
        unflushed: 0,
    };
    out.exit(None, Some(why)).await;
}

/// Where the client's input goes.
enum Input {
    /// The terminal, through a thread (a write to it may block).
    Terminal(std::sync::mpsc::Sender<Vec<u8>>),
    Pipe(Option<tokio::process::ChildStdin>),
}

impl Input {
    async fn write(&mut self, data: Vec<u8>) {
        match self {
            Input::Terminal(tx) => {
                let _ = tx.send(data);
            }
            Input::Pipe(Some(stdin)) => {
                if stdin.write_all(&data).await.is_err() {
                    *self = Input::Pipe(None);
                }
            }
            Input::Pipe(None) => {}
        }
    }

    fn close(&mut self) {
        // A terminal has no end of input but ^D, which is the client's.
        if let Input::Pipe(stdin) = self {
            stdin.take();
        }
    }
}

/// Runs the session `req` asks for, answering on `reply`.
pub(super) async fn run(
    client: async_nats::Client,
    reply: Subject,
    req: ExecRequest,
    session: ExecSession,
    containers: Result<Arc<Containers>, String>,
) {
    let mut out = Out {
        client: client.clone(),
        subject: reply,
        seq: 0,
        unflushed: 0,
    };
    let containers = match containers {
        Ok(c) => c,
        Err(why) => return out.exit(None, Some(why)).await,
    };
    let mut input_sub = match client.subscribe(session.input.clone()).await {
        Ok(s) => s,
        Err(e) => return out.exit(None, Some(format!("session input: {e}"))).await,
    };
    let tty = session.tty.then_some((session.rows, session.cols));
    let mut started = match containers.exec_interactive(&req.instance, &req.argv, tty) {
        Ok(s) => s,
        Err(e) => return out.exit(None, Some(e)).await,
    };
    let (tx, mut rx) = mpsc::channel::<Frame>(16);
    // The runtime's own output (and, without a terminal, the command's).
    if let Some(stdout) = started.child.stdout.take() {
        tokio::spawn(pump(stdout, tx.clone(), Frame::Stdout));
    }
    if let Some(stderr) = started.child.stderr.take() {
        tokio::spawn(pump(stderr, tx.clone(), Frame::Stderr));
    }
    let terminal = started.terminal.take();
    let mut input = match &terminal {
        Some(t) => terminal_io(t, tx.clone()),
        None => Input::Pipe(started.child.stdin.take()),
    };
    if !session.stdin {
        input.close();
    }
    drop(tx);
    out.send(Frame::Started).await;
    let idle = Duration::from_millis(IDLE_MS);
    let mut heard = tokio::time::Instant::now();
    let mut why = None;
    let mut listening = true;
    let status = loop {
        tokio::select! {
            msg = input_sub.next(), if listening => {
                let Some(msg) = msg else {
                    started.kill();
                    listening = false;
                    why = Some("the host's connection ended".to_string());
                    continue;
                };
                heard = tokio::time::Instant::now();
                match Frame::from_message(&msg.payload).map(|(_, f)| f) {
                    Ok(Frame::Stdin(data)) if session.stdin => input.write(data).await,
                    Ok(Frame::StdinClosed) => input.close(),
                    Ok(Frame::Resize { rows, cols }) => {
                        if let Some(t) = &terminal {
                            pty::resize(t, rows, cols);
                        }
                    }
                    Ok(Frame::Close) => started.kill(),
                    _ => {}
                }
            }
            Some(frame) = rx.recv() => out.send(frame).await,
            status = started.child.wait() => break status.ok(),
            () = tokio::time::sleep_until(heard + idle), if why.is_none() => {
                started.kill();
                why = Some(format!("killed: no word from the client for {}s", idle.as_secs()));
            }
        }
    };
    drop(input);
    // What the command wrote last.
    let until = tokio::time::Instant::now() + DRAIN;
    while let Ok(Some(frame)) = tokio::time::timeout_at(until, rx.recv()).await {
        out.send(frame).await;
    }
    let code = status.and_then(|s| s.code());
    out.exit(code, why).await;
}

/// Sends what `from` gives as frames until it ends.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    tx: mpsc::Sender<Frame>,
    frame: fn(Vec<u8>) -> Frame,
) {
    let mut buf = vec![0u8; MAX_DATA];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || tx.send(frame(buf[..n].to_vec())).await.is_err() {
            break;
        }
    }
}

/// Threads that read the terminal into frames and write input to it (its
/// reads and writes block).
fn terminal_io(t: &std::fs::File, tx: mpsc::Sender<Frame>) -> Input {
    use std::io::{Read, Write};
    if let Ok(mut reader) = t.try_clone() {
        std::thread::spawn(move || {
            let mut buf = vec![0u8; MAX_DATA];
            // Ends when the command and all it started let go of the
            // terminal (EIO) or the session is over.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.blocking_send(Frame::Stdout(buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        });
    }
    let (in_tx, in_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    if let Ok(mut writer) = t.try_clone() {
        std::thread::spawn(move || {
            while let Ok(data) = in_rx.recv() {
                if writer.write_all(&data).is_err() {
                    break;
                }
            }
        });
    }
    Input::Terminal(in_tx)
}
