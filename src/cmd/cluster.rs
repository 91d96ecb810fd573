//! `atoll cluster init --dir DIR`: the cluster's identity (its CA, the
//! API's certificate, the admin token), and a CLI context that uses it.

use crate::context::{self, Context};
use atoll_scheduler::identity;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Create the cluster's identity: a CA, the API's certificate and the admin token
    Init(InitArgs),
}

#[derive(clap::Args)]
struct InitArgs {
    /// Where to write it (keys and the token readable by you only)
    #[arg(long)]
    dir: PathBuf,
    /// Another name or address the API's certificate is valid for
    /// (localhost, 127.0.0.1 and ::1 always are); repeatable
    #[arg(long = "san", value_name = "NAME|IP")]
    sans: Vec<String>,
    /// The API address the CLI context points at
    #[arg(long, default_value = "127.0.0.1:7420")]
    listen: std::net::SocketAddr,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Init(a) => init(a),
    }
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let written = identity::init(&args.dir, &args.sans)?;
    let dir = std::path::absolute(&args.dir)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    let ctx = Context {
        server: context::url_of(args.listen, true),
        ca: dir.join(identity::CA_CERT),
        token_file: dir.join(identity::ADMIN_TOKEN),
    };
    let saved = context::save(&ctx)?;
    println!("CLI context {} → {}", saved.display(), ctx.server);
    println!(
        "start the server with: atoll server --identity {} --listen {}",
        dir.display(),
        args.listen
    );
    Ok(())
}
