//! `atoll config [-f FILE]… [-o yaml|json] [--quiet]`: reads and checks
//! Compose files here, without a server (so CI can lint them), and prints
//! the app as atoll will run it: variables substituted, override files,
//! `extends`, `include` and `env_file` merged, defaults filled in. Every
//! warning goes to standard error with its file and line; an invalid file
//! exits with code 3 after listing every error.

use super::compose_files::FileArgs;
use crate::output;
use clap::ValueEnum;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub files: FileArgs,
    /// What to print: the normalised app as YAML or JSON, or (`compose`)
    /// the one Compose file the given files merge into, as sent to the server
    #[arg(short, long, value_enum, default_value = "yaml")]
    pub output: ConfigFormat,
    /// Print nothing but errors: the exit code says whether the files are valid
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ConfigFormat {
    Yaml,
    Json,
    Compose,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let loaded = args.files.load()?;
    if args.quiet {
        return Ok(());
    }
    for w in &loaded.parsed.warnings {
        eprintln!("warning: {w}");
    }
    match args.output {
        ConfigFormat::Yaml => output::yaml(&loaded.parsed.app),
        ConfigFormat::Json => output::json(&loaded.parsed.app),
        ConfigFormat::Compose => {
            print!("{}", loaded.project.text);
            Ok(())
        }
    }
}
