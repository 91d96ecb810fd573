//! Files from the project folder: a service's bind mount of a relative
//! path (`./nginx.conf:/etc/nginx/nginx.conf:ro`, `./html:/usr/share/nginx/html`)
//! is shipped with the deploy, as Compose users expect it to be there on
//! whatever host the container runs. Each file becomes a config named by
//! its content (`bind-` and 12 hex digits of its SHA-256), mounted
//! read-only at the target (a folder's files under it, by their path in
//! the folder), with the file's execute bits kept; the values travel with
//! the deploy like other configs' and a changed file is a changed service.
//!
//! Bounded: [`MAX_BUNDLE_FILE`] per file (a config's limit),
//! [`MAX_BUNDLE`] and [`MAX_BUNDLE_FILES`] for the whole project. Host
//! paths (`/srv/x`, `~/x`) are left to the parser, which refuses them.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::Loader;
use super::tree::{Entry, Item, Map, Origin, Value};
use crate::spec::volumes::is_project_path;

/// The largest file shipped (a config's limit: values travel in NATS
/// messages).
pub const MAX_BUNDLE_FILE: usize = crate::spec::MAX_FILE_VALUE;
/// The most bytes shipped from the project folder in one deploy.
pub const MAX_BUNDLE: usize = 10 * 1024 * 1024;
/// The most files shipped from the project folder in one deploy: each is
/// a mount in every instance's assignment, which must stay well within a
/// NATS message on a host that runs several.
pub const MAX_BUNDLE_FILES: usize = 256;

/// One file of a bind mount's source, as the caller read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    /// Its path inside the mounted folder (`css/site.css`); empty when
    /// the source is the file itself.
    pub rel: String,
    /// Its permission bits on disk.
    pub mode: u32,
    pub value: Vec<u8>,
}

/// Reads a bind mount's source: the file, or every regular file under the
/// folder (bounded by the limits above); the error says why not.
pub type ListFiles<'r> = &'r dyn Fn(&std::path::Path) -> Result<Vec<ProjectFile>, String>;

/// A bind mount of the project folder found in a service's `volumes:`.
struct Bind {
    source: String,
    target: String,
    /// `:rw` or `read_only: false` written explicitly.
    rw: bool,
}

/// The bind mount `item` is, if it is one of a project path.
fn bind_of(item: &Item) -> Option<Bind> {
    match &item.value {
        Value::Str(s) => {
            let mut parts = s.split(':');
            let source = parts.next()?;
            let target = parts.next()?;
            let mode = parts.next();
            (is_project_path(source) && parts.next().is_none()).then(|| Bind {
                source: source.to_string(),
                target: target.to_string(),
                rw: mode.is_some_and(|m| m.split(',').any(|o| o == "rw")),
            })
        }
        Value::Map(m) => {
            let source = m.get("source").and_then(Item::text)?;
            let kind = m.get("type").and_then(Item::text).unwrap_or("bind");
            let target = m.get("target").and_then(Item::text)?;
            (kind == "bind" && is_project_path(source)).then(|| Bind {
                source: source.to_string(),
                target: target.to_string(),
                rw: m.get("read_only").and_then(Item::text) == Some("false"),
            })
        }
        _ => None,
    }
}

/// `rel` under the mount's `top` (the file itself when `rel` is empty).
fn under(top: &str, rel: &str) -> String {
    match rel {
        "" => top.to_string(),
        rel => format!("{}/{rel}", top.trim_end_matches('/')),
    }
}

/// The config a file becomes: its content's name.
fn config_name(value: &[u8]) -> String {
    let digest = Sha256::digest(value);
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("bind-{hex}")
}

fn text(s: impl Into<String>, at: Origin) -> Item {
    Item::new(Value::Str(s.into()), at)
}

fn entry(key: &str, item: Item) -> Entry {
    Entry {
        key: key.to_string(),
        at: item.at,
        item,
    }
}

/// What the binds of the project add up to, for the limits.
#[derive(Default)]
struct Shipped {
    values: BTreeMap<String, Vec<u8>>,
    bytes: usize,
    files: usize,
}

/// Replaces the project-path bind mounts of every service with configs
/// (declared at the top level); the values go to `bundle`, by name.
pub(super) fn apply(loader: &mut Loader, root: &mut Item) -> BTreeMap<String, Vec<u8>> {
    let mut shipped = Shipped::default();
    let mut declared: Vec<(String, String, Origin)> = Vec::new();
    let Some(top) = root.map_mut() else {
        return shipped.values;
    };
    let Some(Value::Map(services)) = top.get_mut("services").map(|s| &mut s.value) else {
        return shipped.values;
    };
    for svc in &mut services.0 {
        let Some(m) = svc.item.map_mut() else {
            continue;
        };
        if !runs(m, &loader.profiles) {
            continue;
        }
        let Some(Value::Seq(items)) = m.get_mut("volumes").map(|v| &mut v.value) else {
            continue;
        };
        let path = format!("services.{}.volumes", svc.key);
        let mut mounts = Vec::new();
        let mut kept = Vec::new();
        for (i, item) in std::mem::take(items).into_iter().enumerate() {
            let Some(bind) = bind_of(&item) else {
                kept.push(item);
                continue;
            };
            let at = item.at;
            let p = format!("{path}[{i}]");
            if bind.rw {
                let m = format!(
                    "{} is shipped read-only from the project folder: the container cannot write to it (use a named volume for data)",
                    bind.source
                );
                loader.warn(at, &p, m);
            }
            let full = loader.dir(at.file).join(&bind.source);
            let files = match (loader.list)(&full) {
                Ok(files) => files,
                Err(e) => {
                    let m = format!(
                        "cannot ship {} from the project folder: {e} (a bind mount of the project folder ships its files read-only; for data the service writes, use a named volume)",
                        bind.source
                    );
                    loader.error(at, &p, m);
                    continue;
                }
            };
            for f in files {
                if let Err(m) = shipped.add(&bind.source, &f) {
                    loader.error(at, &p, m);
                    break;
                }
                let name = config_name(&f.value);
                let target = under(&bind.target, &f.rel);
                let shown = under(&bind.source, &f.rel);
                let mode = 0o444 | (f.mode & 0o111);
                let mount = Map(vec![
                    entry("source", text(name.clone(), at)),
                    entry("target", text(target, at)),
                    entry("mode", Item::new(Value::Plain(format!("0{mode:o}")), at)),
                ]);
                mounts.push(Item::new(Value::Map(mount), at));
                shipped.values.entry(name.clone()).or_insert(f.value);
                declared.push((name, shown, at));
            }
        }
        *items = kept;
        if mounts.is_empty() {
            continue;
        }
        if items.is_empty() {
            m.remove("volumes");
        }
        add_mounts(m, mounts);
    }
    declare(loader, top, declared);
    shipped.values
}

/// Whether a service runs with the `active` profiles (one left out ships
/// nothing, and the parser drops it).
fn runs(service: &Map, active: &[String]) -> bool {
    let named: Vec<String> = match service.get("profiles").map(|p| &p.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|i| i.text().map(String::from))
            .collect(),
        Some(Value::Str(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    crate::spec::profiles::enabled(&named, active)
}

impl Shipped {
    /// Counts `f` against the project's limits.
    fn add(&mut self, source: &str, f: &ProjectFile) -> Result<(), String> {
        let shown = under(source, &f.rel);
        if f.value.len() > MAX_BUNDLE_FILE {
            return Err(format!(
                "{shown} is {} KiB, more than the {} KiB a file shipped from the project folder may hold",
                f.value.len().div_ceil(1024),
                MAX_BUNDLE_FILE / 1024
            ));
        }
        self.files += 1;
        self.bytes += f.value.len();
        if self.files > MAX_BUNDLE_FILES {
            return Err(format!(
                "more than {MAX_BUNDLE_FILES} files shipped from the project folder (at {shown})"
            ));
        }
        if self.bytes > MAX_BUNDLE {
            return Err(format!(
                "more than {} MiB shipped from the project folder (at {shown}): use an image for larger content",
                MAX_BUNDLE >> 20
            ));
        }
        Ok(())
    }
}

/// Appends `mounts` to the service's `configs:` (made when absent).
fn add_mounts(service: &mut Map, mounts: Vec<Item>) {
    let at = mounts.first().map(|m| m.at).unwrap_or_default();
    match service.get_mut("configs").map(|c| &mut c.value) {
        Some(Value::Seq(items)) => items.extend(mounts),
        // Left for the parser to report.
        Some(_) => {}
        None => service.set("configs", at, Item::new(Value::Seq(mounts), at)),
    }
}

/// Declares each shipped file's config at the top level (once per
/// content); a name the file itself declares otherwise is an error.
fn declare(loader: &mut Loader, top: &mut Map, declared: Vec<(String, String, Origin)>) {
    let Some(at) = declared.first().map(|d| d.2) else {
        return;
    };
    if top.get("configs").is_none_or(Item::is_null) {
        top.set("configs", at, Item::new(Value::Map(Map::default()), at));
    }
    let Some(Value::Map(configs)) = top.get_mut("configs").map(|c| &mut c.value) else {
        return;
    };
    let mut added = std::collections::BTreeSet::new();
    for (name, shown, at) in declared {
        if added.contains(&name) {
            // The same content shipped from two places: one value.
            continue;
        }
        if configs.get(&name).is_some() {
            let m =
                "is a name atoll gives a file shipped from the project folder: rename this config";
            loader.error(at, &format!("configs.{name}"), m);
            continue;
        }
        let file = Map(vec![entry("file", text(shown, at))]);
        configs.set(&name, at, Item::new(Value::Map(file), at));
        added.insert(name);
    }
}
