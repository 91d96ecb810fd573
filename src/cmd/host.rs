//! `atoll host`: the agent that runs instances on this machine.

use anyhow::bail;
use atoll_runtime::{HostConfig, host_info};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// NATS server URL
    #[arg(long, env = "ATOLL_NATS", default_value = "nats://127.0.0.1:4222")]
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
    #[command(flatten)]
    containers: ContainerArgs,
    /// Remove every container, namespace and bridge this host's data dir
    /// holds, then exit (the host must be stopped)
    #[arg(long)]
    cleanup: bool,
}

/// How a host runs container images.
#[derive(clap::Args, Clone)]
pub struct ContainerArgs {
    /// OCI runtime binary for containers (youki, runc or crun)
    #[arg(long, env = "ATOLL_OCI_RUNTIME", default_value = "youki")]
    oci_runtime: PathBuf,
    /// A registry (host:port) reached over plain HTTP instead of TLS (repeatable)
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    insecure_registries: Vec<String>,
    /// Registry credentials, in docker's config.json format (default:
    /// $DOCKER_CONFIG/config.json or ~/.docker/config.json)
    #[arg(long, value_name = "FILE")]
    registry_auth: Option<PathBuf>,
    /// IPv4 subnet for this host's containers (default: a free 10.89.N.0/24)
    #[arg(long, value_name = "CIDR")]
    container_subnet: Option<String>,
    /// Leave containers running when the host stops, for its next run to adopt
    #[arg(long)]
    keep_containers: bool,
}

impl ContainerArgs {
    /// Fills the container fields of a host config.
    pub fn apply(&self, cfg: &mut HostConfig) -> anyhow::Result<()> {
        cfg.oci_runtime = self.oci_runtime.clone();
        cfg.insecure_registries = self.insecure_registries.clone();
        cfg.registry_auth = self.registry_auth.clone();
        cfg.container_subnet = match &self.container_subnet {
            Some(s) => Some(atoll_runtime::oci::network::Subnet::parse(s)?),
            None => None,
        };
        cfg.keep_containers = self.keep_containers;
        Ok(())
    }
}

pub fn parse_labels(labels: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for l in labels {
        match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => bail!("--label {l}: expected KEY=VALUE"),
        }
    }
    Ok(out)
}

/// `$XDG_DATA_HOME/atoll`, else `~/.local/share/atoll`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("atoll");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/atoll")
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let name = args.name.unwrap_or_else(host_info::machine_hostname);
    let data_dir = (args.data_dir).unwrap_or_else(|| default_data_dir().join("hosts").join(&name));
    let mut cfg = HostConfig::new(&args.nats, &name, args.bind, data_dir);
    cfg.cluster = args.cluster;
    cfg.labels = parse_labels(&args.labels)?;
    cfg.mesh_port = args.mesh_port;
    args.containers.apply(&mut cfg)?;
    if args.cleanup {
        atoll_runtime::cleanup(cfg).await?;
        println!("host cleaned up");
        return Ok(());
    }
    atoll_runtime::run(cfg, super::up::shutdown_signal()).await?;
    Ok(())
}
