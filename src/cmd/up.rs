//! `atoll up [-f FILE]`: a whole cluster on one machine. Uses the NATS at
//! `--nats`, or starts a local nats-server with JetStream when none
//! answers; runs the server and one host in this process; deploys FILE;
//! Ctrl-C stops everything.

use super::{compose_files, deploy};
use crate::context::{self, Context};
use crate::host_options::{ContainerArgs, default_data_dir, parse_labels};
use crate::nats_child::{self, NatsChild};
use anyhow::Context as _;
use atoll_runtime::{HostConfig, host_info};
use atoll_scheduler::ServerConfig;
use atoll_scheduler::identity;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(clap::Args)]
pub struct Args {
    /// The Compose file to deploy (default: compose.yaml here, if present)
    #[arg(short, long)]
    file: Option<PathBuf>,
    /// NATS server URLs, comma-separated; with one URL, a local nats-server
    /// is started there when none answers
    #[arg(long, env = "ATOLL_NATS", value_name = "URL[,URL…]", default_value = "nats://127.0.0.1:4222", value_parser = crate::nats_urls::parse)]
    nats: String,
    /// Address of the HTTP API
    #[arg(long, default_value = "127.0.0.1:7420")]
    listen: SocketAddr,
    /// Address the host's gateway listens on for published ports
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// A host label, k=v (repeatable)
    #[arg(long = "label", value_name = "K=V")]
    labels: Vec<String>,
    /// Where NATS data, artifacts and compiled code are kept
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Another host in this process, NAME or NAME:K=V[,K=V…], on the next
    /// loopback address after --bind (repeatable): a fleet on one machine
    #[arg(long = "host", value_name = "NAME[:K=V,…]")]
    hosts: Vec<String>,
    #[command(flatten)]
    containers: ContainerArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    // Secure with no extra step: an identity made once in the data dir
    // (the API's certificate and token, NATS accounts), used by all.
    let identity = ensure_identity(&data_dir.join("identity"))?;
    let urls = atoll_sdk::nats::parse_urls(&args.nats)?;
    let addrs = (urls.iter().map(nats_child::socket_addr)).collect::<anyhow::Result<Vec<_>>>()?;
    let nats = if addrs.iter().any(|a| nats_child::answers(*a)) {
        println!("using NATS at {}", args.nats);
        None
    } else if let [nats_addr] = addrs[..] {
        println!(
            "starting nats-server on {nats_addr} (data in {})",
            data_dir.join("nats").display()
        );
        Some(NatsChild::start(
            nats_addr,
            &data_dir.join("nats"),
            &data_dir.join("nats.log"),
            Some(&identity.join(identity::NATS_AUTH_CONF)),
        )?)
    } else {
        anyhow::bail!(
            "no NATS answers at any of {}; atoll up starts a local nats-server only for a single --nats URL",
            args.nats
        );
    };
    let result = run_cluster(&args, &data_dir, &identity).await;
    if let Some(n) = nats {
        n.stop();
    }
    result
}

async fn run_cluster(
    args: &Args,
    data_dir: &std::path::Path,
    identity: &std::path::Path,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let name = host_info::machine_hostname();
    let mut hosts = vec![(name.clone(), args.bind, parse_labels(&args.labels)?)];
    for (i, spec) in args.hosts.iter().enumerate() {
        let (extra_name, labels) = parse_host(spec)?;
        hosts.push((extra_name, nth_address(args.bind, i + 1)?, labels));
    }
    let mut host_cfgs = Vec::new();
    let issuer = identity::issuing::HostIssuer::load(identity, "default")?;
    for (name, bind, labels) in &hosts {
        let mut cfg = HostConfig::new(&args.nats, name, *bind, data_dir.join("hosts").join(name));
        cfg.labels = labels.clone();
        // Each host its own identity, as if it had joined: its NATS user
        // reaches its own part only.
        cfg.identity = Some(host_identity(&issuer, name, &cfg.data_dir)?);
        args.containers.apply(&mut cfg)?;
        host_cfgs.push(cfg);
    }
    let mut server_cfg = ServerConfig::new(&args.nats, args.listen);
    server_cfg.identity = Some(identity.to_path_buf());
    let server = tokio::spawn(atoll_scheduler::run(server_cfg, stopped(stop_rx.clone())));
    let host_tasks: Vec<_> = host_cfgs
        .into_iter()
        .map(|cfg| tokio::spawn(atoll_runtime::run(cfg, stopped(stop_rx.clone()))))
        .collect();
    let host = futures::future::join_all(host_tasks);

    let ctx = Context {
        server: context::url_of(args.listen, true),
        ca: identity.join(identity::CA_CERT),
        token_file: identity.join(identity::ADMIN_TOKEN),
    };
    let api = ctx.server.clone();
    let credentials = atoll_sdk::client::Credentials {
        token: Some(identity::read_admin_token(identity)?),
        ca_pem: Some(
            std::fs::read(&ctx.ca).with_context(|| format!("cannot read {}", ctx.ca.display()))?,
        ),
    };
    let client = atoll_sdk::client::Client::with(&api, credentials)?;
    if let Err(e) = wait_healthy(&client, &server).await {
        // Stop the host too, or this process would wait on it forever.
        let _ = stop_tx.send(true);
        let (s, _) = tokio::join!(server, host);
        if let Ok(Err(cause)) = s {
            return Err(anyhow::anyhow!("the server could not start: {cause}"));
        }
        return Err(e);
    }
    for (name, bind, labels) in &hosts {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("host {name} on {bind} {}", labels.join(","));
    }
    println!("atoll server on {api}");
    match context::save(&ctx) {
        Ok(path) => println!(
            "CLI context {} (atoll ps, atoll deploy… need no flags)",
            path.display()
        ),
        Err(e) => println!(
            "no CLI context ({e:#}): pass --server {api} --ca {} --token \"$(cat {})\"",
            ctx.ca.display(),
            ctx.token_file.display()
        ),
    }
    // Without -f: the default file (and its override file), if one is here.
    let files = compose_files::FileArgs {
        files: args.file.clone().into_iter().collect(),
        ..Default::default()
    };
    if args.file.is_some() || compose_files::default_file().is_some() {
        let deployed = async {
            let (app, revision) = deploy::deploy_file(&client, &files).await?;
            deploy::wait_running(&client, &app, revision, Duration::from_secs(120)).await?;
            print_try_lines(&client, &app, args.bind).await;
            anyhow::Ok(())
        };
        if let Err(e) = deployed.await {
            eprintln!("error: {e:#}");
        }
    }
    println!("press Ctrl-C to stop");
    crate::signals::shutdown().await;
    println!("stopping");
    let _ = stop_tx.send(true);
    let (s, h) = tokio::join!(server, host);
    s.context("server task")??;
    for result in h {
        result.context("host task")??;
    }
    Ok(())
}

/// `NAME` or `NAME:K=V,K=V`.
fn parse_host(spec: &str) -> anyhow::Result<(String, std::collections::BTreeMap<String, String>)> {
    let (name, labels) = spec.split_once(':').unwrap_or((spec, ""));
    if name.is_empty() {
        anyhow::bail!("--host {spec}: expected NAME or NAME:K=V[,K=V…]");
    }
    let labels: Vec<String> = labels
        .split(',')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    Ok((name.to_string(), parse_labels(&labels)?))
}

/// The `n`th address after `bind` (127.0.0.1 → 127.0.0.2 …): extra hosts
/// of one machine need an address each for the published ports.
fn nth_address(bind: IpAddr, n: usize) -> anyhow::Result<IpAddr> {
    match bind {
        IpAddr::V4(v4) if v4.is_loopback() => {
            let next = u32::from(v4)
                .checked_add(n as u32)
                .map(std::net::Ipv4Addr::from);
            match next {
                Some(a) if a.is_loopback() => Ok(IpAddr::V4(a)),
                _ => anyhow::bail!("no loopback address left after {bind} for host {n}"),
            }
        }
        _ => anyhow::bail!("--host needs a loopback --bind (each host gets the next address)"),
    }
}

/// Waits (bounded) for the in-process server to answer, or reports why it
/// stopped.
async fn wait_healthy(
    client: &atoll_sdk::client::Client,
    server: &tokio::task::JoinHandle<Result<(), atoll_scheduler::ServerError>>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while client.health().await.is_err() {
        if server.is_finished() {
            anyhow::bail!("the server stopped during start-up (see the log above)");
        }
        if Instant::now() > deadline {
            anyhow::bail!("the server did not answer within 15s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn print_try_lines(client: &atoll_sdk::client::Client, app: &str, bind: IpAddr) {
    if let Ok(view) = client.app(app).await {
        for s in &view.services {
            for p in &s.ports {
                if let Some(published) = p.split(':').next() {
                    println!("try: curl http://{bind}:{published}/");
                }
            }
        }
    }
}

/// Host `name`'s identity in its data dir, issued first if it has none.
fn host_identity(
    issuer: &identity::issuing::HostIssuer,
    name: &str,
    data_dir: &std::path::Path,
) -> anyhow::Result<atoll_runtime::identity::Identity> {
    if let Some(id) = atoll_runtime::identity::load(data_dir)? {
        return Ok(id);
    }
    let (issued, _) = issuer.host(name)?;
    std::fs::create_dir_all(data_dir)?;
    Ok(atoll_runtime::identity::save(data_dir, &issued)?)
}

/// The identity in `dir`, made first if there is none; its absolute path.
fn ensure_identity(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    if !dir.join(identity::CA_CERT).exists() {
        identity::init(dir, &[])?;
        println!("made the cluster identity in {}", dir.display());
    } else if identity::add_nats(dir)? {
        println!(
            "added NATS accounts to the cluster identity in {}",
            dir.display()
        );
    }
    Ok(std::path::absolute(dir)?)
}
