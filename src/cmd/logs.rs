//! `atoll logs APP[/SERVICE] [-f] [--tail N] [--since WHEN] [-t]`: the
//! output of an app's instances (container stdout/stderr, component
//! stdout/stderr), from whichever hosts run them.

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
    /// Only lines written since WHEN: a duration back from now (10m,
    /// 1h30m), a time (2026-12-07T21:00:00Z, 2026-12-07) or Unix seconds
    #[arg(long, value_name = "WHEN", value_parser = since)]
    since: Option<u64>,
    /// Show when each line was written (RFC 3339, UTC, to the tenth of a
    /// second as the host saw it)
    #[arg(short, long)]
    timestamps: bool,
    #[command(flatten)]
    server: ServerArg,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (app, service) = match args.target.split_once('/') {
        Some((a, s)) if !a.is_empty() && !s.is_empty() => (a, Some(s)),
        None if !args.target.is_empty() => (args.target.as_str(), None),
        _ => bail!("expected APP or APP/SERVICE, got {:?}", args.target),
    };
    let opts = atoll_sdk::client::LogOptions {
        tail: args.tail,
        follow: args.follow,
        since_ms: args.since,
        timestamps: args.timestamps,
    };
    let mut out = std::io::stdout().lock();
    args.server
        .client()?
        .logs(app, service, &opts, |bytes| {
            let _ = out.write_all(bytes);
            let _ = out.flush();
        })
        .await?;
    Ok(())
}

/// `--since` as Unix milliseconds.
fn since(text: &str) -> Result<u64, String> {
    atoll_sdk::timestamps::parse_since(text, atoll_sdk::protocol::now_ms())
}
