//! Top-level `include`: other Compose files whose services, volumes,
//! secrets and configs join this app, each read as a project of its own
//! (its relative paths start from its folder, or `project_directory`). A
//! name defined both here and in an included file is an error, as in
//! Compose: include does not merge. An entry's `env_file` gives the
//! included files' variables (they win over the environment's and the
//! including project's: see docs/compose.md).

use super::Loader;
use super::tree::{Item, Origin, Value};
use crate::spec::parse_dotenv;
use std::collections::BTreeMap;

/// The top-level sections an included file brings in.
const SECTIONS: [&str; 5] = ["services", "volumes", "secrets", "configs", "networks"];

pub(super) fn apply(loader: &mut Loader, root: &mut Item, depth: usize) {
    let Some(include) = root.map_mut().and_then(|m| m.remove("include")) else {
        return;
    };
    let items = match include.item.value {
        Value::Seq(items) => items,
        _ if include.item.is_null() => return,
        _ => {
            let m = format!(
                "expected a list of files, found {}",
                include.item.describe()
            );
            loader.error(include.item.at, "include", m);
            return;
        }
    };
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("include[{i}]");
        if depth >= super::MAX_DEPTH {
            let m = format!(
                "included more than {} deep (does a file include itself?)",
                super::MAX_DEPTH
            );
            loader.error(item.at, &path, m);
            return;
        }
        let Some(Entry {
            files,
            dir,
            env_files,
        }) = entry(loader, &path, &item)
        else {
            continue;
        };
        let Some(vars) = variables(loader, &path, &env_files) else {
            continue;
        };
        let outer = std::mem::replace(&mut loader.overlay, vars);
        let mut trees = Vec::new();
        for f in &files {
            if let Some((_, tree)) = loader.load_relative(item.at, &path, f, dir.as_deref()) {
                trees.push(tree);
            }
        }
        if trees.len() != files.len() {
            loader.overlay = outer;
            continue;
        }
        // Files the included ones extend take its variables too.
        let included = loader.project(trees, depth + 1);
        loader.overlay = outer;
        add(loader, root, included, &path, &files.join(", "));
    }
}

/// One `include` entry.
struct Entry {
    files: Vec<String>,
    /// Its `project_directory`.
    dir: Option<String>,
    /// Its `env_file`s, where each was written.
    env_files: Vec<(String, Origin)>,
}

/// The variables an entry's `env_file`s give (later files win), on top of
/// those of the include around it; `None` when one cannot be read.
fn variables(
    loader: &mut Loader,
    path: &str,
    env_files: &[(String, Origin)],
) -> Option<BTreeMap<String, String>> {
    let mut vars = loader.overlay.clone();
    for (file, at) in env_files {
        let full = loader.dir(at.file).join(file);
        let text = match (loader.read)(&full) {
            Ok(t) => t,
            Err(e) => {
                loader.error(*at, path, format!("env_file: cannot read {file}: {e}"));
                return None;
            }
        };
        let outer = |name: &str| vars.get(name).cloned().or_else(|| (loader.lookup)(name));
        match parse_dotenv(&text, &outer) {
            Ok(values) => vars.extend(values),
            Err(e) => {
                let m = format!("env_file: {file} line {}: {}", e.line, e.message);
                loader.error(*at, path, m);
                return None;
            }
        }
    }
    Some(vars)
}

/// The files of one `include` entry, its `project_directory` and its
/// `env_file`s.
fn entry(loader: &mut Loader, path: &str, item: &Item) -> Option<Entry> {
    match &item.value {
        Value::Str(s) => Some(Entry {
            files: vec![s.clone()],
            dir: None,
            env_files: Vec::new(),
        }),
        Value::Map(m) => {
            let files = match m.get("path").map(|p| &p.value) {
                Some(Value::Str(s)) => vec![s.clone()],
                Some(Value::Seq(items))
                    if items.iter().all(|i| matches!(i.value, Value::Str(_))) =>
                {
                    items
                        .iter()
                        .filter_map(|i| i.text().map(str::to_string))
                        .collect()
                }
                _ => {
                    loader.error(
                        item.at,
                        path,
                        "missing `path`: the file (or list of files) to include",
                    );
                    return None;
                }
            };
            let mut env_files = Vec::new();
            for e in &m.0 {
                match e.key.as_str() {
                    "path" | "project_directory" => {}
                    "env_file" => match &e.item.value {
                        Value::Str(s) => env_files.push((s.clone(), e.item.at)),
                        Value::Seq(items) => {
                            for i in items {
                                match i.text() {
                                    Some(t) => env_files.push((t.to_string(), i.at)),
                                    None => {
                                        loader.error(i.at, path, "env_file: expected a file name")
                                    }
                                }
                            }
                        }
                        _ => loader.error(e.at, path, "env_file: expected a file name or a list"),
                    },
                    other => {
                        let m = format!(
                            "unknown key `{other}`: include takes path, project_directory and env_file"
                        );
                        loader.error(e.at, path, m);
                    }
                }
            }
            let dir = m
                .get("project_directory")
                .and_then(Item::text)
                .map(str::to_string);
            Some(Entry {
                files,
                dir,
                env_files,
            })
        }
        _ => {
            let m = format!(
                "expected a file name or a mapping with `path`, found {}",
                item.describe()
            );
            loader.error(item.at, path, m);
            None
        }
    }
}

/// Adds the sections of `included` to `root`; a name in both is an error.
fn add(loader: &mut Loader, root: &mut Item, included: Item, path: &str, files: &str) {
    let Value::Map(mut inc) = included.value else {
        return;
    };
    let Some(top) = root.map_mut() else {
        return;
    };
    for section in SECTIONS {
        let Some(Value::Map(from)) = inc.remove(section).map(|e| e.item.value) else {
            continue;
        };
        if top.get(section).is_none() {
            top.set(section, included.at, super::merge::empty_map(included.at));
        }
        let Some(into) = top.get_mut(section).and_then(Item::map_mut) else {
            continue;
        };
        for e in from.0 {
            if let Some(mine) = into.entry(&e.key) {
                let at = mine.at;
                let m = format!(
                    "{section}.{} is defined both here and in the included {files}: include does not merge, rename one",
                    e.key
                );
                loader.error(at, path, m);
                continue;
            }
            into.0.push(e);
        }
    }
}
