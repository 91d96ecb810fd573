//! `atoll hosts`: the hosts of the cluster.

use crate::output::{self, Format, ServerArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArg,
    /// Output format
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let hosts = args.server.client()?.hosts().await?;
    if args.output == Format::Json {
        return output::json(&hosts);
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
