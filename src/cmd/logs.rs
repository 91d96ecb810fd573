//! `atoll logs APP[/SERVICE] [-f] [--tail N]`: the output of an app's
//! instances (container stdout/stderr, component stdout/stderr), from
//! whichever hosts run them.

use crate::output::ServerArg;
use anyhow::bail;
use std::io::Write;

#[derive(clap::Args)]
pub struct Args {
    /// APP or APP/SERVICE
    target: String,
    /// Keep streaming new lines
    #[arg(short, long)]
    follow: bool,
    /// Lines to show from the end of each instance's log (default: all)
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    #[command(flatten)]
    server: ServerArg,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (app, service) = match args.target.split_once('/') {
        Some((a, s)) if !a.is_empty() && !s.is_empty() => (a, Some(s)),
        None if !args.target.is_empty() => (args.target.as_str(), None),
        _ => bail!("expected APP or APP/SERVICE, got {:?}", args.target),
    };
    let mut out = std::io::stdout().lock();
    args.server
        .client()?
        .logs(app, service, args.tail, args.follow, |bytes| {
            let _ = out.write_all(bytes);
            let _ = out.flush();
        })
        .await?;
    Ok(())
}
