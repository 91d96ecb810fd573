//! `atoll scale APP/SERVICE=N`, `atoll restart APP[/SERVICE]`,
//! `atoll stop APP` and `atoll start APP`: the app's current revision
//! changed on the server, as a new revision (`atoll history` lists it;
//! `atoll rollback` undoes it; the next `atoll deploy` of the file sets
//! what the file says).

use super::deploy::WaitArg;
use crate::output::ServerArg;
use anyhow::{Context, bail};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ScaleArgs {
    /// `APP/SERVICE=N`, one or more
    #[arg(required = true)]
    targets: Vec<String>,
    #[command(flatten)]
    wait: WaitArg,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(clap::Args)]
pub struct RestartArgs {
    /// `APP`, or `APP/SERVICE` for one service: each instance is replaced
    /// as an update replaces it (its update_config), without downtime
    target: String,
    #[command(flatten)]
    wait: WaitArg,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(clap::Args)]
pub struct StopArgs {
    /// The app
    app: String,
    #[command(flatten)]
    wait: WaitArg,
    #[command(flatten)]
    server: ServerArg,
}

/// `APP/SERVICE=N`.
fn parse_scale(text: &str) -> anyhow::Result<(&str, &str, u32)> {
    let usage = || format!("expected APP/SERVICE=N, got {text:?}");
    let (target, n) = text.split_once('=').with_context(usage)?;
    let (app, service) = target.split_once('/').with_context(usage)?;
    if app.is_empty() || service.is_empty() {
        bail!(usage());
    }
    let n = (n.trim().parse::<u32>())
        .with_context(|| format!("{text:?}: the replica count must be a whole number"))?;
    Ok((app, service, n))
}

pub async fn scale(args: ScaleArgs) -> anyhow::Result<()> {
    let targets = (args.targets.iter())
        .map(|t| parse_scale(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let client = args.server.client()?;
    let mut last = Vec::new();
    for (app, service, n) in targets {
        let done = client.scale(app, service, n).await?;
        match done.unchanged {
            true => println!("{app}/{service} already has {n} replica(s)"),
            false => println!(
                "app {app} revision {}: {service} scaled to {n}",
                done.revision
            ),
        }
        last.retain(|(a, _): &(String, u64)| a != app);
        last.push((app.to_string(), done.revision));
    }
    for (app, revision) in last {
        args.wait.wait(&client, &app, revision).await?;
    }
    Ok(())
}

pub async fn restart(args: RestartArgs) -> anyhow::Result<()> {
    let (app, service) = match args.target.split_once('/') {
        Some((a, s)) => (a, Some(s)),
        None => (args.target.as_str(), None),
    };
    let client = args.server.client()?;
    let done = client.restart(app, service).await?;
    let what = service.map_or("every service".to_string(), |s| s.to_string());
    println!(
        "app {app} revision {}: {what} restarting (instances replaced one by one)",
        done.revision
    );
    args.wait.wait(&client, app, done.revision).await
}

pub async fn stop(args: StopArgs) -> anyhow::Result<()> {
    stop_start(args, true).await
}

pub async fn start(args: StopArgs) -> anyhow::Result<()> {
    stop_start(args, false).await
}

async fn stop_start(args: StopArgs, stop: bool) -> anyhow::Result<()> {
    let app = args.app.as_str();
    let client = args.server.client()?;
    let done = client.stop_start(app, stop).await?;
    let (verb, state) = if stop {
        ("stopping", "stopped")
    } else {
        ("starting", "started")
    };
    match done.unchanged {
        true => println!("app {app} is already {state}"),
        false => println!("app {app} revision {}: {verb}", done.revision),
    }
    if !stop {
        return args.wait.wait(&client, app, done.revision).await;
    }
    if !args.wait.wait {
        return Ok(());
    }
    // Stopped: no instance left.
    let limit = Duration::from_secs(args.wait.timeout);
    let started = Instant::now();
    loop {
        let left = client.instances(Some(app)).await?.len();
        if left == 0 {
            println!("{app}: stopped");
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("app {app}: {left} instance(s) still stopping after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_targets_name_app_service_and_count() {
        assert_eq!(parse_scale("shop/web=3").unwrap(), ("shop", "web", 3));
        for bad in [
            "shop=3",
            "shop/web",
            "/web=1",
            "shop/=1",
            "shop/web=-1",
            "shop/web=x",
        ] {
            assert!(parse_scale(bad).is_err(), "{bad}");
        }
    }
}
