//! The Compose keys that set what the kernel gives a container's
//! processes: `ulimits`, `sysctls`, `shm_size` and `stop_signal`.
//!
//! `sysctls` takes only the settings a container's own namespaces hold
//! (`net.*`, the IPC ones, `fs.mqueue.*`), as Docker does: any other would
//! change the whole host, and is an error that says so.

use std::collections::BTreeMap;

use saphyr::YamlData;

use super::Ulimit;
use super::ctx::{Ctx, index, join};
use super::units::parse_bytes;
use super::yaml::{self, Node};

/// The resources `ulimits:` may name (`setrlimit(2)`, as Docker spells them).
const ULIMITS: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// IPC sysctls a container's IPC namespace holds.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Signals by name, as `kill -l` spells them (without `SIG`).
const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// `ulimits:`: `name: N` (soft = hard) or `name: {soft: N, hard: N}`.
pub(super) fn ulimits(ctx: &mut Ctx, path: &str, node: &Node) -> Vec<Ulimit> {
    let mut out = Vec::new();
    for e in ctx.mapping(path, node) {
        let p = join(path, &e.key);
        if !ULIMITS.contains(&e.key.as_str()) {
            let m = format!(
                "unknown ulimit \"{}\": one of {}",
                e.key,
                ULIMITS.join(", ")
            );
            ctx.error(&p, e.line, m);
            continue;
        }
        let limits = match &e.value.data {
            YamlData::Mapping(_) => soft_hard(ctx, &p, e.value),
            _ => ctx.uint(&p, e.value, u64::MAX).map(|n| (n, n)),
        };
        let Some((soft, hard)) = limits else {
            continue;
        };
        if soft > hard {
            let m = format!("soft limit {soft} is above the hard limit {hard}");
            ctx.error(&p, e.line, m);
            continue;
        }
        out.push(Ulimit {
            name: e.key.clone(),
            soft,
            hard,
        });
    }
    out
}

fn soft_hard(ctx: &mut Ctx, path: &str, node: &Node) -> Option<(u64, u64)> {
    let (mut soft, mut hard) = (None, None);
    for e in ctx.mapping(path, node) {
        let p = join(path, &e.key);
        match e.key.as_str() {
            "soft" => soft = ctx.uint(&p, e.value, u64::MAX),
            "hard" => hard = ctx.uint(&p, e.value, u64::MAX),
            other => ctx.error(&p, e.line, format!("unknown key \"{other}\": soft or hard")),
        }
    }
    match (soft, hard) {
        (Some(s), Some(h)) => Some((s, h)),
        _ => {
            let m = "expected both `soft` and `hard`";
            ctx.error(path, yaml::line(node), m);
            None
        }
    }
}

/// `sysctls:`: a mapping, or a list of `name=value`.
pub(super) fn sysctls(ctx: &mut Ctx, path: &str, node: &Node) -> BTreeMap<String, String> {
    let mut pairs: Vec<(String, String, String, usize)> = Vec::new();
    match &node.data {
        YamlData::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = index(path, i);
                let Some(text) = ctx.string(&p, item) else {
                    continue;
                };
                match text.split_once('=') {
                    Some((k, v)) => {
                        pairs.push((k.trim().into(), v.trim().into(), p, yaml::line(item)))
                    }
                    None => ctx.error(
                        &p,
                        yaml::line(item),
                        format!("expected name=value, found \"{text}\""),
                    ),
                }
            }
        }
        _ => {
            for e in ctx.mapping(path, node) {
                let p = join(path, &e.key);
                if let Some(v) = ctx.scalar_text(&p, e.value) {
                    pairs.push((e.key.clone(), v, p, e.line));
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for (name, value, p, line) in pairs {
        match namespaced(&name) {
            true => {
                out.insert(name, value);
            }
            false => {
                let m = format!(
                    "sysctl {name} is not namespaced: setting it would change the whole host; a container may set net.*, fs.mqueue.* and {}",
                    IPC_SYSCTLS.join(", ")
                );
                ctx.error(&p, line, m);
            }
        }
    }
    out
}

/// Whether a container's own namespaces hold the sysctl.
pub(super) fn namespaced(name: &str) -> bool {
    name.starts_with("net.") || name.starts_with("fs.mqueue.") || IPC_SYSCTLS.contains(&name)
}

/// `shm_size:` bytes (`64m`, or a number of bytes).
pub(super) fn shm_size(ctx: &mut Ctx, path: &str, node: &Node) -> Option<u64> {
    let text = ctx.scalar_text(path, node)?;
    match parse_bytes(&text) {
        Ok(0) => {
            ctx.error(path, yaml::line(node), "shm_size must be more than 0");
            None
        }
        Ok(n) => Some(n),
        Err(e) => {
            ctx.error(path, yaml::line(node), e);
            None
        }
    }
}

/// `stop_signal:` (`SIGQUIT`, `QUIT` or a number) as a name without `SIG`.
pub(super) fn stop_signal(ctx: &mut Ctx, path: &str, node: &Node) -> Option<String> {
    let text = ctx.scalar_text(path, node)?;
    match signal_name(&text) {
        Some(name) => Some(name),
        None => {
            let m = format!(
                "unknown signal \"{text}\": a name such as SIGTERM or SIGQUIT, or a number"
            );
            ctx.error(path, yaml::line(node), m);
            None
        }
    }
}

/// A signal's name without `SIG` (`SIGQUIT`, `quit`, `3` → `QUIT`); real
/// time signals (`SIGRTMIN+3`) and numbers beyond the named ones stay as
/// the number.
pub fn signal_name(text: &str) -> Option<String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<usize>() {
        return match n {
            1..=31 => Some(SIGNALS[n - 1].to_string()),
            32..=64 => Some(n.to_string()),
            _ => None,
        };
    }
    let upper = t.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS.contains(&bare).then(|| bare.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(signal_name("SIGQUIT").as_deref(), Some("QUIT"));
        assert_eq!(signal_name("quit").as_deref(), Some("QUIT"));
        assert_eq!(signal_name("15").as_deref(), Some("TERM"));
        assert_eq!(signal_name("40").as_deref(), Some("40"));
        assert_eq!(signal_name("SIGNOPE"), None);
        assert_eq!(signal_name("0"), None);
    }

    #[test]
    fn only_namespaced_sysctls() {
        assert!(namespaced("net.core.somaxconn"));
        assert!(namespaced("kernel.shmmax"));
        assert!(namespaced("fs.mqueue.msg_max"));
        assert!(!namespaced("kernel.pid_max"));
        assert!(!namespaced("vm.swappiness"));
    }
}
