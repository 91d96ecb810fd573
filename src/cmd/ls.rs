//! `atoll ls`: apps with their revision and status.

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
    let apps = args.server.client()?.apps().await?;
    if args.quiet {
        apps.iter().for_each(|x| println!("{}", x.name));
        return Ok(());
    }
    if args.output.structured() {
        return output::structured(args.output, &apps);
    }
    let rows: Vec<Vec<String>> = apps
        .iter()
        .map(|a| {
            let services = a
                .services
                .iter()
                .map(|s| format!("{} {}/{}", s.name, s.running, s.desired))
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                a.name.clone(),
                a.revision.to_string(),
                a.status.clone(),
                services,
                output::age(a.deployed_at_ms),
                a.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["NAME", "REVISION", "STATUS", "SERVICES", "AGE", "MESSAGE"];
    let wide = |a: &atoll_sdk::api::AppView| {
        vec![
            a.update.clone().unwrap_or_else(|| "-".into()),
            a.warnings.len().to_string(),
        ]
    };
    output::table_or_wide(
        args.output,
        &header,
        rows,
        &apps,
        (&["UPDATE", "WARNINGS"], wide),
    );
    Ok(())
}
