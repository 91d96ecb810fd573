//! `atoll hosts`: the hosts of the cluster; `atoll hosts rm NAME` retires
//! one that is down.

use crate::output::{self, Format, ServerArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArg,
    /// Output format
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
    /// Only the names, one per line (for scripts)
    #[arg(short, long)]
    quiet: bool,
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Retire a host that is down for good: what ran there is placed on
    /// other hosts, services with named volumes too (they start from an
    /// empty volume; the data stays on the retired host's disk)
    Rm {
        /// The host's name (see `atoll hosts`)
        name: String,
    },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    if let Some(Action::Rm { name }) = &args.action {
        client.remove_host(name).await?;
        println!("host {name} removed; its instances are placed on other hosts");
        return Ok(());
    }
    let hosts = client.hosts().await?;
    if args.quiet {
        hosts.iter().for_each(|x| println!("{}", x.name));
        return Ok(());
    }
    if args.output.structured() {
        return output::structured(args.output, &hosts);
    }
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            let labels = h
                .labels
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "arch" | "os" | "hostname"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            vec![
                h.name.clone(),
                format!("{:?}", h.state).to_lowercase(),
                h.address.clone(),
                h.instances.to_string(),
                format!("{}/{}", h.arch, h.os),
                format!(
                    "{:.1}/{} cpu, {}/{} MiB",
                    h.allocated.cpus_milli as f64 / 1000.0,
                    h.capacity.cpus_milli / 1000,
                    h.allocated.memory >> 20,
                    h.capacity.memory >> 20
                ),
                output::age(h.last_seen_ms),
                labels,
            ]
        })
        .collect();
    output::table(
        &[
            "NAME",
            "STATE",
            "ADDRESS",
            "INSTANCES",
            "PLATFORM",
            "RESERVED",
            "SEEN",
            "LABELS",
        ],
        &rows,
    );
    Ok(())
}
