//! `atoll server`: the control plane.

use atoll_scheduler::ServerConfig;
use std::net::SocketAddr;

#[derive(clap::Args)]
pub struct Args {
    /// NATS server URLs, comma-separated: the nodes of a NATS cluster (the
    /// client fails over between them)
    #[arg(long, env = "ATOLL_NATS", value_name = "URL[,URL…]", default_value = "nats://127.0.0.1:4222", value_parser = crate::nats_urls::parse)]
    nats: String,
    /// JetStream replicas of every bucket and the object store (default: 3
    /// when JetStream has at least 3 servers, else 1); buckets with fewer
    /// are raised, none is lowered
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=5))]
    replicas: Option<u8>,
    /// Address of the HTTP API
    #[arg(long, default_value = "127.0.0.1:7420")]
    listen: SocketAddr,
    /// Cluster name (several clusters may share one NATS)
    #[arg(long, default_value = "default")]
    cluster: String,
    /// This server's name in the leader election (default: server-<listen>)
    #[arg(long)]
    name: Option<String>,
    /// The cluster identity (made by `atoll cluster init --dir DIR`): the
    /// API serves HTTPS with its certificate and needs a token
    #[arg(
        long,
        value_name = "DIR",
        env = "ATOLL_IDENTITY",
        required_unless_present = "insecure"
    )]
    identity: Option<std::path::PathBuf>,
    /// Serve the API over plain HTTP without tokens: anyone who reaches it
    /// controls every host. For lab clusters only
    #[arg(long, conflicts_with = "identity")]
    insecure: bool,
    /// NATS user credentials (default: the identity's server.creds)
    #[arg(long, env = "ATOLL_NATS_CREDS", value_name = "FILE")]
    nats_creds: Option<std::path::PathBuf>,
    /// Capabilities a Compose file may add beyond Docker's default set
    /// (e.g. SYS_ADMIN,NET_ADMIN, or ALL); others are refused at deploy.
    /// Give every server of a cluster the same list
    #[arg(long, value_name = "CAP[,CAP…]", value_delimiter = ',', value_parser = capability)]
    allow_cap: Vec<String>,
    /// How long an API client has to send a request's headers, and to
    /// start its next request on a kept-alive connection
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = atoll_sdk::spec::parse_duration)]
    header_timeout: std::time::Duration,
    /// API connections at once; more wait until one closes
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    #[command(flatten)]
    detection: DetectionArgs,
}

fn capability(text: &str) -> Result<String, String> {
    atoll_sdk::spec::privilege::capability(text.trim()).ok_or_else(|| {
        format!("unknown capability {text:?}: expected a Linux capability such as NET_ADMIN or CAP_SYS_TIME, or ALL")
    })
}

/// How the server judges silent hosts (shared with `atoll up`).
#[derive(clap::Args, Clone)]
pub struct DetectionArgs {
    /// A host silent this long is `disconnected` (its instances then count
    /// as running per their `x-atoll.disconnect.lost_after`)
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = atoll_sdk::spec::parse_duration)]
    host_down_after: std::time::Duration,
    /// When more than this share of the hosts go silent together, re-place
    /// nothing until they are heard again
    #[arg(long, value_name = "SHARE", default_value_t = 0.5, value_parser = share)]
    mass_loss: f64,
    /// After this server's own connection to NATS comes back, hosts have
    /// this long to be heard before any is declared silent
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = atoll_sdk::spec::parse_duration)]
    reconnect_grace: std::time::Duration,
    /// How long the leader lease lives without renewal: another server
    /// takes over within it (and half a second) when the leader dies
    #[arg(long, value_name = "DURATION", default_value = "4s", value_parser = atoll_sdk::spec::parse_duration)]
    lease_ttl: std::time::Duration,
}

impl DetectionArgs {
    pub fn apply(&self, cfg: &mut ServerConfig) {
        cfg.down_after = self.host_down_after;
        cfg.mass_loss = self.mass_loss;
        cfg.reconnect_grace = self.reconnect_grace;
        cfg.lease_ttl = self.lease_ttl;
    }
}

fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "expected a share between 0 and 1 (0.5 is half), found {text:?}"
        )),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut cfg = ServerConfig::new(&args.nats, args.listen);
    cfg.cluster = args.cluster;
    cfg.replicas = args.replicas.map(usize::from);
    cfg.identity = args.identity;
    cfg.insecure = args.insecure;
    cfg.nats_creds = args.nats_creds;
    cfg.policy.caps = args.allow_cap.into_iter().collect();
    cfg.limits = atoll_scheduler::ApiLimits {
        header_timeout: args.header_timeout,
        max_connections: args.max_connections as usize,
    };
    if let Some(n) = args.name {
        cfg.name = n;
    }
    args.detection.apply(&mut cfg);
    atoll_scheduler::run(cfg, crate::signals::shutdown()).await?;
    Ok(())
}
