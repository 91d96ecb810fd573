//! Secrets and configs: the top-level `secrets:`/`configs:` declarations
//! (where each value comes from) and each service's `secrets:`/`configs:`
//! mounts, as the Compose Specification writes them.
//!
//! A declaration names its source: `file:` (relative to the Compose file,
//! read by the CLI), `environment:` (a variable of the CLI's environment)
//! or, for configs only, `content:` (the text itself). The values never
//! enter the parsed app: the CLI sends them beside the file and the server
//! keeps them encrypted, recording only a keyed digest of each value on the
//! service's mounts (so a changed value is a changed service).
//!
//! A service mounts them by name, short (`- db_password`) or long
//! (`{source, target, uid, gid, mode}`). A secret lands at
//! `/run/secrets/<target>` (default: its name), a config at `/<name>` or
//! its absolute `target`. Every name a service uses must be declared: a
//! typo is an error, not an empty file.

use std::collections::BTreeMap;

use saphyr::{Scalar, YamlData};

use super::ctx::{Ctx, index, join};
use super::file_types::{FileKind, FileMount, FileSource};
use super::keys;
use super::yaml::{self, Node};

/// The top-level `secrets:` or `configs:`: name → source.
pub(super) fn declarations(
    ctx: &mut Ctx,
    kind: FileKind,
    node: &Node,
) -> BTreeMap<String, FileSource> {
    let mut out = BTreeMap::new();
    let top = kind.key();
    for e in ctx.mapping(top, node) {
        let path = join(top, &e.key);
        if !is_name(&e.key) {
            let m = format!(
                "invalid {} name: use letters, digits, '_', '-' and '.', starting with a letter or digit",
                kind.noun()
            );
            ctx.error(&path, e.line, m);
        }
        let section = match kind {
            FileKind::Secret => &keys::SECRET,
            FileKind::Config => &keys::CONFIG,
        };
        let entries = ctx.mapping(&path, e.value);
        let entries = keys::filter(ctx, section, &path, entries);
        let mut sources = Vec::new();
        for f in &entries {
            let p = join(&path, &f.key);
            let text = ctx.scalar_text(&p, f.value);
            match (f.key.as_str(), text) {
                ("file", Some(t)) if !t.is_empty() => sources.push(FileSource::File(t)),
                ("environment", Some(t)) if !t.is_empty() => {
                    sources.push(FileSource::Environment(t))
                }
                ("content", Some(t)) => sources.push(FileSource::Content(t)),
                ("external", _) => {
                    let m = format!(
                        "external {}s are not supported: give `file:` or `environment:` and atoll keeps the value",
                        kind.noun()
                    );
                    ctx.error(&p, f.line, m);
                }
                ("file" | "environment", Some(_)) => ctx.error(&p, f.line, "must not be empty"),
                _ => {}
            }
        }
        match sources.len() {
            1 => {
                out.insert(e.key, sources.remove(0));
            }
            0 if !entries.iter().any(|f| f.key == "external") => {
                let m = match kind {
                    FileKind::Secret => "needs `file:` or `environment:`",
                    FileKind::Config => "needs `file:`, `environment:` or `content:`",
                };
                ctx.error(&path, e.line, m);
            }
            0 => {}
            _ => {
                let m = "give one source: `file:`, `environment:` or `content:`, not several";
                ctx.error(&path, e.line, m);
            }
        }
    }
    out
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, as Compose names secrets and configs.
fn is_name(s: &str) -> bool {
    super::volumes::is_volume_name(s)
}

/// A service's `secrets:` or `configs:` list. Names are checked against
/// the declarations once the whole file is read ([`check_references`]).
pub(super) fn mounts(ctx: &mut Ctx, kind: FileKind, path: &str, node: &Node) -> Vec<FileMount> {
    let mut out: Vec<FileMount> = Vec::new();
    for (i, item) in ctx.sequence(path, node).iter().enumerate() {
        let p = index(path, i);
        let line = yaml::line(item);
        let mount = match &item.data {
            YamlData::Value(Scalar::String(s)) => Some(mount(kind, s, None)),
            YamlData::Mapping(_) => long(ctx, kind, &p, item),
            _ => {
                let found = yaml::describe(item);
                let m = format!(
                    "expected a {} name or a mapping, found {found}",
                    kind.noun()
                );
                ctx.error(&p, line, m);
                None
            }
        };
        let Some(mount) = mount else {
            continue;
        };
        if out.iter().any(|m| m.target == mount.target) {
            let m = format!("{} is already a target", mount.target);
            ctx.error(&p, line, m);
            continue;
        }
        ctx.file_refs.push((p, line, kind, mount.name.clone()));
        out.push(mount);
    }
    out
}

/// A mount of `name` with Compose's defaults.
fn mount(kind: FileKind, name: &str, target: Option<&str>) -> FileMount {
    let target = match (kind, target) {
        (_, Some(t)) if t.starts_with('/') => t.to_string(),
        (FileKind::Secret, t) => format!("/run/secrets/{}", t.unwrap_or(name)),
        (FileKind::Config, t) => format!("/{}", t.unwrap_or(name)),
    };
    FileMount {
        kind,
        name: name.to_string(),
        target,
        uid: None,
        gid: None,
        mode: match kind {
            FileKind::Secret => 0o400,
            FileKind::Config => 0o444,
        },
        digest: String::new(),
    }
}

fn long(ctx: &mut Ctx, kind: FileKind, path: &str, node: &Node) -> Option<FileMount> {
    let entries = ctx.mapping(path, node);
    let entries = keys::filter(ctx, &keys::FILE_MOUNT, path, entries);
    let mut source = None;
    let mut target = None;
    let (mut uid, mut gid, mut mode) = (None, None, None);
    for e in &entries {
        let p = join(path, &e.key);
        let text = ctx.scalar_text(&p, e.value);
        let Some(text) = text else { continue };
        match e.key.as_str() {
            "source" => source = Some(text),
            "target" => target = Some(text),
            "uid" | "gid" => match text.parse::<u32>() {
                Ok(n) if e.key == "uid" => uid = Some(n),
                Ok(n) => gid = Some(n),
                Err(_) => ctx.error(&p, e.line, format!("expected a number, found \"{text}\"")),
            },
            "mode" => match super::tmpfs::mode(&text) {
                Ok(m) if m <= 0o777 => mode = Some(m),
                _ => {
                    let m = format!("expected an octal file mode such as 0440, found \"{text}\"");
                    ctx.error(&p, e.line, m);
                }
            },
            _ => {}
        }
    }
    let Some(source) = source else {
        ctx.error(path, yaml::line(node), "needs `source:`, the declared name");
        return None;
    };
    if let Some(t) = target.as_deref().filter(|t| bad_target(t)) {
        let m = format!("invalid target \"{t}\": a file name or an absolute path without `..`");
        ctx.error(&join(path, "target"), yaml::line(node), m);
        return None;
    }
    let mut m = mount(kind, &source, target.as_deref());
    m.uid = uid;
    m.gid = gid;
    m.mode = mode.unwrap_or(m.mode);
    Some(m)
}

fn bad_target(t: &str) -> bool {
    t.is_empty() || t.split('/').any(|part| part == "..") || t == "/"
}

/// Every name a service mounts must be declared at the top level.
pub(super) fn check_references(
    ctx: &mut Ctx,
    secrets: &BTreeMap<String, FileSource>,
    configs: &BTreeMap<String, FileSource>,
) {
    for (path, line, kind, name) in std::mem::take(&mut ctx.file_refs) {
        let declared = match kind {
            FileKind::Secret => secrets,
            FileKind::Config => configs,
        };
        if !declared.contains_key(&name) {
            let m = format!(
                "{} \"{name}\" is not declared under the top-level `{}:`",
                kind.noun(),
                kind.key()
            );
            ctx.error(&path, line, m);
        }
    }
}
