//! `atoll host`: the agent that runs instances on this machine.

use crate::host_options::{ContainerArgs, default_data_dir, parse_labels};
use anyhow::{Context, bail};
use atoll_runtime::identity::{self, Identity};
use atoll_runtime::{HostConfig, host_info};
use atoll_sdk::client::ClientError;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// How long a client of any of this host's ports (published, service
    /// addresses, mesh, metrics) has to send a request's headers, and to
    /// start its next request on a kept-alive connection
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = atoll_sdk::spec::parse_duration)]
    header_timeout: std::time::Duration,
    /// Connections at once on each of this host's ports; more wait until
    /// one closes
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// How long a client of a published port, a service address or the
    /// mesh may send nothing while sending a request's body (408, or the
    /// body cut once it streams to an instance)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = atoll_sdk::spec::parse_duration)]
    body_timeout: std::time::Duration,
    /// NATS user credentials, for a NATS with accounts (`atoll cluster
    /// init` makes the servers' server.creds)
    #[arg(long, env = "ATOLL_NATS_CREDS", value_name = "FILE")]
    nats_creds: Option<std::path::PathBuf>,
    /// The atoll server to join (https://ADDR:PORT), with --join and --ca
    #[arg(long, env = "ATOLL_SERVER", value_name = "URL")]
    server: Option<String>,
    /// A `host` token (`atoll token create --role host`): exchanged once
    /// for this host's identity, kept in DATA_DIR/identity; later starts
    /// use that identity without the server
    #[arg(long, env = "ATOLL_JOIN_TOKEN", value_name = "TOKEN")]
    join: Option<String>,
    /// The cluster's CA certificate (ca.pem of `atoll cluster init`): the
    /// only issuer the server is trusted by when joining
    #[arg(long, env = "ATOLL_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Where a host with an identity serves its Prometheus /metrics
    /// (default: its --bind address if that is loopback, else 127.0.0.1;
    /// port mesh-port + 1). Without an identity it shares the mesh port
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Run without an identity: NATS with no or shared credentials, a mesh
    /// port anyone who reaches it may use (a lab cluster only)
    #[arg(long)]
    insecure: bool,
    #[command(flatten)]
    containers: ContainerArgs,
    /// Remove every container, namespace and bridge this host's data dir
    /// holds, then exit (the host must be stopped)
    #[arg(long)]
    cleanup: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let name = (args.name.clone()).unwrap_or_else(host_info::machine_hostname);
    let data_dir =
        (args.data_dir.clone()).unwrap_or_else(|| default_data_dir().join("hosts").join(&name));
    let mut cfg = HostConfig::new(&args.nats, &name, args.bind, data_dir);
    cfg.cluster = args.cluster.clone();
    if !args.cleanup {
        cfg.identity = identity(&args, &name, &cfg.data_dir).await?;
        if let Some(id) = &cfg.identity {
            cfg.cluster = id.cluster.clone();
        }
    }
    cfg.labels = parse_labels(&args.labels)?;
    cfg.mesh_port = args.mesh_port;
    cfg.server_limits = atoll_runtime::ServerLimits {
        header_timeout: args.header_timeout,
        max_connections: args.max_connections as usize,
        body_timeout: args.body_timeout,
    };
    cfg.metrics_listen = args.metrics_listen;
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

/// The host's identity: the one it keeps, else one it joins for, else
/// none with `--insecure` (said loudly).
async fn identity(args: &Args, name: &str, data_dir: &Path) -> anyhow::Result<Option<Identity>> {
    if let Some(id) = identity::load(data_dir)? {
        if id.name != name {
            bail!(
                "{} holds the identity of host {}, not {name}: start it with --name {} or another --data-dir",
                id.dir.display(),
                id.name,
                id.name
            );
        }
        if args.cluster != "default" && args.cluster != id.cluster {
            bail!(
                "{} holds an identity in cluster {}, not {}",
                id.dir.display(),
                id.cluster,
                args.cluster
            );
        }
        tracing::info!(dir = %id.dir.display(), "using this host's identity");
        return Ok(Some(id));
    }
    let Some(token) = &args.join else {
        if args.insecure {
            tracing::warn!(
                "--insecure: no identity; NATS with the credentials given (if any), and a mesh port anyone who reaches it may use"
            );
            return Ok(None);
        }
        bail!(
            "this host has no identity in {}: join with --server https://ADDR --join TOKEN --ca ca.pem \
             (a token from `atoll token create --role host`), or run a lab host with --insecure",
            data_dir.join(identity::DIR).display()
        );
    };
    let (Some(server), Some(ca)) = (&args.server, &args.ca) else {
        bail!("--join needs --server https://ADDR and --ca ca.pem (the cluster's CA)");
    };
    let ca_pem = std::fs::read(ca).with_context(|| format!("reading --ca {}", ca.display()))?;
    let client = atoll_sdk::client::Client::with(
        server,
        atoll_sdk::client::Credentials {
            token: Some(token.clone()),
            ca_pem: Some(ca_pem),
        },
    )?;
    let issued = join_within(&client, name, JOIN_PATIENCE).await?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data dir {}", data_dir.display()))?;
    let id = identity::save(data_dir, &issued)?;
    tracing::info!(server = %server, dir = %id.dir.display(), "joined: identity kept");
    Ok(Some(id))
}

/// How long a first start waits for the server to be reachable.
const JOIN_PATIENCE: Duration = Duration::from_secs(120);

/// Joins, retrying while the server cannot be reached (bounded by
/// `patience`); a refusal (a bad token, a name taken) is final.
async fn join_within(
    client: &atoll_sdk::client::Client,
    name: &str,
    patience: Duration,
) -> anyhow::Result<atoll_sdk::api::HostIdentity> {
    let until = tokio::time::Instant::now() + patience;
    let mut delay = Duration::from_millis(250);
    loop {
        match client.join(name).await {
            Ok(id) => return Ok(id),
            Err(e @ ClientError::Unreachable { .. })
                if tokio::time::Instant::now() + delay < until =>
            {
                tracing::warn!(error = %e, retry_in = ?delay, "cannot join yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(anyhow::anyhow!("joining the cluster: {e}")),
        }
    }
}
