//! `atoll server`: the control plane.

use atoll_scheduler::ServerConfig;
use std::net::SocketAddr;

#[derive(clap::Args)]
pub struct Args {
    /// NATS server URL
    #[arg(long, env = "ATOLL_NATS", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// Address of the HTTP API
    #[arg(long, default_value = "127.0.0.1:7420")]
    listen: SocketAddr,
    /// Cluster name (several clusters may share one NATS)
    #[arg(long, default_value = "default")]
    cluster: String,
    /// This server's name in the leader election (default: server-<listen>)
    #[arg(long)]
    name: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut cfg = ServerConfig::new(&args.nats, args.listen);
    cfg.cluster = args.cluster;
    if let Some(n) = args.name {
        cfg.name = n;
    }
    atoll_scheduler::run(cfg, crate::signals::shutdown()).await?;
    Ok(())
}
