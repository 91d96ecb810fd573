//! An interactive `atoll exec` (`-i`/`-t`) on the host: the command runs
//! in the container through the OCI runtime (with a terminal for `-t`,
//! see [`crate::container::pty`]), its output goes to the server as
//! numbered frames on the request's reply subject, and the server's
//! frames (input, terminal size, acknowledgements, close, pings) come on
//! the session's input subject. Data both ways is bounded by
//! [`WINDOW`]: output waits for the server's acknowledgements, input is
//! acknowledged as the command takes it. The session ends when the
//! command exits, when the client closes it, or when the server has been
//! silent for [`IDLE_MS`]; the command and what it started (its process
//! group) are then killed, again until the runtime has exited, and the
//! runtime too once the command's PID has had its time to appear.

use std::sync::Arc;
use std::time::Duration;

use async_nats::Subject;
use atoll_sdk::exec_session::{ACK_EVERY, Frame, IDLE_MS, MAX_DATA, WINDOW, cost};
use atoll_sdk::protocol::{ExecRequest, ExecSession};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::container::Containers;
use crate::container::pty::Master;

/// How long output still coming after the command exited is waited for
/// (from the last that came), and at most in all.
const DRAIN: Duration = Duration::from_millis(500);
const DRAIN_MAX: Duration = Duration::from_secs(30);
/// How often a kill is repeated until the runtime has exited; after
/// [`KILL_RUNTIME_AFTER`] the runtime process itself is killed too.
const KILL_AGAIN: Duration = Duration::from_secs(1);
const KILL_RUNTIME_AFTER: Duration = Duration::from_secs(5);

/// The frames to the server, numbered.
struct Out {
    client: async_nats::Client,
    subject: Subject,
    seq: u64,
    /// Output data sent, in all.
    sent: u64,
}

impl Out {
    fn new(client: &async_nats::Client, subject: Subject) -> Out {
        Out {
            client: client.clone(),
            subject,
            seq: 0,
            sent: 0,
        }
    }

    async fn send(&mut self, frame: Frame) {
        self.sent += frame.data_len();
        let bytes = frame.message(self.seq);
        self.seq += 1;
        let _ = self
            .client
            .publish(self.subject.clone(), bytes.into())
            .await;
    }

    async fn exit(mut self, code: Option<i32>, error: Option<String>) {
        self.send(Frame::Exit { code, error }).await;
        let _ = self.client.flush().await;
    }
}

/// Refuses a session before it starts.
pub(super) async fn refuse(client: &async_nats::Client, reply: Subject, why: String) {
    Out::new(client, reply).exit(None, Some(why)).await;
}

/// What the session's tasks take from the loop: input, or its end.
enum In {
    Data(Vec<u8>),
    End,
}

/// Runs the session `req` asks for, answering on `reply`.
pub(super) async fn run(
    client: async_nats::Client,
    reply: Subject,
    req: ExecRequest,
    session: ExecSession,
    containers: Result<Arc<Containers>, String>,
) {
    let mut out = Out::new(&client, reply);
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
    // Output frames from the readers; input to the writer, which says how
    // much it wrote (for the acknowledgements).
    let (out_tx, mut out_rx) = mpsc::channel::<Frame>(16);
    // (Unbounded: the server sends no more than the window.)
    let (in_tx, in_rx) = mpsc::unbounded_channel::<In>();
    let (wrote_tx, mut wrote_rx) = mpsc::unbounded_channel::<u64>();
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    // The runtime's own output (and, without a terminal, the command's).
    if let Some(stdout) = started.child.stdout.take() {
        tasks.push(tokio::spawn(pump(stdout, out_tx.clone(), Frame::Stdout)));
    }
    if let Some(stderr) = started.child.stderr.take() {
        tasks.push(tokio::spawn(pump(stderr, out_tx.clone(), Frame::Stderr)));
    }
    let terminal = match started.terminal.take().map(Master::new) {
        Some(Ok(m)) => Some(Arc::new(m)),
        Some(Err(e)) => {
            started.kill(true);
            return out.exit(None, Some(format!("terminal: {e}"))).await;
        }
        None => None,
    };
    match &terminal {
        Some(t) => {
            tasks.push(tokio::spawn(read_terminal(t.clone(), out_tx.clone())));
            let signal = started.command_signaller();
            tasks.push(tokio::spawn(write_terminal(
                t.clone(),
                in_rx,
                wrote_tx,
                signal,
            )));
        }
        None => {
            let stdin = started.child.stdin.take();
            tasks.push(tokio::spawn(write_pipe(stdin, in_rx, wrote_tx)));
        }
    }
    if !session.stdin {
        let _ = in_tx.send(In::End);
    }
    drop(out_tx);
    out.send(Frame::Started).await;
    let idle = Duration::from_millis(IDLE_MS);
    let mut heard = tokio::time::Instant::now();
    let (mut acked, mut written, mut written_acked) = (0u64, 0u64, 0u64);
    let mut why: Option<String> = None;
    let mut killing: Option<tokio::time::Instant> = None;
    let mut listening = true;
    let mut again = tokio::time::interval(KILL_AGAIN);
    let status = loop {
        tokio::select! {
            msg = input_sub.next(), if listening => {
                let Some(msg) = msg else {
                    listening = false;
                    why.get_or_insert_with(|| "the host's connection ended".into());
                    killing.get_or_insert_with(tokio::time::Instant::now);
                    started.kill(false);
                    continue;
                };
                heard = tokio::time::Instant::now();
                match Frame::from_message(&msg.payload).map(|(_, f)| f) {
                    Ok(Frame::Stdin(data)) if session.stdin => {
                        let _ = in_tx.send(In::Data(data));
                    }
                    Ok(Frame::StdinClosed) => {
                        let _ = in_tx.send(In::End);
                    }
                    Ok(Frame::Resize { rows, cols }) => {
                        if let Some(t) = &terminal {
                            t.resize(rows, cols);
                        }
                    }
                    Ok(Frame::Ack(n)) => acked = acked.max(n),
                    Ok(Frame::Close) => {
                        killing.get_or_insert_with(tokio::time::Instant::now);
                        started.kill(false);
                    }
                    _ => {}
                }
            }
            // Output is sent only while the server keeps up with it.
            Some(frame) = out_rx.recv(), if out.sent.saturating_sub(acked) < WINDOW => {
                out.send(frame).await;
            }
            Some(n) = wrote_rx.recv() => {
                written += n;
                if written - written_acked >= ACK_EVERY.min(WINDOW / 2) {
                    written_acked = written;
                    out.send(Frame::Ack(written)).await;
                }
            }
            status = started.child.wait() => break status.ok(),
            () = tokio::time::sleep_until(heard + idle), if killing.is_none() => {
                why = Some(format!("killed: no word from the client for {}s", idle.as_secs()));
                killing = Some(tokio::time::Instant::now());
                started.kill(false);
            }
            _ = again.tick(), if killing.is_some() => {
                started.kill(killing.is_some_and(|k| k.elapsed() >= KILL_RUNTIME_AFTER));
            }
        }
    };
    drop(in_tx);
    // What the command wrote last, within the window as ever: the
    // server's acknowledgements still come in.
    let end = tokio::time::Instant::now() + DRAIN_MAX;
    let mut until = tokio::time::Instant::now() + DRAIN;
    loop {
        tokio::select! {
            frame = out_rx.recv(), if out.sent.saturating_sub(acked) < WINDOW => match frame {
                Some(frame) => {
                    out.send(frame).await;
                    until = (tokio::time::Instant::now() + DRAIN).min(end);
                }
                None => break,
            },
            Some(msg) = input_sub.next(), if listening => {
                if let Ok((_, Frame::Ack(n))) = Frame::from_message(&msg.payload) {
                    acked = acked.max(n);
                    until = (tokio::time::Instant::now() + DRAIN).min(end);
                }
            }
            () = tokio::time::sleep_until(until) => break,
        }
    }
    // Nothing of the session outlives it.
    for t in &tasks {
        t.abort();
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

/// Sends what the command writes to its terminal, until nothing holds
/// the terminal any more (EIO).
async fn read_terminal(t: Arc<Master>, tx: mpsc::Sender<Frame>) {
    let mut buf = vec![0u8; MAX_DATA];
    while let Ok(n) = t.read(&mut buf).await {
        if n == 0 || tx.send(Frame::Stdout(buf[..n].to_vec())).await.is_err() {
            break;
        }
    }
}

/// Writes input to the terminal. A terminal has no end of input but ^D,
/// which is the client's to type.
async fn write_terminal(
    t: Arc<Master>,
    mut rx: mpsc::UnboundedReceiver<In>,
    wrote: mpsc::UnboundedSender<u64>,
    signal: impl Fn(i32) -> bool,
) {
    while let Some(input) = rx.recv().await {
        if let In::Data(data) = input {
            // ^C and ^\: as the terminal would, were it the command's.
            for s in t.signals_in(&data) {
                signal(s);
            }
            if t.write_all(&data).await.is_err() {
                break;
            }
            let _ = wrote.send(cost(data.len()));
        }
    }
}

/// Writes input to the command's standard input; closes it at the end.
async fn write_pipe(
    mut stdin: Option<tokio::process::ChildStdin>,
    mut rx: mpsc::UnboundedReceiver<In>,
    wrote: mpsc::UnboundedSender<u64>,
) {
    while let Some(input) = rx.recv().await {
        match (input, &mut stdin) {
            (In::Data(data), Some(pipe)) => {
                if pipe.write_all(&data).await.is_err() {
                    stdin = None;
                }
                let _ = wrote.send(cost(data.len()));
            }
            // Taken and dropped: the command sees the end of its input.
            (In::Data(data), None) => {
                let _ = wrote.send(cost(data.len()));
            }
            (In::End, _) => stdin = None,
        }
    }
}
