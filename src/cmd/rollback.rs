//! `atoll rollback APP[/SERVICE] [--to REV]`: deploys an earlier revision
//! again (the one before the current by default), as a rolling update.

use super::deploy::WaitArg;
use crate::output::ServerArg;
use atoll_sdk::api::RollbackRequest;

#[derive(clap::Args)]
pub struct Args {
    /// The app, or one service of it (`APP/SERVICE`)
    target: String,
    /// The revision to go back to (see `atoll history`)
    #[arg(long)]
    to: Option<u64>,
    #[command(flatten)]
    wait: WaitArg,
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
    args.wait.wait(&client, &app, done.revision).await
}
