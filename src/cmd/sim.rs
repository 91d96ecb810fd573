//! `atoll sim`: simulated hosts for measuring a cluster at fleet scale.

use crate::host_options::parse_labels;
use anyhow::bail;
use atoll_runtime::sim::{Line, SimConfig};
use atoll_sdk::cluster::Capacity;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// Runs N simulated hosts in this process. Each connects to NATS on its
/// own and speaks the host protocol (heartbeats, load samples, its
/// assignment) through the code `atoll host` uses, but runs nothing: an
/// assigned instance is `running` after --start-delay. It prints what the
/// fleet sees — hosts joined, assignments received, instances running,
/// each wave of changes until settled — and reads control lines on
/// standard input: `kill N` (the last N hosts die at once), `fail
/// APP[/SERVICE]` (its instances fail from now on), `heal APP[/SERVICE]`.
#[derive(clap::Args)]
pub struct Args {
    /// NATS server URLs, comma-separated
    #[arg(long, env = "ATOLL_NATS", value_name = "URL[,URL…]", default_value = "nats://127.0.0.1:4222", value_parser = crate::nats_urls::parse)]
    nats: String,
    /// How many hosts
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    hosts: u32,
    /// Hosts are named PREFIX1, PREFIX2, …; several sims with different
    /// prefixes may join one cluster
    #[arg(long, default_value = "sim-")]
    prefix: String,
    /// Labels of every host, K=V,…; a value a|b|c is one of them per host
    #[arg(long, value_name = "K=V,…", value_delimiter = ',')]
    labels: Vec<String>,
    /// Seed for what is drawn (labels with alternatives)
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this long (default: run until interrupted)
    #[arg(long = "for", value_name = "DURATION", value_parser = atoll_sdk::spec::parse_duration)]
    for_: Option<Duration>,
    /// How long an assigned instance is `starting` before it runs
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = atoll_sdk::spec::parse_duration)]
    start_delay: Duration,
    /// Instances of APP or APP/SERVICE fail instead of running (repeatable)
    #[arg(long, value_name = "APP[/SERVICE]")]
    fail: Vec<String>,
    /// CPUs each host offers
    #[arg(long, default_value_t = 4.0)]
    cpus: f64,
    /// Memory each host offers, in MiB
    #[arg(long, value_name = "MIB", default_value_t = 8192)]
    memory_mib: u64,
    /// Cluster name
    #[arg(long, default_value = "default")]
    cluster: String,
    /// NATS user credentials, for a NATS with accounts
    #[arg(long, env = "ATOLL_NATS_CREDS", value_name = "FILE")]
    nats_creds: Option<std::path::PathBuf>,
    /// Hosts connecting at once
    #[arg(long, value_name = "N", default_value_t = 100)]
    connecting: usize,
    /// Output: text lines, or one JSON object per line
    #[arg(short, long, value_enum, default_value_t = SimOutput::Text)]
    output: SimOutput,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum SimOutput {
    Text,
    Json,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if !(args.cpus > 0.0 && args.cpus <= 4096.0) {
        bail!("--cpus {}: expected a number of CPUs above 0", args.cpus);
    }
    let labels = parse_labels(&args.labels)?;
    let cfg = SimConfig {
        nats_url: args.nats,
        cluster: args.cluster,
        hosts: args.hosts as usize,
        prefix: args.prefix,
        labels,
        seed: args.seed,
        start_delay: args.start_delay,
        failing: args.fail,
        capacity: Capacity {
            memory: args.memory_mib.saturating_mul(1 << 20),
            cpus_milli: (args.cpus * 1000.0) as u32,
        },
        nats_creds: args.nats_creds,
        connecting: args.connecting,
    };
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<Line>();
    let (control_tx, control) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = stdin.next_line().await {
            if control_tx.send(line).is_err() {
                return;
            }
        }
    });
    let json = args.output == SimOutput::Json;
    let printing = tokio::spawn(async move {
        while let Some(line) = lines.recv().await {
            match json {
                true => match serde_json::to_string(&line) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("error: a report line: {e}"),
                },
                false => println!("{}", line.text()),
            }
        }
    });
    let until = async move {
        let run_for = async {
            match args.for_ {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = run_for => {}
            () = crate::signals::shutdown() => {}
        }
    };
    atoll_runtime::sim::run(cfg, until, lines_tx, control).await?;
    // The last line (done) is sent before `run` returns.
    let _ = tokio::time::timeout(Duration::from_secs(1), printing).await;
    Ok(())
}
