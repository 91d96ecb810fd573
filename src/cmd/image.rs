//! `atoll image`: images kept on this machine for a host, without a
//! registry. `load` imports an OCI image layout (directory or tar) or a
//! `docker save` archive into a host's blob store and records its names,
//! which the host then runs without asking any registry (air-gapped
//! sites); `ls` lists those names.

use std::path::PathBuf;

use atoll_runtime::host_info;
use atoll_runtime::oci::kind::ArtifactKind;
use atoll_runtime::oci::layout::{self, LoadOptions, RefIndex};
use atoll_runtime::oci::store::BlobStore;
use serde::Serialize;

use crate::host_options::default_data_dir;
use crate::output::{self, Format};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Import images from an OCI image layout (directory or tar, gzipped or
    /// not) or a `docker save` archive into a host's store
    Load(LoadArgs),
    /// List the images loaded into a host's store
    Ls(LsArgs),
}

/// Which host's store: `--data-dir`, else the default data dir of
/// `--host` (default: this machine's hostname), as `atoll host` uses.
#[derive(clap::Args)]
struct StoreArgs {
    /// The host whose store to use (default: the machine's hostname)
    #[arg(long, conflicts_with = "data_dir")]
    host: Option<String>,
    /// The host's data directory (as given to `atoll host --data-dir`)
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl StoreArgs {
    fn open(&self) -> anyhow::Result<BlobStore> {
        let data_dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => {
                let host = self
                    .host
                    .clone()
                    .unwrap_or_else(host_info::machine_hostname);
                default_data_dir().join("hosts").join(host)
            }
        };
        Ok(BlobStore::open(data_dir.join("blobs"))?)
    }
}

#[derive(clap::Args)]
struct LoadArgs {
    /// The layout directory, or the archive
    source: PathBuf,
    /// Record the image under this reference instead of the names the
    /// source gives (the source must hold one image)
    #[arg(long, value_name = "REF")]
    tag: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Output format
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

#[derive(clap::Args)]
struct LsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Output format
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
    /// Only the references, one per line (for scripts)
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Load(args) => load(args).await,
        Command::Ls(args) => ls(args).await,
    }
}

#[derive(Serialize)]
struct Row {
    reference: String,
    manifest_digest: String,
    kind: &'static str,
    layers: usize,
    size: u64,
}

fn kind_name(kind: &ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::Wasm { .. } => "wasm",
        ArtifactKind::Container => "container",
    }
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let store = args.store.open()?;
    let options = LoadOptions {
        tag: args.tag,
        ..LoadOptions::default()
    };
    let loaded = layout::load(&store, &args.source, &options).await?;
    let rows: Vec<Row> = loaded
        .iter()
        .flat_map(|image| {
            image.references.iter().map(|reference| Row {
                reference: reference.clone(),
                manifest_digest: image.manifest_digest.clone(),
                kind: kind_name(&image.kind),
                layers: image.layers,
                size: image.size,
            })
        })
        .collect();
    print_rows(&rows, args.output)
}

async fn ls(args: LsArgs) -> anyhow::Result<()> {
    let store = args.store.open()?;
    let mut rows = Vec::new();
    for entry in RefIndex::new(&store).list()? {
        let summary = layout::describe(&store, &entry.manifest_digest).await;
        let (kind, layers, size) = match &summary {
            Some(s) if !s.complete => ("incomplete", s.layers, s.size),
            Some(s) => (
                s.kind.as_ref().map_or("invalid", kind_name),
                s.layers,
                s.size,
            ),
            None => ("missing", 0, 0),
        };
        rows.push(Row {
            reference: entry.reference,
            manifest_digest: entry.manifest_digest,
            kind,
            layers,
            size,
        });
    }
    if args.quiet {
        rows.iter().for_each(|r| println!("{}", r.reference));
        return Ok(());
    }
    print_rows(&rows, args.output)
}

fn print_rows(rows: &[Row], format: Format) -> anyhow::Result<()> {
    if format.structured() {
        return output::structured(format, &rows);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.reference.clone(),
                short_digest(&row.manifest_digest),
                row.kind.to_owned(),
                row.layers.to_string(),
                human_size(row.size),
            ]
        })
        .collect();
    output::table(&["REFERENCE", "DIGEST", "KIND", "LAYERS", "SIZE"], &table);
    Ok(())
}

/// `sha256:0123456789ab`: enough to tell images apart in a table.
fn short_digest(digest: &str) -> String {
    digest.chars().take("sha256:".len() + 12).collect()
}

/// `512 B`, `3.2 kB`, `41.0 MB`, `1.2 GB`.
fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.1} GB", b / 1e9),
    }
}
