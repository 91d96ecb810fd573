//! `atoll host`: the agent that runs instances on this machine.

use crate::host_options::{ContainerArgs, default_data_dir, parse_labels};
use atoll_runtime::{HostConfig, host_info};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// NATS server URLs, comma-separated: the nodes of a NATS cluster (the
    /// client fails over between them)
    #[arg(long, env = "ATOLL_NATS", value_name = "URL[,URL…]", default_value = "nats://127.0.0.1:4222", value_parser = crate::nats_urls::parse)]
    nats: String,
    /// Host name in the cluster (default: the machine's hostname)
    #[arg(long)]
    name: Option<String>,
    /// Address the gateway listens on for published ports
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// A label for placement constraints, k=v (repeatable)
    #[arg(long = "label", value_name = "K=V")]
    labels: Vec<String>,
    /// Where the host keeps artifacts, compiled code and its cached assignment
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Cluster name
    #[arg(long, default_value = "default")]
    cluster: String,
    /// Port on the bind address where other hosts forward service calls
    #[arg(long, default_value_t = atoll_sdk::cluster::DEFAULT_MESH_PORT)]
    mesh_port: u16,
    /// NATS user credentials, for a NATS with accounts (`atoll cluster
    /// init` makes the servers' server.creds)
    #[arg(long, env = "ATOLL_NATS_CREDS", value_name = "FILE")]
    nats_creds: Option<std::path::PathBuf>,
    #[command(flatten)]
    containers: ContainerArgs,
    /// Remove every container, namespace and bridge this host's data dir
    /// holds, then exit (the host must be stopped)
    #[arg(long)]
    cleanup: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let name = args.name.unwrap_or_else(host_info::machine_hostname);
    let data_dir = (args.data_dir).unwrap_or_else(|| default_data_dir().join("hosts").join(&name));
    let mut cfg = HostConfig::new(&args.nats, &name, args.bind, data_dir);
    cfg.cluster = args.cluster;
    cfg.labels = parse_labels(&args.labels)?;
    cfg.mesh_port = args.mesh_port;
    cfg.nats_creds = args.nats_creds;
    args.containers.apply(&mut cfg)?;
    if args.cleanup {
        atoll_runtime::cleanup(cfg).await?;
        println!("host cleaned up");
        return Ok(());
    }
    atoll_runtime::run(cfg, crate::signals::shutdown()).await?;
    Ok(())
}
