//! `atoll exec INSTANCE -- COMMAND [ARG…]`: runs a command in a running
//! container instance, wherever it runs, prints its output and exits with
//! its exit status (as `docker exec` does). Not yet: `-it` (an
//! interactive terminal).

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
    /// Kill the command after this long (e.g. 30s, 5m; at most 10m)
    #[arg(long, default_value = "60s", value_parser = atoll_sdk::spec::parse_duration)]
    timeout: Duration,
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
