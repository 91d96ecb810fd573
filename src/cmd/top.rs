//! `atoll top`: the load of every service (replicas, requests/s, requests
//! in flight, p99, CPU, memory) and host, refreshed every second.

use crate::output::{self, Format, ServerArg};
use atoll_sdk::api::TopView;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArg,
    /// Only this app's services
    app: Option<String>,
    /// Print once and exit (json always prints once)
    #[arg(long)]
    once: bool,
    /// Seconds between refreshes
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Output format
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    if !args.interval.is_finite() {
        anyhow::bail!("--interval must be a number of seconds");
    }
    let every = Duration::from_secs_f64(args.interval.clamp(0.2, 3600.0));
    loop {
        let mut view = client.top().await?;
        if let Some(app) = &args.app {
            view.services.retain(|s| &s.app == app);
        }
        if args.output.structured() {
            return output::structured(args.output, &view);
        }
        let text = render(&view);
        if args.once {
            print!("{text}");
            return Ok(());
        }
        // Clear the screen and draw from the top, like top(1).
        print!("\x1b[H\x1b[2J{text}");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        tokio::time::sleep(every).await;
    }
}

fn render(view: &TopView) -> String {
    let rows: Vec<Vec<String>> = (view.services.iter())
        .map(|s| {
            vec![
                format!("{}/{}", s.app, s.service),
                format!("{}/{}", s.ready, s.replicas),
                format!("{:.1}", s.rps),
                format!("{:.1}", s.inflight),
                s.p99_ms.map_or("-".into(), |ms| format!("{ms}ms")),
                format!("{:.0}%", s.cpu_percent),
                mib(s.memory),
                s.autoscale.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = [
        "SERVICE",
        "READY",
        "REQ/S",
        "INFLIGHT",
        "P99",
        "CPU",
        "MEMORY",
        "AUTOSCALE",
    ];
    let mut out = output::table_text(&header, &rows);
    out.push('\n');
    let rows: Vec<Vec<String>> = (view.hosts.iter())
        .map(|h| {
            vec![
                h.name.clone(),
                h.state.clone(),
                h.instances.to_string(),
                h.cpu_percent.map_or("-".into(), |c| format!("{c:.0}%")),
                format!("{}/{}", mib(h.memory_used), mib(h.memory_total)),
            ]
        })
        .collect();
    out += &output::table_text(&["HOST", "STATE", "INSTANCES", "CPU", "MEMORY"], &rows);
    out
}

fn mib(bytes: u64) -> String {
    format!("{}MiB", bytes >> 20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::api::{HostTop, ServiceTop};

    #[test]
    fn services_then_hosts() {
        let view = TopView {
            services: vec![ServiceTop {
                app: "shop".into(),
                service: "api".into(),
                replicas: 3,
                ready: 2,
                rps: 12.34,
                inflight: 1.5,
                p99_ms: Some(25),
                cpu_percent: 40.0,
                memory: 64 << 20,
                autoscale: Some("1-6 on inflight 4".into()),
            }],
            hosts: vec![HostTop {
                name: "h1".into(),
                state: "ready".into(),
                cpu_percent: None,
                memory_used: 1 << 30,
                memory_total: 2 << 30,
                instances: 3,
            }],
        };
        let text = render(&view);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("SERVICE"), "{text}");
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "shop/api", "2/3", "12.3", "1.5", "25ms", "40%", "64MiB", "1-6", "on", "inflight",
                "4"
            ]
        );
        assert!(
            lines[4].starts_with("h1") && lines[4].contains("1024MiB/2048MiB"),
            "{text}"
        );
    }
}
