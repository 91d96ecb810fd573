//! `atoll import state.json [--force]`: restores what `atoll export`
//! wrote. Apps the cluster has newer (or different at the same revision)
//! are refused unless `--force`; apps not in the file are left alone.

use crate::output::ServerArg;
use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The file `atoll export` wrote
    file: PathBuf,
    /// Overwrite apps the cluster has at a newer or a different revision
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    server: ServerArg,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    // Checked here first, so a bad file is named before anything is sent;
    // the server checks it again.
    atoll_sdk::export::parse(&bytes).with_context(|| format!("{}", args.file.display()))?;
    let done = args.server.client()?.import(bytes, args.force).await?;
    for app in &done.imported {
        println!(
            "app {}: imported {} revision(s), revision {} deployed",
            app.name, app.revisions, app.current
        );
    }
    for app in &done.skipped {
        println!("app {}: skipped, {}", app.name, app.why);
    }
    println!(
        "{} app(s) imported, {} skipped, {} scale record(s), {} retired host(s)",
        done.imported.len(),
        done.skipped.len(),
        done.scale,
        done.removed_hosts
    );
    for w in &done.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}
