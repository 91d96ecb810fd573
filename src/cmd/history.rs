//! `atoll history APP`: the app's revisions, and what each changed.

use crate::output::{self, Format, ServerArg};

#[derive(clap::Args)]
pub struct Args {
    /// The app
    app: String,
    #[command(flatten)]
    server: ServerArg,
    /// Output format
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
    /// Only the revision numbers, one per line (for scripts)
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let revisions = args.server.client()?.history(&args.app).await?;
    if args.quiet {
        revisions.iter().for_each(|r| println!("{}", r.revision));
        return Ok(());
    }
    if args.output.structured() {
        return output::structured(args.output, &revisions);
    }
    let rows: Vec<Vec<String>> = revisions
        .iter()
        .map(|r| {
            let services: Vec<String> = (r.services.iter())
                .map(|(name, artifact)| format!("{name}={}", short(artifact)))
                .collect();
            vec![
                format!("{}{}", r.revision, if r.current { " *" } else { "" }),
                output::age(r.deployed_at_ms),
                r.cause.clone().unwrap_or_else(|| "deploy".into()),
                services.join(" "),
            ]
        })
        .collect();
    output::table(&["REVISION", "AGE", "CAUSE", "SERVICES"], &rows);
    Ok(())
}

/// A digest cut to its first 12 hex digits; references as they are.
fn short(artifact: &str) -> String {
    match artifact.strip_prefix("sha256:") {
        Some(hex) => format!("sha256:{}", &hex[..hex.len().min(12)]),
        None => artifact.to_string(),
    }
}
