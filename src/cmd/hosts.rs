//! `atoll hosts`: the hosts of the cluster; `atoll hosts rm NAME` retires
//! one that is down; `cordon`, `drain` and `uncordon` say whether a host
//! takes new instances (as `docker node update --availability` and
//! `kubectl cordon/drain`).

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
    /// Place no new instance on a host; what it runs stays
    Cordon {
        /// The host's name
        name: String,
    },
    /// Move every instance off a host (each replacement ready before the
    /// old one stops, as a rolling update) and place nothing new there;
    /// waits until the host is empty. Services with named volumes stay
    /// (their data is on the host) unless `--volumes` says to move them
    Drain {
        /// The host's name
        name: String,
        /// Move services with named volumes too: each is stopped here and
        /// started on another host with an EMPTY volume (the data stays on
        /// this host's disk). Asks for confirmation unless `--yes`
        #[arg(long)]
        volumes: bool,
        /// Do not ask for confirmation (for scripts)
        #[arg(short, long, requires = "volumes")]
        yes: bool,
        /// Return at once instead of waiting for the host to be empty
        #[arg(long)]
        detach: bool,
        /// How long to wait, in seconds
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Let a cordoned or drained host take new instances again (nothing
    /// moves back by itself)
    Uncordon {
        /// The host's name
        name: String,
    },
}

/// `cordon`, `drain` and `uncordon`.
async fn set(client: &atoll_sdk::client::Client, action: &Action) -> anyhow::Result<()> {
    use atoll_sdk::protocol::Availability;
    let (name, availability) = match action {
        Action::Rm { .. } => return Ok(()),
        Action::Cordon { name } => (name, Availability::Cordoned),
        Action::Drain { name, .. } => (name, Availability::Draining),
        Action::Uncordon { name } => (name, Availability::Active),
    };
    let mut req = atoll_sdk::api::AvailabilityRequest {
        availability,
        volumes: false,
        dry_run: false,
    };
    if let Action::Drain {
        volumes: true, yes, ..
    } = action
    {
        req.volumes = true;
        let probe = atoll_sdk::api::AvailabilityRequest {
            dry_run: true,
            ..req.clone()
        };
        let found = client.set_availability(name, &probe).await?;
        if !found.volume_services.is_empty() {
            confirm_volume_move(name, &found.volume_services, *yes)?;
        }
    }
    let resp = client.set_availability(name, &req).await?;
    let Action::Drain {
        detach, timeout, ..
    } = action
    else {
        println!(
            "host {name} is {availability} ({} instance(s) on it)",
            resp.instances
        );
        return Ok(());
    };
    println!(
        "host {name} is draining: {} instance(s) to move",
        resp.instances
    );
    if *detach {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let mut last = resp.instances;
    loop {
        let host = (client.hosts().await?.into_iter()).find(|h| &h.name == name);
        let left = host.map_or(0, |h| h.instances);
        if left == 0 {
            println!("host {name} is drained");
            return Ok(());
        }
        if left != last {
            println!("host {name}: {left} instance(s) left");
            last = left;
        }
        if started.elapsed().as_secs() >= *timeout {
            let stay = if req.volumes {
                ""
            } else {
                "services with named volumes stay unless --volumes; "
            };
            anyhow::bail!(
                "host {name} still runs {left} instance(s) after {timeout}s ({stay}a replacement that fails stops the move: see atoll ps)"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Warns that the services' data stays behind; asks unless `yes`.
fn confirm_volume_move(host: &str, services: &[String], yes: bool) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    eprintln!(
        "warning: {} will stop on {host} and start on other hosts with an EMPTY volume; the data stays on {host}'s disk",
        services.join(", ")
    );
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("not moving volume services without confirmation: pass --yes");
    }
    eprint!("Move them? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        anyhow::bail!("drain of {host} cancelled: nothing changed");
    }
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    match &args.action {
        Some(Action::Rm { name }) => {
            client.remove_host(name).await?;
            println!("host {name} removed; its instances are placed on other hosts");
            return Ok(());
        }
        Some(action) => return set(&client, action).await,
        None => {}
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
                match h.availability {
                    atoll_sdk::protocol::Availability::Active => {
                        format!("{:?}", h.state).to_lowercase()
                    }
                    a => format!("{:?}, {a}", h.state).to_lowercase(),
                },
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
    let header = [
        "NAME",
        "STATE",
        "ADDRESS",
        "INSTANCES",
        "PLATFORM",
        "RESERVED",
        "SEEN",
        "LABELS",
    ];
    let wide = |h: &atoll_sdk::api::HostView| vec![h.version.clone()];
    output::table_or_wide(args.output, &header, rows, &hosts, (&["VERSION"], wide));
    Ok(())
}
