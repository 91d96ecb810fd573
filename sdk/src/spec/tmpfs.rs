//! `tmpfs` mounts: the service key `tmpfs:` (`/run`, or
//! `/run:size=64m,mode=1770,noexec`, one or a list) and the long form of a
//! `volumes:` item with `type: tmpfs` (`tmpfs: {size, mode}`).

use saphyr::{Scalar, YamlData};

use super::TmpfsMount;
use super::ctx::{Ctx, index, join};
use super::units::parse_bytes;
use super::yaml::{self, Node};

/// Mount flags a tmpfs may carry.
const FLAGS: &[&str] = &[
    "ro", "rw", "noexec", "exec", "nosuid", "suid", "nodev", "dev",
];

/// The service key `tmpfs:`.
pub(super) fn service_key(ctx: &mut Ctx, path: &str, node: &Node) -> Vec<TmpfsMount> {
    let items: Vec<(String, &Node)> = match &node.data {
        YamlData::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, n)| (index(path, i), n))
            .collect(),
        _ => vec![(path.to_string(), node)],
    };
    let mut out = Vec::new();
    for (p, item) in items {
        let Some(text) = ctx.string(&p, item) else {
            continue;
        };
        match short(&text) {
            Ok(m) => out.push(m),
            Err(why) => ctx.error(&p, yaml::line(item), why),
        }
    }
    out
}

/// `/path[:opt,opt]`.
fn short(text: &str) -> Result<TmpfsMount, String> {
    let (target, opts) = text.split_once(':').unwrap_or((text, ""));
    let mut mount = TmpfsMount {
        target: target_path(target)?,
        size: None,
        mode: None,
        flags: Vec::new(),
    };
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some(("size", v)) => mount.size = Some(size(v)?),
            Some(("mode", v)) => mount.mode = Some(mode(v)?),
            None if FLAGS.contains(&opt) => mount.flags.push(opt.to_string()),
            _ => {
                return Err(format!(
                    "unsupported tmpfs option \"{opt}\" in \"{text}\": size=, mode= or one of {}",
                    FLAGS.join(", ")
                ));
            }
        }
    }
    Ok(mount)
}

/// The long form's `tmpfs: {size, mode}`, for a mount at `target`.
pub(super) fn long(
    ctx: &mut Ctx,
    path: &str,
    node: Option<&Node>,
    target: String,
    read_only: bool,
) -> Option<TmpfsMount> {
    let mut mount = TmpfsMount {
        target,
        size: None,
        mode: None,
        flags: if read_only {
            vec!["ro".into()]
        } else {
            Vec::new()
        },
    };
    let Some(node) = node else {
        return Some(mount);
    };
    let mut ok = true;
    for e in ctx.mapping(path, node) {
        let p = join(path, &e.key);
        let text = match &e.value.data {
            YamlData::Value(Scalar::Integer(i)) if e.key == "mode" => format!("{i}"),
            _ => match ctx.scalar_text(&p, e.value) {
                Some(t) => t,
                None => {
                    ok = false;
                    continue;
                }
            },
        };
        let parsed = match e.key.as_str() {
            "size" => size(&text).map(|s| mount.size = Some(s)),
            "mode" => mode(&text).map(|m| mount.mode = Some(m)),
            other => Err(format!("unknown key \"{other}\": size or mode")),
        };
        if let Err(why) = parsed {
            ctx.error(&p, e.line, why);
            ok = false;
        }
    }
    ok.then_some(mount)
}

fn target_path(t: &str) -> Result<String, String> {
    let t = t.trim_end_matches('/');
    if !t.starts_with('/') {
        return Err(format!(
            "a tmpfs target must be an absolute path, found \"{t}\""
        ));
    }
    Ok(t.to_string())
}

fn size(v: &str) -> Result<u64, String> {
    match parse_bytes(v) {
        Ok(0) => Err("a tmpfs size must be more than 0".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A mode in octal (`1770`, `0755`), as Compose and `mount(8)` write it.
pub(super) fn mode(v: &str) -> Result<u32, String> {
    u32::from_str_radix(v, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("expected an octal mode such as 1777 or 0755, found \"{v}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_form_with_size_mode_and_flags() {
        let m = short("/run:size=64m,mode=1770,noexec").expect("valid");
        assert_eq!(m.target, "/run");
        assert_eq!(m.size, Some(64 << 20));
        assert_eq!(m.mode, Some(0o1770));
        assert_eq!(m.flags, ["noexec"]);
        assert_eq!(short("/tmp/").expect("valid").target, "/tmp");
    }

    #[test]
    fn bad_short_forms_say_what_is_wrong() {
        assert!(short("run").unwrap_err().contains("absolute"));
        assert!(short("/run:size=lots").is_err());
        assert!(short("/run:mode=999").unwrap_err().contains("octal"));
        assert!(
            short("/run:uid=1000")
                .unwrap_err()
                .contains("unsupported tmpfs option")
        );
    }
}
