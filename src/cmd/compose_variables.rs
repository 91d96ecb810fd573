//! Where a deploy finds the values of a Compose file's variables
//! (`${VAR}`): the environment first, then `.env` beside the file, then
//! each `--env-file` in the order given. The values used are sent with
//! the file, so the server substitutes exactly what was found here.

use anyhow::Context;
use atoll_sdk::spec::parse_dotenv;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct Variables {
    /// `.env`, then the `--env-file`s.
    files: Vec<BTreeMap<String, String>>,
    used: RefCell<BTreeMap<String, String>>,
}

fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn read(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_dotenv(&text, &environment).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

impl Variables {
    /// `dir`: the Compose file's folder (an absent `.env` there is no
    /// error; an absent `--env-file` is).
    pub fn load(dir: &Path, env_files: &[PathBuf]) -> anyhow::Result<Variables> {
        let dotenv = dir.join(".env");
        let mut files = Vec::new();
        if dotenv.is_file() {
            files.push(read(&dotenv)?);
        }
        for f in env_files {
            files.push(read(f).context("--env-file")?);
        }
        Ok(Variables {
            files,
            used: RefCell::default(),
        })
    }

    /// The value of `name`, noted as used when set.
    pub fn lookup(&self, name: &str) -> Option<String> {
        let value =
            environment(name).or_else(|| self.files.iter().find_map(|f| f.get(name).cloned()));
        if let Some(v) = &value {
            self.used.borrow_mut().insert(name.to_string(), v.clone());
        }
        value
    }

    /// The variables looked up that were set, with their values.
    pub fn used(self) -> BTreeMap<String, String> {
        self.used.into_inner()
    }
}
