//! `atoll promote APP/SERVICE`: the service's canary becomes its version
//! (a new revision, rolled out without downtime).

use super::deploy::WaitArg;
use crate::output::ServerArg;

#[derive(clap::Args)]
pub struct Args {
    /// The service whose canary to promote, as `APP/SERVICE`
    target: String,
    #[command(flatten)]
    wait: WaitArg,
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
    args.wait.wait(&client, app, done.revision).await
}
