//! Volumes: the top-level `volumes:` declarations and each service's
//! `volumes:` mounts.
//!
//! A named volume is a directory atoll keeps on the host (under the host's
//! data dir), mounted into the container; a mount must name a volume
//! declared at the top level, so a typo in a name is caught rather than
//! creating a new volume. An anonymous volume (`- /data`, or the long form
//! without `source`) is the instance's own. The long form's `type: tmpfs`
//! is a `tmpfs` mount (as the service key `tmpfs:`). Bind mounts of the
//! project folder (`./x:/y`) are turned into configs by the command line
//! (`project/binds.rs`) before this reads them; any other bind mount (a
//! host path, `type: bind`) is an error.

use std::collections::BTreeSet;

use saphyr::{Scalar, YamlData};

use super::ctx::boolean;
use super::ctx::{Ctx, Entry, index, join};
use super::keys;
use super::tmpfs;
use super::yaml::{self, Node};
use super::{TmpfsMount, VolumeMount};

const BIND: &str = "bind mounts of host paths are refused: ship a file or folder of the project with a relative source (./nginx.conf:/etc/nginx/nginx.conf, read by the atoll command line), or declare a named volume under the top-level `volumes:` and use NAME:/path";
const SHORT: &str = "NAME:/path or NAME:/path:ro";

/// `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, as in Compose.
pub(super) fn is_volume_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Whether a mount source is a path in the project folder (shipped by
/// the command line, `project/binds.rs`).
pub(crate) fn is_project_path(source: &str) -> bool {
    source == "." || source == ".." || source.starts_with("./") || source.starts_with("../")
}

/// A source that names a host path rather than a volume.
fn is_host_path(source: &str) -> bool {
    source.starts_with(['/', '.', '~'])
}

/// The top-level `volumes:`: the declared names. Each value is a mapping
/// or null; the keys inside (`driver`, `external`, `name`, …) are ignored
/// with a warning. An invalid name is an error but still counts as
/// declared, so its mounts are not reported a second time.
pub(super) fn declarations(ctx: &mut Ctx, node: &Node) -> BTreeSet<String> {
    let mut declared = BTreeSet::new();
    for e in ctx.mapping("volumes", node) {
        let path = join("volumes", &e.key);
        if !is_volume_name(&e.key) {
            let m = "invalid volume name: use letters, digits, '_', '-' and '.', starting with a letter or digit";
            ctx.error(&path, e.line, m);
        }
        let entries = ctx.mapping(&path, e.value);
        keys::filter(ctx, &keys::VOLUME, &path, entries);
        declared.insert(e.key);
    }
    declared
}

/// What a service's `volumes:` mounts.
#[derive(Default)]
pub(super) struct Mounts {
    pub volumes: Vec<VolumeMount>,
    /// Long-form items of `type: tmpfs`.
    pub tmpfs: Vec<TmpfsMount>,
}

/// One item of a service's `volumes:`.
enum Mount {
    Volume(VolumeMount),
    Tmpfs(TmpfsMount),
}

impl Mount {
    fn target(&self) -> &str {
        match self {
            Mount::Volume(v) => &v.target,
            Mount::Tmpfs(t) => &t.target,
        }
    }
}

/// A service's `volumes:` list, short (`NAME:/path[:ro|rw]`, `/path`) or
/// long (`{type: volume|tmpfs, source, target, read_only, volume, tmpfs}`)
/// items.
pub(super) fn mounts(
    ctx: &mut Ctx,
    path: &str,
    node: &Node,
    declared: &BTreeSet<String>,
) -> Mounts {
    let mut out: Vec<Mount> = Vec::new();
    // Index of the item that mounted each target, for the duplicate error.
    let mut targets: Vec<usize> = Vec::new();
    for (i, item) in ctx.sequence(path, node).iter().enumerate() {
        let p = index(path, i);
        let mount = match &item.data {
            YamlData::Value(Scalar::String(s)) => short(ctx, &p, yaml::line(item), s, declared),
            YamlData::Mapping(_) => long(ctx, &p, item, declared),
            _ => {
                let found = yaml::describe(item);
                let m = format!("expected {SHORT} or a mapping, found {found}");
                ctx.error(&p, yaml::line(item), m);
                None
            }
        };
        let Some(mount) = mount else {
            continue;
        };
        if let Some(j) = out.iter().position(|m| m.target() == mount.target()) {
            let first = index(path, targets[j]);
            let m = format!("{} is already a mount target (in {first})", mount.target());
            ctx.error(&p, yaml::line(item), m);
            continue;
        }
        out.push(mount);
        targets.push(i);
    }
    let mut mounts = Mounts::default();
    for m in out {
        match m {
            Mount::Volume(v) => mounts.volumes.push(v),
            Mount::Tmpfs(t) => mounts.tmpfs.push(t),
        }
    }
    mounts
}

/// `NAME:/path`, `NAME:/path:ro|rw`, or `/path` (anonymous).
fn short(
    ctx: &mut Ctx,
    path: &str,
    line: usize,
    text: &str,
    declared: &BTreeSet<String>,
) -> Option<Mount> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() == 1 && is_host_path(text) {
        let target = target_path(ctx, path, line, text)?;
        return Some(Mount::Volume(VolumeMount {
            name: None,
            target,
            read_only: false,
            nocopy: false,
        }));
    }
    if let Some(source) = parts.first()
        && parts.len() > 1
        && is_host_path(source)
    {
        ctx.error(path, line, BIND);
        return None;
    }
    let (name, target, mode) = match parts.as_slice() {
        [name, target] => (*name, *target, None),
        [name, target, mode] => (*name, *target, Some(*mode)),
        _ => ("", "", None),
    };
    if name.is_empty() || target.is_empty() {
        ctx.error(path, line, format!("expected {SHORT}, found \"{text}\""));
        return None;
    }
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(other) => {
            let m = format!("expected the mode ro or rw, found \"{other}\" in \"{text}\"");
            ctx.error(path, line, m);
            return None;
        }
    };
    let name = volume_name(ctx, path, line, name, declared);
    let target = target_path(ctx, path, line, target);
    Some(Mount::Volume(VolumeMount {
        name: Some(name?),
        target: target?,
        read_only,
        nocopy: false,
    }))
}

/// The long form: `type` (`volume`, the default, or `tmpfs`), `source`
/// (none: anonymous), `target`, `read_only`, `volume: {nocopy}`,
/// `tmpfs: {size, mode}`.
fn long(ctx: &mut Ctx, path: &str, node: &Node, declared: &BTreeSet<String>) -> Option<Mount> {
    let entries = ctx.mapping(path, node);
    let entries = keys::filter(ctx, &keys::MOUNT, path, entries);
    // `type` first, so a bind mount's source is not also reported as an
    // undeclared volume.
    let kind = mount_type(ctx, path, &entries);
    let mut ok = kind != MountType::Unusable;
    let mut is_bind = kind == MountType::Bind;
    let (mut source, mut target, mut read_only) = (None, None, false);
    let (mut nocopy, mut tmpfs_options) = (false, None);
    for e in &entries {
        let p = join(path, &e.key);
        let line = yaml::line(e.value);
        match e.key.as_str() {
            "source" => match ctx.string(&p, e.value) {
                Some(_) if is_bind || kind == MountType::Tmpfs => {}
                Some(s) if is_host_path(&s) => {
                    ctx.error(&p, line, BIND);
                    is_bind = true;
                }
                Some(s) => {
                    source = volume_name(ctx, &p, line, &s, declared);
                    ok &= source.is_some();
                }
                None => ok = false,
            },
            "target" => {
                target = ctx
                    .string(&p, e.value)
                    .and_then(|t| target_path(ctx, &p, line, &t));
                ok &= target.is_some();
            }
            "read_only" => match boolean(ctx, &p, e.value) {
                Some(b) => read_only = b,
                None => ok = false,
            },
            "volume" => match volume_options(ctx, &p, e.value) {
                Some(n) => nocopy = n,
                None => ok = false,
            },
            "tmpfs" => tmpfs_options = Some(e.value),
            _ => {}
        }
    }
    if is_bind || !ok {
        return None;
    }
    let line = yaml::line(node);
    let Some(target) = target else {
        let m = "missing `target`: the absolute path to mount the volume at";
        ctx.error(path, line, m);
        return None;
    };
    if kind == MountType::Tmpfs {
        let p = join(path, "tmpfs");
        return tmpfs::long(ctx, &p, tmpfs_options, target, read_only).map(Mount::Tmpfs);
    }
    Some(Mount::Volume(VolumeMount {
        name: source,
        target,
        read_only,
        nocopy,
    }))
}

/// The long form's `volume: {nocopy, subpath}`: whether `nocopy`.
fn volume_options(ctx: &mut Ctx, path: &str, node: &Node) -> Option<bool> {
    let mut nocopy = Some(false);
    for e in ctx.mapping(path, node) {
        let p = join(path, &e.key);
        match e.key.as_str() {
            "nocopy" => nocopy = boolean(ctx, &p, e.value),
            "subpath" => {
                ctx.error(&p, e.line, "not supported: mount the whole volume");
                nocopy = None;
            }
            other => {
                ctx.error(
                    &p,
                    e.line,
                    format!("unknown key \"{other}\": nocopy or subpath"),
                );
                nocopy = None;
            }
        }
    }
    nocopy
}

/// What a long-form mount's `type` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MountType {
    /// `volume`, or no `type`.
    Volume,
    /// `tmpfs`.
    Tmpfs,
    /// `bind`: refused (said here), its `source` not checked.
    Bind,
    /// Another type, or not a string: refused (said here).
    Unusable,
}

fn mount_type(ctx: &mut Ctx, path: &str, entries: &[Entry<'_, '_>]) -> MountType {
    let Some(e) = entries.iter().find(|e| e.key == "type") else {
        return MountType::Volume;
    };
    let p = join(path, "type");
    match ctx.string(&p, e.value).as_deref() {
        Some("volume") => MountType::Volume,
        Some("tmpfs") => MountType::Tmpfs,
        Some("bind") => {
            ctx.error(&p, yaml::line(e.value), BIND);
            MountType::Bind
        }
        Some(other) => {
            let m = format!("unsupported mount type \"{other}\": `volume` or `tmpfs`");
            ctx.error(&p, yaml::line(e.value), m);
            MountType::Unusable
        }
        None => MountType::Unusable,
    }
}

/// A volume name, which must be declared at the top level.
fn volume_name(
    ctx: &mut Ctx,
    path: &str,
    line: usize,
    name: &str,
    declared: &BTreeSet<String>,
) -> Option<String> {
    if declared.contains(name) {
        return Some(name.to_string());
    }
    let names: Vec<&str> = declared.iter().map(String::as_str).collect();
    let known = if names.is_empty() {
        "none is declared".to_string()
    } else {
        format!("declared: {}", names.join(", "))
    };
    let m = format!(
        "undeclared volume \"{name}\": declare it under the top-level `volumes:` ({known})"
    );
    ctx.error(path, line, m);
    None
}

/// An absolute path inside the container, other than `/`; trailing
/// slashes are dropped so `/data/` and `/data` are one target.
fn target_path(ctx: &mut Ctx, path: &str, line: usize, target: &str) -> Option<String> {
    if !target.starts_with('/') {
        let m = format!("the target must be an absolute path such as /data, found \"{target}\"");
        ctx.error(path, line, m);
        return None;
    }
    let trimmed = target.trim_end_matches('/');
    if trimmed.is_empty() {
        ctx.error(path, line, "a volume cannot be mounted at /");
        return None;
    }
    Some(trimmed.to_string())
}
