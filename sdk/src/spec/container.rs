//! The Compose keys that shape a container: `entrypoint`, `command`,
//! `working_dir`, `user`, `read_only`, `security_opt`, `cap_add`,
//! `cap_drop`, `stop_grace_period`, `restart`, `init`, `tmpfs` and (read in
//! `kernel`) `stop_signal`, `shm_size`, `ulimits` and `sysctls` from the
//! service, and `restart_policy` (plus `resources.limits.pids`) from
//! `deploy`.
//!
//! [`ContainerKeys`] collects them in whatever order the file gives them;
//! [`ContainerKeys::finish`] then settles what depends on several keys
//! (`restart_policy` over `restart`, an empty `entrypoint` without a
//! `command`) and warns when the service is a component, which ignores
//! them all. A null value means "not set", as in Compose.

use saphyr::{Scalar, YamlData};

use super::ctx::{Ctx, boolean, index, join};
use super::privilege::capability;
use super::units::split_words;
use super::yaml::{self, Node};
use super::{ContainerOptions, RestartCondition, RestartPolicy};
use super::{kernel, keys, privileged_keys, tmpfs};

const RESTART_VALUES: &str = "no, always, on-failure, on-failure:N or unless-stopped";

/// The container keys of one service, as read so far.
#[derive(Default)]
pub(super) struct ContainerKeys {
    options: ContainerOptions,
    /// Each container key given, as `(path, line of the key)`: a component
    /// ignores them, with a warning each.
    given: Vec<(String, usize)>,
    /// Where `entrypoint`'s value is, to report one that leaves nothing to
    /// run.
    entrypoint_at: Option<(String, usize)>,
    /// `restart:`, with the line of its key.
    restart: Option<(RestartPolicy, usize)>,
    /// `deploy.restart_policy`.
    policy: Option<RestartPolicy>,
}

impl ContainerKeys {
    /// Reads one service key if it is a container key; other keys are left
    /// alone.
    pub fn read(&mut self, ctx: &mut Ctx, key: &str, path: &str, line: usize, node: &Node) {
        if node.data.is_null() {
            return;
        }
        let o = &mut self.options;
        match key {
            "entrypoint" => {
                o.entrypoint = words(ctx, path, node);
                self.entrypoint_at = Some((path.to_string(), yaml::line(node)));
            }
            "command" => o.command = words(ctx, path, node),
            "working_dir" => o.working_dir = working_dir(ctx, path, node),
            "user" => o.user = user(ctx, path, node),
            "read_only" => o.read_only = boolean(ctx, path, node).unwrap_or(false),
            "security_opt" => security_opt(ctx, path, node, &mut o.no_new_privileges),
            "cap_add" => {
                o.cap_add = capabilities(ctx, path, node);
                privileged_keys::cap_add(ctx, path, node, &o.cap_add);
            }
            "cap_drop" => o.cap_drop = capabilities(ctx, path, node),
            "privileged" => privileged_keys::privileged(ctx, path, line, node),
            "pid" | "ipc" | "uts" | "cgroup" | "network_mode" => {
                privileged_keys::namespace(ctx, key, path, line, node)
            }
            "devices" | "device_cgroup_rules" => privileged_keys::devices(ctx, path, node),
            "stop_grace_period" => o.stop_grace_ms = ctx.duration_ms(path, node, true),
            "restart" => self.restart = restart(ctx, path, node).map(|r| (r, line)),
            "init" => o.init = boolean(ctx, path, node).unwrap_or(false),
            "stop_signal" => o.stop_signal = kernel::stop_signal(ctx, path, node),
            "shm_size" => o.shm_size = kernel::shm_size(ctx, path, node),
            "ulimits" => o.ulimits = kernel::ulimits(ctx, path, node),
            "sysctls" => o.sysctls = kernel::sysctls(ctx, path, node),
            "tmpfs" => o.tmpfs.extend(tmpfs::service_key(ctx, path, node)),
            _ => return,
        }
        self.given.push((path.to_string(), line));
    }

    /// `deploy.restart_policy`.
    pub fn restart_policy(&mut self, ctx: &mut Ctx, path: &str, line: usize, node: &Node) {
        if node.data.is_null() {
            return;
        }
        self.policy = Some(restart_policy(ctx, path, node));
        self.given.push((path.to_string(), line));
    }

    /// Notes a container-only key read elsewhere (`deploy.resources.limits.pids`).
    pub fn note(&mut self, path: &str, line: usize) {
        self.given.push((path.to_string(), line));
    }

    /// The options of the service at `service_path`. Values are kept for a
    /// component too (they were validated), but each key gets a warning.
    pub fn finish(self, ctx: &mut Ctx, service_path: &str, is_component: bool) -> ContainerOptions {
        let mut o = self.options;
        if is_component {
            for (path, line) in &self.given {
                ctx.warn(
                    path,
                    *line,
                    "ignored: a component does not run in a container",
                );
            }
        }
        o.restart = match (self.restart, self.policy) {
            (Some((_, line)), Some(policy)) => {
                if !is_component {
                    let path = join(service_path, "restart");
                    let m = "ignored: deploy.restart_policy is set too, and wins";
                    ctx.warn(&path, line, m);
                }
                policy
            }
            (Some((restart, _)), None) => restart,
            (None, Some(policy)) => policy,
            (None, None) => RestartPolicy::default(),
        };
        let nothing = |w: &Option<Vec<String>>| w.as_ref().is_none_or(Vec::is_empty);
        if let Some((path, line)) = &self.entrypoint_at
            && !is_component
            && o.entrypoint.as_ref().is_some_and(Vec::is_empty)
            && nothing(&o.command)
        {
            let m = "an empty entrypoint drops the image's entrypoint and command: set `command` too, or the container has nothing to run";
            ctx.error(path, *line, m);
        }
        o
    }
}

/// `entrypoint` or `command`: a string split into words like a shell
/// would, or a list (numbers and booleans as written: `[sleep, 10]`).
fn words(ctx: &mut Ctx, path: &str, node: &Node) -> Option<Vec<String>> {
    let line = yaml::line(node);
    match &node.data {
        YamlData::Value(Scalar::String(s)) => {
            split_words(s).map_err(|m| ctx.error(path, line, m)).ok()
        }
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let p = index(path, i);
                match &item.data {
                    YamlData::Value(Scalar::Null)
                    | YamlData::Sequence(_)
                    | YamlData::Mapping(_) => {
                        let found = yaml::describe(item);
                        let m = format!("expected a string, found {found}");
                        ctx.error(&p, yaml::line(item), m);
                    }
                    _ => out.extend(ctx.scalar_text(&p, item)),
                }
            }
            Some(out)
        }
        _ => {
            let found = yaml::describe(node);
            let m = format!("expected a command line or a list of strings, found {found}");
            ctx.error(path, line, m);
            None
        }
    }
}

fn working_dir(ctx: &mut Ctx, path: &str, node: &Node) -> Option<String> {
    let dir = ctx.string(path, node)?;
    if !dir.starts_with('/') {
        let m = format!("expected an absolute path such as /app, found \"{dir}\"");
        ctx.error(path, yaml::line(node), m);
        return None;
    }
    Some(dir)
}

/// `user`: `uid`, `uid:gid`, `name` or `name:group`; an integer is a uid.
fn user(ctx: &mut Ctx, path: &str, node: &Node) -> Option<String> {
    let line = yaml::line(node);
    let expected = "a user such as 1000, 1000:1000 or nginx";
    let text = match &node.data {
        YamlData::Value(Scalar::String(s)) => s.to_string(),
        YamlData::Value(Scalar::Integer(i)) if *i >= 0 => i.to_string(),
        _ => {
            let found = yaml::describe(node);
            ctx.error(path, line, format!("expected {expected}, found {found}"));
            return None;
        }
    };
    let parts: Vec<&str> = text.split(':').collect();
    let well_formed = parts.len() <= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && !p.contains(char::is_whitespace));
    if !well_formed {
        ctx.error(path, line, format!("expected {expected}, found \"{text}\""));
        return None;
    }
    Some(text)
}

/// `security_opt`: only `no-new-privileges[:true|false]` is implemented
/// (Docker also accepts `=` as the separator); other options are ignored
/// with a warning.
fn security_opt(ctx: &mut Ctx, path: &str, node: &Node, no_new_privileges: &mut bool) {
    for (i, item) in ctx.sequence(path, node).iter().enumerate() {
        let p = index(path, i);
        let line = yaml::line(item);
        let Some(opt) = ctx.string(&p, item) else {
            continue;
        };
        let (name, value) = match opt.split_once([':', '=']) {
            Some((name, value)) => (name, Some(value)),
            None => (opt.as_str(), None),
        };
        if name != "no-new-privileges" {
            let m =
                format!("\"{opt}\" is not implemented yet, ignored (only no-new-privileges is)");
            ctx.warn(&p, line, &m);
            continue;
        }
        match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") => *no_new_privileges = true,
            Some("false") => *no_new_privileges = false,
            Some(_) => ctx.error(
                &p,
                line,
                format!(
                    "expected no-new-privileges, no-new-privileges:true or no-new-privileges:false, found \"{opt}\""
                ),
            ),
        }
    }
}

/// `cap_add` / `cap_drop`: a list of capabilities, each kept once.
fn capabilities(ctx: &mut Ctx, path: &str, node: &Node) -> Vec<String> {
    let mut out = Vec::new();
    for (i, item) in ctx.sequence(path, node).iter().enumerate() {
        let p = index(path, i);
        let Some(name) = ctx.string(&p, item) else {
            continue;
        };
        match capability(&name) {
            Some(cap) if out.contains(&cap) => {}
            Some(cap) => out.push(cap),
            None => ctx.error(
                &p,
                yaml::line(item),
                format!(
                    "unknown capability \"{name}\": expected a Linux capability such as NET_ADMIN or CAP_SYS_TIME, or ALL"
                ),
            ),
        }
    }
    out
}

/// `restart:` (Compose, not Swarm). YAML 1.1 loaders read `no` as false,
/// so a boolean false is accepted too. `on-failure:0` means no limit, as
/// in Docker.
fn restart(ctx: &mut Ctx, path: &str, node: &Node) -> Option<RestartPolicy> {
    let line = yaml::line(node);
    let text = match &node.data {
        YamlData::Value(Scalar::String(s)) => s.to_string(),
        YamlData::Value(Scalar::Boolean(false)) => "no".to_string(),
        _ => {
            let found = yaml::describe(node);
            ctx.error(
                path,
                line,
                format!("expected {RESTART_VALUES}, found {found}"),
            );
            return None;
        }
    };
    let condition = |condition| RestartPolicy {
        condition,
        ..RestartPolicy::default()
    };
    match text.as_str() {
        "no" => Some(condition(RestartCondition::None)),
        "always" | "unless-stopped" => Some(condition(RestartCondition::Any)),
        "on-failure" => Some(condition(RestartCondition::OnFailure)),
        _ => {
            let Some(n) = text.strip_prefix("on-failure:") else {
                let m = format!("expected {RESTART_VALUES}, found \"{text}\"");
                ctx.error(path, line, m);
                return None;
            };
            let digits = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
            let Some(n) = n.parse::<u32>().ok().filter(|_| digits) else {
                let m = format!(
                    "invalid retry count in \"{text}\": expected on-failure:N with N a non-negative integer no larger than {}",
                    u32::MAX
                );
                ctx.error(path, line, m);
                return None;
            };
            Some(RestartPolicy {
                condition: RestartCondition::OnFailure,
                max_attempts: (n > 0).then_some(n),
                ..RestartPolicy::default()
            })
        }
    }
}

/// `deploy.restart_policy`. As in Swarm, `max_attempts: 0` and `window: 0`
/// mean no limit; `delay: 0` means at once.
fn restart_policy(ctx: &mut Ctx, path: &str, node: &Node) -> RestartPolicy {
    let mut out = RestartPolicy::default();
    let entries = ctx.mapping(path, node);
    for e in keys::filter(ctx, &keys::RESTART_POLICY, path, entries) {
        if e.value.data.is_null() {
            continue;
        }
        let p = join(path, &e.key);
        match e.key.as_str() {
            "condition" => match ctx.string(&p, e.value).as_deref() {
                Some("none") => out.condition = RestartCondition::None,
                Some("on-failure") => out.condition = RestartCondition::OnFailure,
                Some("any") => out.condition = RestartCondition::Any,
                Some(other) => ctx.error(
                    &p,
                    yaml::line(e.value),
                    format!("expected none, on-failure or any, found \"{other}\""),
                ),
                None => {}
            },
            "delay" => out.delay_ms = ctx.duration_ms(&p, e.value, true),
            "max_attempts" => {
                let n = ctx.uint(&p, e.value, u64::from(u32::MAX));
                out.max_attempts = n.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0);
            }
            "window" => out.window_ms = ctx.duration_ms(&p, e.value, true).filter(|ms| *ms > 0),
            _ => {}
        }
    }
    out
}
