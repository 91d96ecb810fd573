//! `atoll export > state.json`: the cluster's desired state as JSON on
//! stdout (apps with the revisions their history keeps, the autoscaler's
//! counts, retired hosts), for `atoll import`.

use crate::output::{self, ServerArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArg,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let file = args.server.client()?.export().await?;
    output::json(&file)?;
    let revisions: usize = file.apps.iter().map(|a| a.revisions.len()).sum();
    eprintln!(
        "exported cluster {}: {} app(s), {revisions} revision(s), {} scale record(s), {} retired host(s)",
        file.cluster,
        file.apps.len(),
        file.scale.len(),
        file.removed_hosts.len()
    );
    Ok(())
}
