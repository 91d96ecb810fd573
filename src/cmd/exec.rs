//! `atoll exec [-i] [-t] INSTANCE -- COMMAND [ARG…]`: runs a command in a
//! running container instance, wherever it runs, prints its output and
//! exits with its exit status (as `docker exec` does). With `-i` our
//! input goes to it as it comes, with `-t` it gets a terminal (`-it` for
//! a shell): both stream over an upgraded connection to the server.

use crate::output::ServerArg;
use std::io::Write;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The instance (its id from `atoll ps`, or a unique prefix of it)
    instance: String,
    /// The command and its arguments (after `--`)
    #[arg(required = true, last = true, value_name = "COMMAND")]
    command: Vec<String>,
    /// Kill the command after this long (e.g. 30s, 5m; at most 10m; not
    /// with -i or -t, which run until the command exits)
    #[arg(long, default_value = "60s", value_parser = atoll_sdk::spec::parse_duration)]
    timeout: Duration,
    /// Keep standard input open and pass it to the command
    #[arg(short, long)]
    interactive: bool,
    /// Give the command a terminal (with -i, from a terminal: a shell)
    #[arg(short, long)]
    tty: bool,
    #[command(flatten)]
    server: ServerArg,
}

/// The command ran and exited with a status other than 0: atoll exits
/// with the same status.
#[derive(Debug)]
pub struct CommandStatus(pub i32);

impl std::fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the command exited with status {}", self.0)
    }
}

impl std::error::Error for CommandStatus {}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    if args.interactive || args.tty {
        return session(&client, &args).await;
    }
    let reply = client
        .exec(&args.instance, &args.command, args.timeout)
        .await?;
    std::io::stdout().write_all(reply.stdout.as_bytes())?;
    std::io::stderr().write_all(reply.stderr.as_bytes())?;
    if reply.truncated {
        let max = atoll_sdk::protocol::EXEC_OUTPUT_MAX >> 20;
        eprintln!("atoll: the output was cut at {max} MiB per stream");
    }
    match reply.exit_code {
        Some(0) => Ok(()),
        Some(code) => Err(CommandStatus(code).into()),
        None => anyhow::bail!(
            "the command was killed (timed out after {:?}, or by a signal)",
            args.timeout
        ),
    }
}

/// `-i`/`-t`: the command runs as a session; our input, its output and
/// the terminal's size go both ways as frames until it exits.
async fn session(client: &atoll_sdk::client::Client, args: &Args) -> anyhow::Result<()> {
    use atoll_sdk::exec_session::{Frame, FrameReader, MAX_DATA};
    use std::io::IsTerminal;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let local_tty = std::io::stdin().is_terminal();
    if args.tty && args.interactive && !local_tty {
        anyhow::bail!("the input device is not a terminal: drop -t, or run from a terminal");
    }
    let (rows, cols) = super::terminal::size();
    let opts = atoll_sdk::client::ExecSessionOptions {
        tty: args.tty,
        stdin: args.interactive,
        rows,
        cols,
    };
    let conn = client
        .exec_session(&args.instance, &args.command, &opts)
        .await?;
    // Raw from here on (restored when this goes out of scope).
    let _raw = match args.tty && args.interactive {
        true => Some(super::terminal::RawMode::enter()?),
        false => None,
    };
    let (mut rd, mut wr) = tokio::io::split(conn);
    let (to_server, mut frames_out) = tokio::sync::mpsc::channel::<Frame>(16);
    if args.interactive {
        let tx = to_server.clone();
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; MAX_DATA];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(Frame::Stdin(buf[..n].to_vec())).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = tx.send(Frame::StdinClosed).await;
        });
    }
    if args.tty {
        let tx = to_server.clone();
        if let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        {
            tokio::spawn(async move {
                while winch.recv().await.is_some() {
                    let (rows, cols) = super::terminal::size();
                    if tx.send(Frame::Resize { rows, cols }).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
    drop(to_server);
    // Our frames go on their own, whatever the output does.
    tokio::spawn(async move {
        while let Some(f) = frames_out.recv().await {
            if wr.write_all(&f.framed()).await.is_err() {
                return;
            }
        }
    });
    let mut reader = FrameReader::default();
    let mut buf = vec![0u8; 64 << 10];
    let (mut out, mut err) = (tokio::io::stdout(), tokio::io::stderr());
    loop {
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            anyhow::bail!("the server closed the session before the command ended");
        }
        reader.push(&buf[..n]);
        while let Some(frame) = reader.next_frame()? {
            match frame {
                Frame::Stdout(d) => {
                    out.write_all(&d).await?;
                    out.flush().await?;
                }
                Frame::Stderr(d) => {
                    err.write_all(&d).await?;
                    err.flush().await?;
                }
                Frame::Exit { code, error } => {
                    drop(_raw);
                    return match (code, error) {
                        (Some(0), None) => Ok(()),
                        (Some(code), None) => Err(CommandStatus(code).into()),
                        (_, Some(why)) => anyhow::bail!("{why}"),
                        (None, None) => anyhow::bail!("the command was killed by a signal"),
                    };
                }
                _ => {}
            }
        }
    }
}
