//! `atoll deploy -f FILE [--wait]`: checks the Compose file here (errors
//! name the path and line before anything is sent), uploads the local
//! components it names, and sends the file to the server.

use super::compose_variables::Variables;
use crate::output::ServerArg;
use anyhow::{Context, bail};
use atoll_sdk::api::DeployRequest;
use atoll_sdk::client::Client;
use atoll_sdk::digest::{self, WasmKind};
use atoll_sdk::spec::{self, Artifact, FileKind, FileSource};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The Compose file (default: the first of compose.yaml, compose.yml,
    /// docker-compose.yaml, docker-compose.yml here)
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// More variables for the file's `${VAR}`s (`KEY=value` lines), after
    /// the environment and `.env` beside the file; may be repeated
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Run the services of this profile too (services naming profiles run
    /// only when one is active; `*`: all); may be repeated. Default: the
    /// comma-separated COMPOSE_PROFILES
    #[arg(
        long = "profile",
        value_name = "NAME",
        env = "COMPOSE_PROFILES",
        value_delimiter = ','
    )]
    pub profiles: Vec<String>,
    #[command(flatten)]
    pub wait: WaitArg,
    #[command(flatten)]
    pub server: ServerArg,
}

/// The names `docker compose` looks for, in its order.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The first of [`DEFAULT_FILES`] in the current folder.
pub fn default_file() -> Option<PathBuf> {
    DEFAULT_FILES
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
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
    let client = args.server.client()?;
    let file = match args.file {
        Some(f) => f,
        None => default_file().ok_or_else(|| {
            anyhow::anyhow!(
                "no Compose file here (looked for {}); name one with -f FILE",
                DEFAULT_FILES.join(", ")
            )
        })?,
    };
    let (name, revision) = deploy_file(&client, &file, &args.env_files, &args.profiles).await?;
    args.wait.wait(&client, &name, revision).await
}

/// Deploys the file; the app's name and the revision now deployed.
pub async fn deploy_file(
    client: &Client,
    file: &Path,
    env_files: &[PathBuf],
    profiles: &[String],
) -> anyhow::Result<(String, u64)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let default_name = default_app_name(dir);
    let variables = Variables::load(dir, env_files)?;
    let lookup = |name: &str| variables.lookup(name);
    let parsed = spec::parse_with(&text, &default_name, &lookup, profiles).map_err(|errs| {
        anyhow::anyhow!(
            "{} is not a valid deploy file:\n  {}",
            file.display(),
            errs.to_string().replace('\n', "\n  ")
        )
    })?;
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
        compose: text,
        default_name,
        artifacts,
        secrets: file_values(dir, FileKind::Secret, &parsed.secrets)?,
        configs: file_values(dir, FileKind::Config, &parsed.configs)?,
        variables: variables.used(),
        profiles: profiles.to_vec(),
    };
    let resp = client.deploy(&req).await?;
    for w in &resp.warnings {
        eprintln!("warning: {w}");
    }
    if resp.unchanged {
        println!("app {} unchanged (revision {})", resp.name, resp.revision);
    } else {
        println!("app {} revision {} deployed", resp.name, resp.revision);
    }
    Ok((resp.name, resp.revision))
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

/// Compose's default project name: the file's folder name, lowercased.
fn default_app_name(dir: &Path) -> String {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    abs.file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_else(|| "app".into())
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
