//! `atoll events`: follows cluster events (deploys, placements, hosts).

use crate::output::{Format, ServerArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArg,
    /// Output format (json: one object per line)
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let json = args.output.structured();
    args.server
        .client()?
        .events(|e| {
            if json {
                if let Ok(s) = serde_json::to_string(&e) {
                    println!("{s}");
                }
            } else {
                println!(
                    "{:<14} {:<12} {}",
                    e.kind,
                    e.app.as_deref().unwrap_or("-"),
                    e.message
                );
            }
        })
        .await?;
    Ok(())
}
