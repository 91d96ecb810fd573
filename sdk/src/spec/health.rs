//! Health checks: Compose's `healthcheck` (a command run inside the
//! container, with Docker's semantics) and `x-atoll.health` (an HTTP probe,
//! for components and containers alike).
//!
//! Both give a [`Health`]: `ready` gates traffic, `live` restarts. A Compose
//! healthcheck uses the same check for both, as Swarm replaces an unhealthy
//! container; `x-atoll.health` may give liveness its own check, or none.
//! Which of the two a service may use (and not both) is settled by
//! [`super::service`], which knows whether the service is a component.

use saphyr::{Scalar, YamlData};

use super::ctx::boolean;
use super::ctx::{Ctx, Entry, index, join};
use super::keys;
use super::units::{parse_duration_ms_or_zero, parse_port};
use super::yaml::{self, Node};
use super::{Check, Health, Probe};

/// The forms `healthcheck.test` accepts, for messages.
const TEST_FORMS: &str =
    "[\"CMD\", program, args...], [\"CMD-SHELL\", command], [\"NONE\"] or a command string";

/// The timing of a check; [`Timing::COMPOSE`] and [`Timing::ATOLL`] are the
/// defaults of `healthcheck` and `x-atoll.health`.
#[derive(Debug, Clone, Copy)]
struct Timing {
    interval_ms: u64,
    timeout_ms: u64,
    retries: u32,
    start_period_ms: u64,
}

impl Timing {
    /// Docker's defaults: 30s, 30s, 3 retries, no start period.
    const COMPOSE: Timing = Timing {
        interval_ms: 30_000,
        timeout_ms: 30_000,
        retries: 3,
        start_period_ms: 0,
    };

    /// `x-atoll.health`: an HTTP probe is cheap, so it runs more often.
    const ATOLL: Timing = Timing {
        interval_ms: 2_000,
        timeout_ms: 1_000,
        retries: 3,
        start_period_ms: 0,
    };

    /// Reads `interval`, `timeout`, `retries` or `start_period`; other keys
    /// are left alone.
    fn read(&mut self, ctx: &mut Ctx, key: &str, path: &str, node: &Node) {
        match key {
            "interval" => {
                if let Some(ms) = positive_duration(ctx, path, node) {
                    self.interval_ms = ms;
                }
            }
            "timeout" => {
                if let Some(ms) = positive_duration(ctx, path, node) {
                    self.timeout_ms = ms;
                }
            }
            "retries" => {
                if let Some(n) = retries(ctx, path, node) {
                    self.retries = n;
                }
            }
            "start_period" => {
                if let Some(ms) = ctx.duration_ms(path, node, true) {
                    self.start_period_ms = ms;
                }
            }
            _ => {}
        }
    }

    fn check(self, probe: Probe) -> Check {
        Check {
            probe,
            interval_ms: self.interval_ms,
            timeout_ms: self.timeout_ms,
            retries: self.retries,
            start_period_ms: self.start_period_ms,
        }
    }
}

/// A duration greater than zero: a zero interval would probe without
/// pause, and a zero timeout would fail every probe.
fn positive_duration(ctx: &mut Ctx, path: &str, node: &Node) -> Option<u64> {
    let zero = match &node.data {
        YamlData::Value(Scalar::Integer(0)) => true,
        YamlData::Value(Scalar::String(s)) => parse_duration_ms_or_zero(s) == Ok(0),
        _ => false,
    };
    if zero {
        let m = "must be longer than zero: expected a duration such as 1s or 30s";
        ctx.error(path, yaml::line(node), m);
        return None;
    }
    ctx.duration_ms(path, node, false)
}

/// Failures in a row that make an instance unhealthy: at least 1.
fn retries(ctx: &mut Ctx, path: &str, node: &Node) -> Option<u32> {
    let n = ctx.uint(path, node, u64::from(u32::MAX))?;
    if n == 0 {
        ctx.error(path, yaml::line(node), "must be at least 1");
        return None;
    }
    u32::try_from(n).ok()
}

/// A service's `healthcheck:`, as read.
pub(super) struct Healthcheck {
    /// Line of the `healthcheck` key.
    pub line: usize,
    /// `disable: true` or `test: ["NONE"]`: the service has no check.
    pub disabled: bool,
    /// The check; `None` when disabled or invalid (errors were given).
    pub health: Option<Health>,
}

/// What `test` asks for.
enum Test {
    Run(Vec<String>),
    /// `["NONE"]`.
    Disabled,
}

/// `healthcheck:` at `path` (its key on `line`); `None` when null (not set).
pub(super) fn healthcheck(
    ctx: &mut Ctx,
    path: &str,
    line: usize,
    node: &Node,
) -> Option<Healthcheck> {
    if node.data.is_null() {
        return None;
    }
    let mut out = Healthcheck {
        line,
        disabled: false,
        health: None,
    };
    if !node.data.is_mapping() {
        ctx.mapping(path, node);
        return Some(out);
    }
    let errors_before = ctx.errors.len();
    let mut test = None;
    let mut has_test = false;
    // `None`: `disable` has an invalid value (an error was given).
    let mut disable = Some(false);
    let mut timing = Timing::COMPOSE;
    let entries = ctx.mapping(path, node);
    for e in keys::filter(ctx, &keys::HEALTHCHECK, path, entries) {
        if e.value.data.is_null() {
            continue;
        }
        let p = join(path, &e.key);
        match e.key.as_str() {
            "test" => {
                has_test = true;
                test = test_value(ctx, &p, e.value);
            }
            "disable" => disable = boolean(ctx, &p, e.value),
            key => timing.read(ctx, key, &p, e.value),
        }
    }
    out.disabled = disable == Some(true) || matches!(test, Some(Test::Disabled));
    if out.disabled {
        return Some(out);
    }
    // Whether a test is needed is unknown when `disable` is invalid.
    if !has_test && disable.is_some() {
        let m = "missing `test`: the command to run, such as [\"CMD\", \"curl\", \"-f\", \"http://localhost/\"] (leave `healthcheck` out to use the image's HEALTHCHECK; atoll does not yet change only its timing)";
        ctx.error(path, line, m);
    }
    if let Some(Test::Run(argv)) = test
        && ctx.errors.len() == errors_before
    {
        let check = timing.check(Probe::Command { argv });
        out.health = Some(Health {
            ready: check.clone(),
            live: Some(check),
        });
    }
    Some(out)
}

/// `healthcheck.test`: a list (`CMD`, `CMD-SHELL`, `NONE`) or a string,
/// which is a shell command as with `CMD-SHELL`.
fn test_value(ctx: &mut Ctx, path: &str, node: &Node) -> Option<Test> {
    let line = yaml::line(node);
    let items = match &node.data {
        YamlData::Value(Scalar::String(s)) => return shell(ctx, path, line, s),
        YamlData::Sequence(items) => items,
        _ => {
            let found = yaml::describe(node);
            ctx.error(path, line, format!("expected {TEST_FORMS}, found {found}"));
            return None;
        }
    };
    let mut words = Vec::with_capacity(items.len());
    let mut complete = true;
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        match &item.data {
            YamlData::Value(Scalar::Null) | YamlData::Sequence(_) | YamlData::Mapping(_) => {
                let found = yaml::describe(item);
                ctx.error(
                    &p,
                    yaml::line(item),
                    format!("expected a string, found {found}"),
                );
                complete = false;
            }
            // Numbers and booleans as written, as in `command`.
            _ => match ctx.scalar_text(&p, item) {
                Some(w) => words.push(w),
                None => complete = false,
            },
        }
    }
    if !complete {
        return None;
    }
    let Some((kind, rest)) = words.split_first() else {
        ctx.error(path, line, format!("empty test: expected {TEST_FORMS}"));
        return None;
    };
    match kind.as_str() {
        "CMD" if rest.first().is_some_and(|p| !p.is_empty()) => Some(Test::Run(rest.to_vec())),
        "CMD" => {
            let m = "CMD needs a program to run, such as [\"CMD\", \"curl\", \"-f\", \"http://localhost/\"]";
            ctx.error(path, line, m);
            None
        }
        "CMD-SHELL" if rest.len() == 1 => shell(ctx, path, line, &rest[0]),
        "CMD-SHELL" => {
            let m = "CMD-SHELL takes one command line, such as [\"CMD-SHELL\", \"curl -f http://localhost/ || exit 1\"]";
            ctx.error(path, line, m);
            None
        }
        "NONE" if rest.is_empty() => Some(Test::Disabled),
        "NONE" => {
            ctx.error(path, line, "NONE takes nothing after it");
            None
        }
        other => {
            let m = format!("unknown test type \"{other}\": expected {TEST_FORMS}");
            ctx.error(path, line, m);
            None
        }
    }
}

/// A `CMD-SHELL` command line, run as `/bin/sh -c <command>`.
fn shell(ctx: &mut Ctx, path: &str, line: usize, command: &str) -> Option<Test> {
    if command.trim().is_empty() {
        ctx.error(path, line, format!("empty command: expected {TEST_FORMS}"));
        return None;
    }
    let argv = ["/bin/sh", "-c", command].map(String::from).to_vec();
    Some(Test::Run(argv))
}

/// A service's `x-atoll.health:`, as read.
pub(super) struct AtollHealth {
    /// Line of the `health` key.
    pub line: usize,
    /// `None` when invalid (errors were given).
    pub health: Option<Health>,
}

/// `x-atoll.health:` at `path` (its key on `line`); `None` when null.
pub(super) fn atoll_health(
    ctx: &mut Ctx,
    path: &str,
    line: usize,
    node: &Node,
) -> Option<AtollHealth> {
    if node.data.is_null() {
        return None;
    }
    let mut out = AtollHealth { line, health: None };
    if !node.data.is_mapping() {
        ctx.mapping(path, node);
        return Some(out);
    }
    let errors_before = ctx.errors.len();
    let entries = ctx.mapping(path, node);
    let (liveness, entries): (Vec<_>, Vec<_>) = keys::filter(ctx, &keys::HEALTH, path, entries)
        .into_iter()
        .partition(|e| e.key == "liveness");
    let ready = http_check(ctx, path, line, entries, Parent::Top);
    let live = match liveness.first() {
        // Absent (or null): the readiness check restarts too.
        Some(e) if !e.value.data.is_null() => live(ctx, &join(path, "liveness"), e, &ready),
        _ => Live::Same,
    };
    if ctx.errors.len() > errors_before {
        return Some(out);
    }
    if let Some(ready) = ready {
        let live = match live {
            Live::Same => Some(ready.clone()),
            Live::Never => None,
            Live::Own(check) => Some(check),
        };
        out.health = Some(Health { ready, live });
    }
    Some(out)
}

/// What `liveness` says.
enum Live {
    /// Absent or `true`: the readiness check.
    Same,
    /// `false`: never restarted for its health.
    Never,
    Own(Check),
}

/// `liveness`: `false`, `true`, or a mapping whose missing keys inherit
/// from the readiness check (`ready`; `None` if it is invalid).
fn live(ctx: &mut Ctx, path: &str, e: &Entry, ready: &Option<Check>) -> Live {
    let node = e.value;
    match &node.data {
        YamlData::Mapping(_) => {
            let entries = ctx.mapping(path, node);
            let entries = keys::filter(ctx, &keys::LIVENESS, path, entries);
            let parent = Parent::Ready(ready.as_ref());
            http_check(ctx, path, e.line, entries, parent).map_or(Live::Same, Live::Own)
        }
        YamlData::Value(Scalar::Boolean(false)) => Live::Never,
        YamlData::Value(Scalar::Boolean(true)) => Live::Same,
        YamlData::Value(Scalar::String(s)) if s == "false" => Live::Never,
        YamlData::Value(Scalar::String(s)) if s == "true" => Live::Same,
        _ => {
            let found = yaml::describe(node);
            let m = format!(
                "expected a mapping (http, port, interval, timeout, retries, start_period) or false, found {found}"
            );
            ctx.error(path, yaml::line(node), m);
            Live::Same
        }
    }
}

/// Where the keys an HTTP check does not give come from.
#[derive(Clone, Copy)]
enum Parent<'c> {
    /// `x-atoll.health` itself: the defaults, and `http` is required.
    Top,
    /// Its `liveness`: the readiness check (`None` if that is invalid).
    Ready(Option<&'c Check>),
}

/// The HTTP check of `x-atoll.health` or of its `liveness` mapping, from
/// the (already filtered) `entries` of the mapping at `path` (its key on
/// `line`). `None` when a value is invalid or missing (errors were given).
fn http_check(
    ctx: &mut Ctx,
    path: &str,
    line: usize,
    entries: Vec<Entry>,
    parent: Parent,
) -> Option<Check> {
    let errors_before = ctx.errors.len();
    let (mut http, mut port, mut timing) = match parent {
        Parent::Ready(Some(c)) => {
            let (http, port) = match &c.probe {
                Probe::Http { path, port } => (Some(path.clone()), *port),
                Probe::Command { .. } => (None, None),
            };
            let timing = Timing {
                interval_ms: c.interval_ms,
                timeout_ms: c.timeout_ms,
                retries: c.retries,
                start_period_ms: c.start_period_ms,
            };
            (http, port, timing)
        }
        Parent::Top | Parent::Ready(None) => (None, None, Timing::ATOLL),
    };
    let mut has_http = false;
    for e in entries {
        if e.value.data.is_null() {
            continue;
        }
        let p = join(path, &e.key);
        match e.key.as_str() {
            "http" => {
                has_http = true;
                http = http_path(ctx, &p, e.value);
            }
            "port" => port = health_port(ctx, &p, e.value),
            key => timing.read(ctx, key, &p, e.value),
        }
    }
    if !has_http && matches!(parent, Parent::Top) {
        let m = "missing `http`: the path to probe, such as /healthz";
        ctx.error(path, line, m);
    }
    if ctx.errors.len() > errors_before {
        return None;
    }
    Some(timing.check(Probe::Http { path: http?, port }))
}

/// The path an HTTP probe requests: starts with `/`, no whitespace.
fn http_path(ctx: &mut Ctx, path: &str, node: &Node) -> Option<String> {
    let s = ctx.string(path, node)?;
    if !s.starts_with('/') || s.contains(char::is_whitespace) {
        let m = format!("expected a path starting with /, such as /healthz, found \"{s}\"");
        ctx.error(path, yaml::line(node), m);
        return None;
    }
    Some(s)
}

/// The container port to probe: an integer or a string of digits, 1-65535.
fn health_port(ctx: &mut Ctx, path: &str, node: &Node) -> Option<u16> {
    let text = match &node.data {
        YamlData::Value(Scalar::Integer(i)) => i.to_string(),
        YamlData::Value(Scalar::String(s)) => s.to_string(),
        _ => {
            let found = yaml::describe(node);
            let m = format!("expected a port number (1-65535), found {found}");
            ctx.error(path, yaml::line(node), m);
            return None;
        }
    };
    parse_port(&text)
        .map_err(|m| ctx.error(path, yaml::line(node), m))
        .ok()
}
