//! `atoll rollback APP[/SERVICE] [--to REV]`: deploys an earlier revision
//! again (the one before the current by default), as a rolling update.

use std::time::Duration;

use crate::output::ServerArg;
use atoll_sdk::api::RollbackRequest;

#[derive(clap::Args)]
pub struct Args {
    /// The app, or one service of it (`APP/SERVICE`)
    target: String,
    /// The revision to go back to (see `atoll history`)
    #[arg(long)]
    to: Option<u64>,
    /// Wait until the rollback is done
    #[arg(long)]
    wait: bool,
    /// How long --wait waits, in seconds
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    #[command(flatten)]
    server: ServerArg,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (app, service) = match args.target.split_once('/') {
        Some((a, s)) => (a.to_string(), Some(s.to_string())),
        None => (args.target.clone(), None),
    };
    let client = args.server.client()?;
    let req = RollbackRequest {
        service,
        to: args.to,
    };
    let done = client.rollback(&app, &req).await?;
    println!(
        "app {app} revision {} restores revision {}",
        done.revision, done.restored
    );
    if args.wait {
        let timeout = Duration::from_secs(args.timeout);
        super::deploy::wait_running(&client, &app, done.revision, timeout).await?;
    }
    Ok(())
}
