//! `atoll deploy -f FILE [--wait]`: checks the Compose file here (errors
//! name the path and line before anything is sent), uploads the local
//! components it names, and sends the file to the server.

use super::compose_files::{FileArgs, Loaded};
use crate::output::ServerArg;
use anyhow::{Context, bail};
use atoll_sdk::api::DeployRequest;
use atoll_sdk::client::Client;
use atoll_sdk::digest::{self, WasmKind};
use atoll_sdk::spec::{self, Artifact, FileKind, FileSource};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub files: FileArgs,
    /// Show what would change on the cluster (services added, changed with
    /// the settings that differ, removed; instances to start and stop) and
    /// change nothing. Local components are uploaded (by digest) to be
    /// compared
    #[arg(long, conflicts_with = "wait")]
    pub dry_run: bool,
    #[command(flatten)]
    pub wait: WaitArg,
    #[command(flatten)]
    pub server: ServerArg,
}

/// `--wait` and `--timeout`, for every verb that makes a revision.
#[derive(clap::Args)]
pub struct WaitArg {
    /// Wait until every service runs the new revision (exit non-zero if it
    /// fails, cannot be placed, or its update stops or is rolled back)
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, in seconds
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

impl WaitArg {
    /// With `--wait`, [`wait_running`] for `revision` of `app`.
    pub async fn wait(&self, client: &Client, app: &str, revision: u64) -> anyhow::Result<()> {
        if !self.wait {
            return Ok(());
        }
        wait_running(client, app, revision, Duration::from_secs(self.timeout)).await
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let loaded = args.files.load()?;
    let client = args.server.client()?;
    if args.dry_run {
        return dry_run(&client, loaded).await;
    }
    let (name, revision) = deploy_loaded(&client, loaded).await?;
    args.wait.wait(&client, &name, revision).await
}

/// Deploys the files; the app's name and the revision now deployed.
pub async fn deploy_file(client: &Client, files: &FileArgs) -> anyhow::Result<(String, u64)> {
    deploy_loaded(client, files.load()?).await
}

/// `--dry-run`: prints the server's plan for the files.
async fn dry_run(client: &Client, loaded: Loaded) -> anyhow::Result<()> {
    let built = loaded.project.built;
    let local = loaded.parsed.warnings.clone();
    let mut req = request(client, loaded).await?;
    req.dry_run = true;
    let plan = client.deploy_plan(&req).await?;
    print_warnings(built, &local, &plan.warnings);
    match plan.current_revision {
        0 => println!(
            "app {} is new: deploying would start it (dry run: nothing changed)",
            plan.app
        ),
        r => println!(
            "app {} revision {r}: deploying would make revision {}{} (dry run: nothing changed)",
            plan.app,
            r + 1,
            if plan.stopped {
                " and start the stopped app"
            } else {
                ""
            }
        ),
    }
    let rows: Vec<Vec<String>> = (plan.services.iter())
        .map(|s| {
            vec![
                s.name.clone(),
                s.change.clone(),
                s.fields.join(", "),
                s.start.to_string(),
                s.stop.to_string(),
            ]
        })
        .collect();
    crate::output::table(&["SERVICE", "CHANGE", "FIELDS", "START", "STOP"], &rows);
    Ok(())
}

async fn deploy_loaded(client: &Client, loaded: Loaded) -> anyhow::Result<(String, u64)> {
    let built = loaded.project.built;
    let local = loaded.parsed.warnings.clone();
    let req = request(client, loaded).await?;
    let resp = client.deploy(&req).await?;
    print_warnings(built, &local, &resp.warnings);
    if resp.unchanged {
        println!("app {} unchanged (revision {})", resp.name, resp.revision);
    } else {
        println!("app {} revision {} deployed", resp.name, resp.revision);
    }
    Ok((resp.name, resp.revision))
}

/// A built text's lines are not the user's: the warnings found here
/// (`local`) name the files; the server's own are shown for a file as
/// written.
fn print_warnings(built: bool, local: &[String], server: &[String]) {
    for w in if built { local } else { server } {
        eprintln!("warning: {w}");
    }
}

/// The deploy request for the files, their components uploaded.
async fn request(client: &Client, loaded: Loaded) -> anyhow::Result<DeployRequest> {
    let Loaded {
        dir,
        default_name,
        project,
        parsed,
        variables,
        profiles,
        ..
    } = loaded;
    let dir = dir.as_path();
    // The files shipped from the project folder were read with the
    // project (their `file:` is for the reader).
    let declared_configs: BTreeMap<String, FileSource> = (parsed.configs.iter())
        .filter(|(name, _)| !project.bundle.contains_key(*name))
        .map(|(name, source)| (name.clone(), source.clone()))
        .collect();
    let mut artifacts = BTreeMap::new();
    for svc in parsed.app.services.values() {
        let canary = svc.canary.as_ref().map(|k| &k.artifact);
        for artifact in std::iter::once(&svc.artifact).chain(canary) {
            if let Artifact::Component(path) = artifact
                && !artifacts.contains_key(path)
            {
                let digest = upload_component(client, dir, &svc.name, path).await?;
                artifacts.insert(path.clone(), digest);
            }
        }
    }
    let req = DeployRequest {
        compose: project.text,
        default_name,
        artifacts,
        secrets: file_values(dir, FileKind::Secret, &parsed.secrets)?,
        configs: (file_values(dir, FileKind::Config, &declared_configs)?)
            .into_iter()
            .chain(project.bundle)
            .collect(),
        variables,
        profiles,
        dry_run: false,
    };
    Ok(req)
}

/// The values of the top-level `secrets:` or `configs:` read here:
/// `file:` relative to the Compose file's folder, `environment:` from this
/// process's environment (`content:` travels in the text).
fn file_values(
    dir: &Path,
    kind: FileKind,
    declared: &BTreeMap<String, FileSource>,
) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for (name, source) in declared {
        let at = format!("{}.{name}", kind.key());
        let value =
            match source {
                FileSource::File(path) => {
                    let full = dir.join(path);
                    std::fs::read(&full).map_err(|e| {
                        anyhow::anyhow!("{at}.file: cannot read {path} ({}): {e}", full.display())
                    })?
                }
                FileSource::Environment(var) => std::env::var_os(var)
                    .map(|v| v.into_encoded_bytes())
                    .ok_or_else(|| anyhow::anyhow!("{at}.environment: {var} is not set"))?,
                FileSource::Content(_) => continue,
            };
        if value.len() > spec::MAX_FILE_VALUE {
            bail!(
                "{at}: {} bytes is more than the {} KiB a {} may hold",
                value.len(),
                spec::MAX_FILE_VALUE / 1024,
                kind.noun()
            );
        }
        out.insert(name.clone(), value);
    }
    Ok(out)
}

async fn upload_component(
    client: &Client,
    dir: &Path,
    service: &str,
    path: &str,
) -> anyhow::Result<String> {
    let at = format!("services.{service}.x-atoll.component");
    let full = dir.join(path);
    let bytes = std::fs::read(&full)
        .map_err(|e| anyhow::anyhow!("{at}: cannot read {path} ({}): {e}", full.display()))?;
    match digest::wasm_kind(&bytes) {
        WasmKind::Component => {}
        WasmKind::CoreModule => bail!(
            "{at}: {path} is a core Wasm module, not a component: build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
        ),
        WasmKind::NotWasm => bail!("{at}: {path} is not a WebAssembly file"),
    }
    let digest = digest::sha256(&bytes);
    client
        .upload_artifact(&digest, bytes)
        .await
        .with_context(|| format!("{at}: uploading {path}"))?;
    Ok(digest)
}

/// Polls the app until all its services run `revision`, printing progress
/// (ready instances, and the rolling update's steps); fails when the app
/// fails, cannot be placed, its update stops or is rolled back, or the
/// timeout passes.
pub async fn wait_running(
    client: &Client,
    name: &str,
    revision: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = String::new();
    // A just-deployed revision needs a moment before "pending" means stuck.
    let settle = Duration::from_secs(2);
    loop {
        let app = client.app(name).await?;
        if app.revision > revision {
            let why = app
                .update
                .unwrap_or_else(|| "a newer revision was deployed".into());
            bail!(
                "app {name} revision {revision} did not finish: revision {} replaced it ({why})",
                app.revision
            );
        }
        let mut progress = app
            .services
            .iter()
            .map(|s| format!("{} {}/{}", s.name, s.running, s.desired))
            .collect::<Vec<_>>()
            .join(", ");
        progress.push_str(" ready");
        if let Some(update) = &app.update {
            progress.push_str(&format!(" ({update})"));
        }
        if progress != last {
            println!("{name}: {progress}");
            last = progress;
        }
        match app.status.as_str() {
            "paused" => bail!(
                "app {name}: the update stopped: {}",
                app.update.unwrap_or_default()
            ),
            "running" => {
                println!("app {name} is running (revision {})", app.revision);
                return Ok(());
            }
            "failed" | "degraded" | "pending" if started.elapsed() > settle => {
                bail!(
                    "app {name} is {}: {}",
                    app.status,
                    app.message.unwrap_or_default()
                )
            }
            _ => {}
        }
        if started.elapsed() > timeout {
            bail!(
                "app {name} is not running after {}s ({}){}",
                timeout.as_secs(),
                app.status,
                app.message.map(|m| format!(": {m}")).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
