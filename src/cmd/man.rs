//! `atoll man --dir DIR`: writes the manual pages, generated from the
//! command definitions: `atoll.1` and one `atoll-VERB.1` per verb (and
//! `atoll-VERB-SUB.1` for their sub-verbs).

use anyhow::Context;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the pages (made if missing)
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot make {}", args.dir.display()))?;
    let cmd = crate::Cli::command();
    let n = write(&args.dir, cmd, "atoll")?;
    println!("{n} manual pages written to {}", args.dir.display());
    Ok(())
}

/// Writes the page of `cmd` (named `name`) and of its sub-commands.
fn write(dir: &Path, cmd: clap::Command, name: &str) -> anyhow::Result<usize> {
    let cmd = cmd.name(name.to_string());
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    let mut n = 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        n += write(dir, sub.clone(), &format!("{name}-{}", sub.get_name()))?;
    }
    Ok(n)
}
