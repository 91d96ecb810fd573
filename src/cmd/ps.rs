//! `atoll ps [APP]`: instances, where they run, and their state.

use crate::output::{self, Format, ServerArg};

#[derive(clap::Args)]
pub struct Args {
    /// Only this app's instances
    app: Option<String>,
    #[command(flatten)]
    server: ServerArg,
    /// Output format
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
    /// Only the ids, one per line (for scripts)
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let instances = args.server.client()?.instances(args.app.as_deref()).await?;
    if args.quiet {
        instances.iter().for_each(|x| println!("{}", x.id));
        return Ok(());
    }
    if args.output.structured() {
        return output::structured(args.output, &instances);
    }
    let rows: Vec<Vec<String>> = instances
        .iter()
        .map(|i| {
            vec![
                i.app.clone(),
                if i.canary {
                    format!("{} (canary)", i.service)
                } else {
                    i.service.clone()
                },
                i.id.clone(),
                i.host.clone(),
                match (i.state, i.pull) {
                    (atoll_sdk::cluster::InstanceState::Pulling, Some(p)) => {
                        format!("pulling {}", output::progress(p.done, p.total))
                    }
                    // Its host is silent: what it last said.
                    (state, _) if i.unconfirmed => format!("{state} (unconfirmed)"),
                    (state, _) => match i.health {
                        // `running (starting)`, as Docker shows `Up (health: starting)`.
                        Some(h) => format!("{state} ({})", h.as_str()),
                        None => state.to_string(),
                    },
                },
                ports(&i.ports),
                i.revision.to_string(),
                i.restarts.to_string(),
                output::age(i.since_ms),
                i.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = [
        "APP", "SERVICE", "ID", "HOST", "STATE", "PORTS", "REV", "RESTARTS", "AGE", "REASON",
    ];
    let wide = |i: &atoll_sdk::api::InstanceView| {
        vec![
            i.ready.to_string(),
            i.attempt.to_string(),
            i.replaces.clone().unwrap_or_else(|| "-".into()),
        ]
    };
    let more = ["READY", "ATTEMPT", "REPLACES"];
    output::table_or_wide(args.output, &header, rows, &instances, (&more, wide));
    Ok(())
}

/// `30001->80, 8080->8080`, as `docker ps` shows them.
fn ports(ports: &[atoll_sdk::spec::PortMapping]) -> String {
    let all: Vec<String> = (ports.iter())
        .map(|p| format!("{}->{}", p.published, p.target))
        .collect();
    all.join(", ")
}
