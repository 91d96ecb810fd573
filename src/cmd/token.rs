//! `atoll token create|ls|revoke`: API tokens (admin only).

use crate::output::{self, Format, ServerArg};
use atoll_sdk::api::CreateTokenRequest;
use atoll_sdk::auth::Role;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Mint a token and print it (shown this once)
    Create {
        /// admin, deploy, read or host
        #[arg(long)]
        role: Role,
        /// How long it is valid (30m, 24h, 7d…); default: until revoked
        #[arg(long, value_name = "DURATION", value_parser = atoll_sdk::spec::parse_duration)]
        ttl: Option<std::time::Duration>,
        /// The one app a deploy or read token may touch
        #[arg(long)]
        app: Option<String>,
        /// Output format
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// List tokens (never their secrets)
    Ls {
        /// Output format
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
        /// Only the ids, one per line (for scripts)
        #[arg(short, long)]
        quiet: bool,
    },
    /// Revoke a token: it is refused from now on
    Revoke {
        /// The token's id (from `atoll token ls`)
        id: String,
    },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    match args.command {
        Command::Create {
            role,
            ttl,
            app,
            output,
        } => {
            let req = CreateTokenRequest {
                role,
                ttl_ms: ttl.map(|t| t.as_millis() as u64),
                app,
            };
            let created = client.create_token(&req).await?;
            if output.structured() {
                return output::structured(output, &created);
            }
            println!("{}", created.token);
        }
        Command::Ls { output, quiet } => {
            let tokens = client.tokens().await?;
            if quiet {
                tokens.iter().for_each(|t| println!("{}", t.id));
                return Ok(());
            }
            if output.structured() {
                return output::structured(output, &tokens);
            }
            let now = atoll_sdk::protocol::now_ms();
            let rows: Vec<Vec<String>> = (tokens.iter())
                .map(|t| {
                    vec![
                        t.id.clone(),
                        t.role.to_string(),
                        t.app.clone().unwrap_or_else(|| "-".into()),
                        output::age(t.created_ms),
                        match t.expires_ms {
                            Some(e) if e <= now => "expired".into(),
                            Some(e) => format!("in {}", output::span(e - now)),
                            None => "never".into(),
                        },
                    ]
                })
                .collect();
            output::table(&["ID", "ROLE", "APP", "AGE", "EXPIRES"], &rows);
        }
        Command::Revoke { id } => {
            client.revoke_token(&id).await?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}
