//! `atoll version`: this command line's version and the server's (as
//! `kubectl version` does); `-o json` for scripts. An unreachable server
//! is said, with exit status 4, after the client's version.

use crate::output::{self, Format, ServerArg};

#[derive(clap::Args)]
pub struct Args {
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Only the client's version (no server needed)
    #[arg(long)]
    client: bool,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(serde::Serialize)]
struct Versions {
    client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = env!("CARGO_PKG_VERSION").to_string();
    let server = match args.client {
        true => None,
        false => Some(args.server.client()?.version().await),
    };
    let (server, failed) = match server {
        Some(Ok(v)) => (Some(v.version), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let versions = Versions { client, server };
    if args.output.structured() {
        output::structured(args.output, &versions)?;
    } else {
        println!("client: {}", versions.client);
        if let Some(s) = &versions.server {
            println!("server: {s}");
        }
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
