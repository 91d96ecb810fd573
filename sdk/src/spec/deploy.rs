//! `deploy:` — mode, replicas, placement (see [`super::placement`]),
//! resources, restart policy (see [`super::container`]) and the update and
//! rollback configs, in the syntax Docker Swarm defined for Compose.

use saphyr::{Scalar, YamlData};

use super::container::ContainerKeys;
use super::ctx::{Ctx, join};
use super::keys::{self, Section};
use super::placement::placement;
use super::units::{parse_bytes, parse_cpus_milli};
use super::yaml::{self, Node};
use super::{Deploy, FailureAction, Mode, ResourceSpec, Resources, UpdateConfig, UpdateOrder};

/// `restart_policy` goes to `container`, with the other container keys.
pub(super) fn deploy(
    ctx: &mut Ctx,
    path: &str,
    node: &Node,
    container: &mut ContainerKeys,
) -> Deploy {
    let mut out = Deploy::default();
    let mut replicas_line = None;
    let entries = ctx.mapping(path, node);
    for e in keys::filter(ctx, &keys::DEPLOY, path, entries) {
        let p = join(path, &e.key);
        let line = yaml::line(e.value);
        match e.key.as_str() {
            "mode" => match ctx.string(&p, e.value).as_deref() {
                Some("replicated") => out.mode = Mode::Replicated,
                Some("global") => out.mode = Mode::Global,
                Some(job @ ("replicated-job" | "global-job")) => ctx.error(
                    &p,
                    line,
                    format!("\"{job}\" is not supported: expected replicated or global"),
                ),
                Some(other) => ctx.error(
                    &p,
                    line,
                    format!("expected replicated or global, found \"{other}\""),
                ),
                None => {}
            },
            "replicas" => {
                replicas_line = Some(e.line);
                if let Some(n) = ctx.uint(&p, e.value, u64::from(u32::MAX)) {
                    out.replicas = u32::try_from(n).unwrap_or(u32::MAX);
                }
            }
            "placement" => out.placement = placement(ctx, &p, e.value),
            "resources" => out.resources = resources(ctx, &p, e.value, container),
            "restart_policy" => container.restart_policy(ctx, &p, e.line, e.value),
            "update_config" => {
                let default = UpdateConfig::default();
                out.update = update_config(ctx, &p, e.value, &keys::UPDATE_CONFIG, default);
            }
            "rollback_config" => {
                let default = UpdateConfig::rollback_default();
                out.rollback = update_config(ctx, &p, e.value, &keys::ROLLBACK_CONFIG, default);
            }
            _ => {}
        }
    }
    if let (Mode::Global, Some(line)) = (out.mode, replicas_line) {
        let p = join(path, "replicas");
        ctx.warn(
            &p,
            line,
            "ignored in global mode (one instance per matching host)",
        );
    }
    out
}

/// `update_config` or `rollback_config` (`section` tells which): the keys
/// given replace those of `default`. A null value means "not set".
fn update_config(
    ctx: &mut Ctx,
    path: &str,
    node: &Node,
    section: &Section,
    default: UpdateConfig,
) -> UpdateConfig {
    let is_rollback = std::ptr::eq(section, &keys::ROLLBACK_CONFIG);
    let mut out = default;
    let entries = ctx.mapping(path, node);
    for e in keys::filter(ctx, section, path, entries) {
        if e.value.data.is_null() {
            continue;
        }
        let p = join(path, &e.key);
        let line = yaml::line(e.value);
        match e.key.as_str() {
            "parallelism" => {
                if let Some(n) = ctx.uint(&p, e.value, u64::from(u32::MAX)) {
                    out.parallelism = u32::try_from(n).unwrap_or(u32::MAX);
                }
            }
            "delay" => out.delay_ms = ctx.duration_ms(&p, e.value, true).unwrap_or(out.delay_ms),
            "monitor" => {
                out.monitor_ms = ctx.duration_ms(&p, e.value, true).unwrap_or(out.monitor_ms);
            }
            "order" => match ctx.string(&p, e.value).as_deref() {
                Some("stop-first") => out.order = UpdateOrder::StopFirst,
                Some("start-first") => out.order = UpdateOrder::StartFirst,
                Some(other) => ctx.error(
                    &p,
                    line,
                    format!("expected stop-first or start-first, found \"{other}\""),
                ),
                None => {}
            },
            "failure_action" => match ctx.string(&p, e.value).as_deref() {
                Some("pause") => out.failure_action = FailureAction::Pause,
                Some("continue") => out.failure_action = FailureAction::Continue,
                Some("rollback") if is_rollback => ctx.error(
                    &p,
                    line,
                    "a rollback cannot roll back: expected pause or continue",
                ),
                Some("rollback") => out.failure_action = FailureAction::Rollback,
                Some(other) => {
                    let expected = if is_rollback {
                        "pause or continue"
                    } else {
                        "pause, continue or rollback"
                    };
                    ctx.error(&p, line, format!("expected {expected}, found \"{other}\""));
                }
                None => {}
            },
            "max_failure_ratio" => {
                if let Some(r) = ratio(ctx, &p, e.value) {
                    out.max_failure_ratio = r;
                }
            }
            _ => {}
        }
    }
    out
}

/// A share from 0 to 1: a number, or a string holding one.
fn ratio(ctx: &mut Ctx, path: &str, node: &Node) -> Option<f64> {
    let value = match &node.data {
        YamlData::Value(Scalar::Integer(i)) => Some(*i as f64),
        YamlData::Value(Scalar::FloatingPoint(f)) => Some(f.into_inner()),
        YamlData::Value(Scalar::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match value {
        // NaN is outside every range.
        Some(r) if (0.0..=1.0).contains(&r) => Some(r),
        _ => {
            let found = match &node.data {
                YamlData::Value(Scalar::String(s)) => format!("\"{s}\""),
                YamlData::Value(Scalar::Integer(_) | Scalar::FloatingPoint(_)) => {
                    ctx.scalar_text(path, node).unwrap_or_default()
                }
                _ => yaml::describe(node),
            };
            let m = format!("expected a number from 0 to 1, such as 0.2, found {found}");
            ctx.error(path, yaml::line(node), m);
            None
        }
    }
}

fn resources(ctx: &mut Ctx, path: &str, node: &Node, container: &mut ContainerKeys) -> Resources {
    let mut out = Resources::default();
    let entries = ctx.mapping(path, node);
    for e in keys::filter(ctx, &keys::RESOURCES, path, entries) {
        let p = join(path, &e.key);
        match e.key.as_str() {
            "limits" => out.limits = spec(ctx, &p, e.value, &keys::LIMITS, Some(container)),
            "reservations" => out.reservations = spec(ctx, &p, e.value, &keys::RESERVATIONS, None),
            _ => {}
        }
    }
    out
}

/// `limits` (with `container`, which notes `pids`) or `reservations`. A
/// zero limit would stop the service from running at all, so it is refused
/// (omit the key for "no limit"); a zero reservation is harmless. `pids` is
/// a key of `limits` only (the catalogue makes it unknown in reservations).
fn spec(
    ctx: &mut Ctx,
    path: &str,
    node: &Node,
    section: &Section,
    mut container: Option<&mut ContainerKeys>,
) -> ResourceSpec {
    let is_limit = container.is_some();
    let mut out = ResourceSpec::default();
    let entries = ctx.mapping(path, node);
    for e in keys::filter(ctx, section, path, entries) {
        let p = join(path, &e.key);
        let line = yaml::line(e.value);
        let (value, zero) = match e.key.as_str() {
            "memory" => {
                out.memory = memory(ctx, &p, e.value);
                (out.memory.is_some(), out.memory == Some(0))
            }
            "cpus" => {
                out.cpus_milli = cpus(ctx, &p, e.value);
                (out.cpus_milli.is_some(), out.cpus_milli == Some(0))
            }
            "pids" => {
                if let Some(c) = container.as_deref_mut() {
                    c.note(&p, e.line);
                }
                out.pids = pids(ctx, &p, e.value);
                (out.pids.is_some(), out.pids == Some(0))
            }
            _ => (false, false),
        };
        if value && zero && is_limit {
            ctx.error(
                &p,
                line,
                "a limit must be greater than zero (omit it for the default: no limit on cpus, 1 GiB of memory and 4096 processes for a container)",
            );
        }
    }
    out
}

/// Bytes: a plain integer, or a string such as `64M` or `1.5G`.
fn memory(ctx: &mut Ctx, path: &str, node: &Node) -> Option<u64> {
    let line = yaml::line(node);
    let parsed = match &node.data {
        YamlData::Value(Scalar::Integer(i)) => u64::try_from(*i)
            .map_err(|_| format!("invalid size {i}: expected a non-negative number of bytes")),
        YamlData::Value(Scalar::String(s)) => parse_bytes(s).map_err(|e| e.to_string()),
        _ => {
            let found = yaml::describe(node);
            Err(format!(
                "expected a size such as 64M or 1.5G, found {found}"
            ))
        }
    };
    parsed.map_err(|m| ctx.error(path, line, m)).ok()
}

/// Most processes: a positive integer. Docker's `-1` for "unlimited" is
/// refused with a hint: a container always has a limit (4096 by default).
fn pids(ctx: &mut Ctx, path: &str, node: &Node) -> Option<u32> {
    if let YamlData::Value(Scalar::Integer(i)) = node.data
        && i < 0
    {
        let m = format!(
            "expected a positive integer, found {i} (a container always has a limit: 4096 without the key; give a larger number for more)"
        );
        ctx.error(path, yaml::line(node), m);
        return None;
    }
    let n = ctx.uint(path, node, u64::from(u32::MAX))?;
    u32::try_from(n).ok()
}

/// Thousandths of a CPU, from a number or a string (`0.5`, `"0.5"`, `2`).
fn cpus(ctx: &mut Ctx, path: &str, node: &Node) -> Option<u32> {
    let line = yaml::line(node);
    let parsed = match &node.data {
        YamlData::Value(Scalar::Integer(_) | Scalar::FloatingPoint(_) | Scalar::String(_)) => {
            // Numbers as written: `0.1` must not go through a float.
            let text = ctx.scalar_text(path, node).unwrap_or_default();
            parse_cpus_milli(&text).map_err(|e| e.to_string())
        }
        _ => {
            let found = yaml::describe(node);
            Err(format!(
                "expected a number of CPUs such as 0.5 or 2, found {found}"
            ))
        }
    };
    parsed.map_err(|m| ctx.error(path, line, m)).ok()
}
