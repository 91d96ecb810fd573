//! `atoll servers`: the cluster's control-plane servers, and which one
//! leads.

use crate::output::{self, Format, ServerArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArg,
    /// Output format
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
    /// Only the names, one per line (for scripts)
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let servers = args.server.client()?.servers().await?;
    if args.quiet {
        servers.iter().for_each(|s| println!("{}", s.name));
        return Ok(());
    }
    if args.output.structured() {
        return output::structured(args.output, &servers);
    }
    let rows: Vec<Vec<String>> = servers
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.address.clone(),
                if s.leader { "leader" } else { "follower" }.to_string(),
                if s.leader {
                    s.epoch.to_string()
                } else {
                    "-".into()
                },
                format!("{:.1}s", s.age_ms as f64 / 1000.0),
            ]
        })
        .collect();
    output::table(&["NAME", "ADDRESS", "ROLE", "EPOCH", "AGE"], &rows);
    Ok(())
}
