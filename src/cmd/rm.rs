//! `atoll rm APP`: removes an app; its instances stop.

use crate::output::ServerArg;

#[derive(clap::Args)]
pub struct Args {
    /// The app to remove
    app: String,
    #[command(flatten)]
    server: ServerArg,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    args.server.client()?.remove_app(&args.app).await?;
    println!("app {} removed", args.app);
    Ok(())
}
