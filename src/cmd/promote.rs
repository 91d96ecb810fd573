//! `atoll promote APP/SERVICE`: the service's canary becomes its version
//! (a new revision, rolled out without downtime).

use std::time::Duration;

use crate::output::ServerArg;

#[derive(clap::Args)]
pub struct Args {
    /// The service whose canary to promote, as `APP/SERVICE`
    target: String,
    /// Wait until the update is done
    #[arg(long)]
    wait: bool,
    /// How long --wait waits, in seconds
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    #[command(flatten)]
    server: ServerArg,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let Some((app, service)) = args.target.split_once('/') else {
        anyhow::bail!("name the service as APP/SERVICE (got {:?})", args.target);
    };
    let client = args.server.client()?;
    let done = client.promote(app, service).await?;
    println!(
        "app {app} revision {}: {service} runs its canary's version",
        done.revision
    );
    if args.wait {
        let timeout = Duration::from_secs(args.timeout);
        super::deploy::wait_running(&client, app, done.revision, timeout).await?;
    }
    Ok(())
}
