//! Which Compose files a verb reads, as `docker compose` finds them: each
//! `-f FILE` in order (later files override earlier ones; `-` is standard
//! input), else the first standard name here and its override file. The
//! files are read here, checked, and either kept as written or built into
//! one text (override files, `extends`, `include`, `env_file`).

use super::compose_variables::Variables;
use anyhow::Context;
use atoll_sdk::spec::{self, ComposeInput, Parsed, Project};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// `-f`, `--env-file` and `--profile`, for every verb that reads a file.
#[derive(clap::Args, Clone, Default)]
pub struct FileArgs {
    /// The Compose file; repeat it to merge override files in order (as
    /// docker compose does); `-` reads standard input. Default: the first
    /// of compose.yaml, compose.yml, docker-compose.yaml,
    /// docker-compose.yml here, with compose.override.yaml (or .yml) if
    /// present
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
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
}

/// The names `docker compose` looks for, in its order.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The override files read after the default file, when present.
const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// A Compose file is bigger than any reasonable app (the API refuses
/// large bodies too).
const MAX_FILE: u64 = 4 << 20;

/// The first of [`DEFAULT_FILES`] in the current folder.
pub fn default_file() -> Option<PathBuf> {
    DEFAULT_FILES
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The Compose files and what was found in them.
pub struct Loaded {
    /// The folder relative paths start from (the first file's).
    pub dir: PathBuf,
    /// The app name when the file has no `name`: the folder's.
    pub default_name: String,
    pub project: Project,
    pub parsed: Parsed,
    /// The variables that were set, with the values used.
    pub variables: BTreeMap<String, String>,
    /// The profiles active.
    pub profiles: Vec<String>,
}

/// The files are not a valid app: every error, with file and line. The
/// command line exits with code 3 for it.
#[derive(Debug)]
pub struct InvalidFile {
    pub names: String,
    pub errors: String,
}

impl std::fmt::Display for InvalidFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let InvalidFile { names, errors } = self;
        write!(f, "{names} is not a valid Compose file:\n  {errors}")
    }
}

impl std::error::Error for InvalidFile {}

impl FileArgs {
    /// The files given, or the defaults found here.
    fn chosen(&self) -> anyhow::Result<Vec<PathBuf>> {
        if !self.files.is_empty() {
            return Ok(self.files.clone());
        }
        let Some(first) = default_file() else {
            anyhow::bail!(
                "no Compose file here (looked for {}); name one with -f FILE",
                DEFAULT_FILES.join(", ")
            );
        };
        let over = OVERRIDE_FILES
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        Ok(std::iter::once(first).chain(over).collect())
    }

    /// Reads, merges and checks the files.
    pub fn load(&self) -> anyhow::Result<Loaded> {
        let files = self.chosen()?;
        let dir = match files.first() {
            Some(f) if f.as_os_str() != "-" => f
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut inputs = Vec::new();
        for f in &files {
            let (name, text) = if f.as_os_str() == "-" {
                let mut text = String::new();
                (std::io::stdin().take(MAX_FILE))
                    .read_to_string(&mut text)
                    .context("cannot read the Compose file from standard input")?;
                ("(standard input)".to_string(), text)
            } else {
                let text = read_file(f)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?;
                (f.display().to_string(), text)
            };
            inputs.push(ComposeInput {
                name,
                dir: dir.clone(),
                text,
            });
        }
        let names = inputs
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(" + ");
        let default_name = default_app_name(&dir);
        let variables = Variables::load(&dir, &self.env_files)?;
        let lookup = |name: &str| variables.lookup(name);
        let invalid = |errs: spec::SpecErrors| InvalidFile {
            names: names.clone(),
            errors: errs.to_string().replace('\n', "\n  "),
        };
        let project = spec::load_project(
            &inputs,
            &|p| read_file(p),
            &|p| super::project_files::list(p),
            &lookup,
            &self.profiles,
        )
        .map_err(invalid)?;
        let parsed = project
            .parse(&default_name, &lookup, &self.profiles)
            .map_err(invalid)?;
        Ok(Loaded {
            dir,
            default_name,
            project,
            parsed,
            variables: variables.used(),
            profiles: self.profiles.clone(),
        })
    }
}

/// A file named by a Compose file, bounded in size.
fn read_file(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    let read = file
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if read as u64 > MAX_FILE {
        return Err(format!("larger than {} MiB", MAX_FILE >> 20));
    }
    Ok(text)
}

/// Compose's default project name: the file's folder name, lowercased.
fn default_app_name(dir: &Path) -> String {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    abs.file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_else(|| "app".into())
}
