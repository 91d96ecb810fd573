//! Host options shared by `atoll host` and `atoll up` (which runs hosts
//! in-process): how containers run, labels, the default data dir.

use anyhow::bail;
use atoll_runtime::HostConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// Static init binary run as PID 1 of `init: true` containers (default:
    /// tini-static from Debian's tini package, or docker-init)
    #[arg(long, value_name = "FILE")]
    init_binary: Option<PathBuf>,
    /// Containers share the host's user namespace (root inside is root on
    /// the host). By default each runs in its own where the kernel allows:
    /// root inside is host ids 100000–165535 (images and volumes seen
    /// through idmapped mounts)
    #[arg(long)]
    no_userns: bool,
}

impl ContainerArgs {
    /// Fills the container fields of a host config.
    pub fn apply(&self, cfg: &mut HostConfig) -> anyhow::Result<()> {
        cfg.oci_runtime = self.oci_runtime.clone();
        cfg.insecure_registries = self.insecure_registries.clone();
        cfg.registry_auth = self.registry_auth.clone();
        cfg.container_subnet = match &self.container_subnet {
            Some(s) => Some(atoll_runtime::Subnet::parse(s)?),
            None => None,
        };
        cfg.keep_containers = self.keep_containers;
        cfg.init_binary = self.init_binary.clone();
        cfg.userns = (!self.no_userns).then_some(atoll_runtime::USERNS_DEFAULT_BASE);
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
