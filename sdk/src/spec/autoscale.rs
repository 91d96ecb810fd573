//! `x-atoll.autoscale`: how many instances a service runs, decided from
//! its load between `min` and `max`.
//!
//! ```yaml
//! x-atoll:
//!   autoscale:
//!     min: 1                 # 0: scale to zero (components only)
//!     max: 6
//!     target: { inflight: 4 }  # or rps: 100, or cpu: 50 (% of one CPU)
//!     scale_up_window: 6s
//!     scale_down_window: 60s
//! ```

use saphyr::{Scalar, YamlData};

use super::ctx::{Ctx, join};
use super::keys;
use super::yaml::{self, Node};
use super::{Autoscale, ScaleMetric};

pub(super) const DEFAULT_UP_WINDOW_MS: u64 = 6_000;
pub(super) const DEFAULT_DOWN_WINDOW_MS: u64 = 60_000;
/// Largest `max`: a guard against typos, far above any small fleet.
const MAX_REPLICAS: u64 = 1_000;

/// `x-atoll.autoscale` at `path` (its key on `line`); `None` when invalid
/// (errors were given).
pub(super) fn autoscale(ctx: &mut Ctx, path: &str, line: usize, node: &Node) -> Option<Autoscale> {
    if !node.data.is_mapping() {
        ctx.mapping(path, node);
        return None;
    }
    let errors_before = ctx.errors.len();
    let mut out = Autoscale {
        min: 1,
        max: 0,
        metric: ScaleMetric::Inflight,
        target_milli: 0,
        scale_up_window_ms: DEFAULT_UP_WINDOW_MS,
        scale_down_window_ms: DEFAULT_DOWN_WINDOW_MS,
    };
    let mut has_max = false;
    let mut has_target = false;
    let entries = ctx.mapping(path, node);
    for e in keys::filter(ctx, &keys::AUTOSCALE, path, entries) {
        let p = join(path, &e.key);
        match e.key.as_str() {
            "min" => {
                if let Some(n) = ctx.uint(&p, e.value, MAX_REPLICAS) {
                    out.min = n as u32;
                }
            }
            "max" => {
                has_max = true;
                if let Some(n) = ctx.uint(&p, e.value, MAX_REPLICAS) {
                    if n == 0 {
                        ctx.error(&p, yaml::line(e.value), "must be at least 1");
                    }
                    out.max = n as u32;
                }
            }
            "target" => {
                has_target = true;
                if let Some((metric, milli)) = target(ctx, &p, e.line, e.value) {
                    out.metric = metric;
                    out.target_milli = milli;
                }
            }
            "scale_up_window" => {
                if let Some(ms) = ctx.duration_ms(&p, e.value, true) {
                    out.scale_up_window_ms = ms;
                }
            }
            "scale_down_window" => {
                if let Some(ms) = ctx.duration_ms(&p, e.value, true) {
                    out.scale_down_window_ms = ms;
                }
            }
            _ => {}
        }
    }
    if !has_max {
        ctx.error(path, line, "missing `max`: the most instances to run");
    }
    if !has_target {
        let m = "missing `target`: one of { inflight: N }, { rps: N }, { cpu: PERCENT }";
        ctx.error(path, line, m);
    }
    if has_max && out.max > 0 && out.min > out.max {
        let m = format!("`min` ({}) is above `max` ({})", out.min, out.max);
        ctx.error(path, line, m);
    }
    (ctx.errors.len() == errors_before).then_some(out)
}

/// `target: { inflight | rps | cpu: value }`: exactly one, above zero.
fn target(ctx: &mut Ctx, path: &str, line: usize, node: &Node) -> Option<(ScaleMetric, u64)> {
    let entries = ctx.mapping(path, node);
    let entries = keys::filter(ctx, &keys::AUTOSCALE_TARGET, path, entries);
    if entries.len() != 1 {
        let m = "set exactly one of `inflight`, `rps` and `cpu`";
        ctx.error(path, line, m);
        return None;
    }
    let e = &entries[0];
    let metric = match e.key.as_str() {
        "inflight" => ScaleMetric::Inflight,
        "rps" => ScaleMetric::Rps,
        _ => ScaleMetric::Cpu,
    };
    let p = join(path, &e.key);
    let value = match &e.value.data {
        YamlData::Value(Scalar::Integer(i)) => Some(*i as f64),
        YamlData::Value(Scalar::FloatingPoint(f)) => Some(f.into_inner()),
        YamlData::Value(Scalar::String(s)) => s.trim().trim_end_matches('%').trim().parse().ok(),
        _ => None,
    };
    match value {
        Some(v) if v > 0.0 && v <= 1e9 => Some((metric, (v * 1000.0).round().max(1.0) as u64)),
        _ => {
            let what = match metric {
                ScaleMetric::Cpu => "a percentage of one CPU above 0, such as 50",
                _ => "a number above 0, such as 4",
            };
            let m = format!("expected {what}, found {}", yaml::describe(e.value));
            ctx.error(&p, yaml::line(e.value), m);
            None
        }
    }
}
