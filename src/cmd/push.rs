//! `atoll push SOURCE REF`: publishes a Wasm component (a `.wasm` file) or
//! the image of an OCI image layout (a directory) to a registry, and
//! prints the pushed manifest digest.

use std::path::PathBuf;

use anyhow::Context as _;
use atoll_runtime::oci::push::{PushConfig, Pusher, insecure_registries_from_env, registry_of};

#[derive(clap::Args)]
pub struct Args {
    /// A Wasm component (.wasm file), or an OCI image layout directory
    /// holding one image (pushed as it is)
    source: PathBuf,
    /// Where to push: REGISTRY/REPOSITORY:TAG
    reference: String,
    /// Reach this registry over plain HTTP instead of TLS (also for every
    /// registry listed in ATOLL_INSECURE_REGISTRY, comma-separated)
    #[arg(long)]
    insecure: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = PushConfig {
        insecure_registries: insecure_registries_from_env(),
        ..PushConfig::default()
    };
    if args.insecure {
        config
            .insecure_registries
            .push(registry_of(&args.reference)?);
    }
    let pusher = Pusher::new(config);
    let meta = std::fs::metadata(&args.source)
        .with_context(|| format!("cannot read {}", args.source.display()))?;
    let pushed = if meta.is_dir() {
        pusher.push_layout(&args.source, &args.reference).await?
    } else {
        pusher.push_wasm_file(&args.source, &args.reference).await?
    };
    eprintln!(
        "pushed {} ({} blobs uploaded, {} already there)",
        pushed.reference, pushed.uploaded, pushed.existing
    );
    println!("{}", pushed.manifest_digest);
    Ok(())
}
