//! `atoll`: the command line of the atoll orchestrator. Each verb lives in
//! its own file under `cmd/` and is a thin layer over the libraries.

mod cmd;
mod context;
mod host_options;
mod nats_child;
mod nats_urls;
mod output;
mod signals;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "atoll",
    version,
    about = "A lightweight orchestrator for Wasm components and containers on edge and cloud hosts",
    after_help = EXIT_CODES
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a whole cluster on this machine (NATS, server, one host) and deploy a Compose file
    Up(cmd::up::Args),
    /// Run the control plane
    Server(cmd::server::Args),
    /// The cluster's identity: `atoll cluster init --dir DIR`
    Cluster(cmd::cluster::Args),
    /// API tokens: create, ls, revoke
    Token(cmd::token::Args),
    /// Run a host agent on this machine
    Host(cmd::host::Args),
    /// Deploy a Compose file (a new revision of its app)
    Deploy(cmd::deploy::Args),
    /// Check Compose files and print the app they describe (offline: no server needed)
    Config(cmd::config::Args),
    /// List apps
    Ls(cmd::ls::Args),
    /// List instances
    Ps(cmd::ps::Args),
    /// List hosts
    Hosts(cmd::hosts::Args),
    /// List the control-plane servers and which one leads
    Servers(cmd::servers::Args),
    /// Remove an app and stop its instances
    Rm(cmd::rm::Args),
    /// An app's revisions
    History(cmd::history::Args),
    /// Deploy an earlier revision of an app (or of one service) again; drop a service's canary
    Rollback(cmd::rollback::Args),
    /// Make a service's canary its version
    Promote(cmd::promote::Args),
    /// Set services' replica counts: atoll scale APP/SERVICE=N…
    Scale(cmd::operate::ScaleArgs),
    /// Replace every instance of an app (or of one service), without downtime
    Restart(cmd::operate::RestartArgs),
    /// Stop an app's instances, keeping the app (atoll start runs them again)
    Stop(cmd::operate::StopArgs),
    /// Start a stopped app's instances again
    Start(cmd::operate::StopArgs),
    /// Write the cluster's desired state (apps and their revisions) as JSON to stdout
    Export(cmd::export::Args),
    /// Restore a state written by `atoll export`
    Import(cmd::import::Args),
    /// Follow cluster events
    Events(cmd::events::Args),
    /// Live load per service and host: replicas, requests/s, p99, CPU, memory
    Top(cmd::top::Args),
    /// Publish a Wasm component or an OCI image layout to a registry
    Push(cmd::push::Args),
    /// Load images into a host's store without a registry, and list them
    Image(cmd::image::Args),
    /// Show the output of an app's instances
    Logs(cmd::logs::Args),
    /// Everything the server knows about an app, an instance or a host (-o json|yaml)
    Inspect(cmd::inspect::Args),
    /// Run a command in a running container instance (exits with its status)
    Exec(cmd::exec::Args),
    /// This command line's version and the server's
    Version(cmd::version::Args),
    /// Print a shell completion script: atoll completion bash|zsh|fish
    Completion(cmd::completion::Args),
    /// Write the manual pages (atoll.1, atoll-deploy.1, …)
    Man(cmd::man::Args),
    /// Simulated hosts that speak the host protocol and run nothing, for measuring a cluster at fleet scale
    Sim(cmd::sim::Args),
}

fn main() -> std::process::ExitCode {
    // TLS clients (the API client, the registry puller) share one rustls
    // build without a default crypto provider: pick ring, once, up front.
    atoll_runtime::install_crypto_provider();
    let cli = Cli::parse();
    init_logging(matches!(
        cli.command,
        Command::Up(_) | Command::Server(_) | Command::Host(_) | Command::Sim(_)
    ));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(a) => cmd::up::run(a).await,
            Command::Server(a) => cmd::server::run(a).await,
            Command::Cluster(a) => cmd::cluster::run(a).await,
            Command::Token(a) => cmd::token::run(a).await,
            Command::Host(a) => cmd::host::run(a).await,
            Command::Deploy(a) => cmd::deploy::run(a).await,
            Command::Config(a) => cmd::config::run(a).await,
            Command::Ls(a) => cmd::ls::run(a).await,
            Command::Ps(a) => cmd::ps::run(a).await,
            Command::Hosts(a) => cmd::hosts::run(a).await,
            Command::Servers(a) => cmd::servers::run(a).await,
            Command::History(a) => cmd::history::run(a).await,
            Command::Rollback(a) => cmd::rollback::run(a).await,
            Command::Promote(a) => cmd::promote::run(a).await,
            Command::Scale(a) => cmd::operate::scale(a).await,
            Command::Restart(a) => cmd::operate::restart(a).await,
            Command::Stop(a) => cmd::operate::stop(a).await,
            Command::Start(a) => cmd::operate::start(a).await,
            Command::Rm(a) => cmd::rm::run(a).await,
            Command::Export(a) => cmd::export::run(a).await,
            Command::Import(a) => cmd::import::run(a).await,
            Command::Events(a) => cmd::events::run(a).await,
            Command::Top(a) => cmd::top::run(a).await,
            Command::Push(a) => cmd::push::run(a).await,
            Command::Image(a) => cmd::image::run(a).await,
            Command::Logs(a) => cmd::logs::run(a).await,
            Command::Inspect(a) => cmd::inspect::run(a).await,
            Command::Exec(a) => cmd::exec::run(a).await,
            Command::Version(a) => cmd::version::run(a).await,
            Command::Completion(a) => cmd::completion::run(a),
            Command::Man(a) => cmd::man::run(a),
            Command::Sim(a) => cmd::sim::run(a).await,
        }
    });
    // Background tasks (watches, listeners) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `atoll exec`: the command's own status, said by the command.
        Err(e) if e.is::<cmd::exec::CommandStatus>() => {
            let code = e
                .downcast_ref::<cmd::exec::CommandStatus>()
                .map_or(1, |s| s.0);
            std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            exit_code(&e)
        }
    }
}

/// The exit codes `atoll --help` lists.
const EXIT_CODES: &str =
    "Exit codes: 0 success, 1 failure, 2 usage error, 3 invalid Compose file, 4 server unreachable";

fn exit_code(e: &anyhow::Error) -> std::process::ExitCode {
    for cause in e.chain() {
        if cause.is::<cmd::compose_files::InvalidFile>() {
            return std::process::ExitCode::from(3);
        }
        if let Some(atoll_sdk::client::ClientError::Unreachable { .. }) = cause.downcast_ref() {
            return std::process::ExitCode::from(4);
        }
    }
    std::process::ExitCode::FAILURE
}

/// Daemons log at info by default; client verbs only say what went wrong.
fn init_logging(daemon: bool) {
    let default = if daemon {
        "info,async_nats=warn"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ATOLL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
