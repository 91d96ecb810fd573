//! `x-atoll.disconnect`: the edge policy of a service, modelled on
//! Nomad's `disconnect` block.
//!
//! ```yaml
//! x-atoll:
//!   disconnect:
//!     lost_after: 30s          # default 0s: lost as soon as the host is down
//!     replace: true            # default true
//!     reconcile: best_score    # keep_original | keep_replacement | best_score
//!     stop_after: 10m          # default: never
//! ```

use super::ctx::boolean;
use super::ctx::{Ctx, join};
use super::keys;
use super::yaml::{self, Node};
use super::{Disconnect, HealPolicy};

pub(super) fn disconnect(ctx: &mut Ctx, path: &str, node: &Node) -> Disconnect {
    let mut out = Disconnect::default();
    let entries = ctx.mapping(path, node);
    for e in keys::filter(ctx, &keys::DISCONNECT, path, entries) {
        if e.value.data.is_null() {
            continue;
        }
        let p = join(path, &e.key);
        match e.key.as_str() {
            "lost_after" => {
                if let Some(ms) = ctx.duration_ms(&p, e.value, true) {
                    out.lost_after_ms = ms;
                }
            }
            "replace" => {
                if let Some(b) = boolean(ctx, &p, e.value) {
                    out.replace = b;
                }
            }
            "reconcile" => {
                if let Some(policy) = heal_policy(ctx, &p, e.value) {
                    out.reconcile = policy;
                }
            }
            "stop_after" => out.stop_after_ms = ctx.duration_ms(&p, e.value, false),
            _ => {}
        }
    }
    out
}

fn heal_policy(ctx: &mut Ctx, path: &str, node: &Node) -> Option<HealPolicy> {
    let text = ctx.string(path, node)?;
    let policy = [
        HealPolicy::KeepOriginal,
        HealPolicy::KeepReplacement,
        HealPolicy::BestScore,
    ]
    .into_iter()
    .find(|p| p.as_str() == text);
    if policy.is_none() {
        let m = format!("expected keep_original, keep_replacement or best_score, found \"{text}\"");
        ctx.error(path, yaml::line(node), m);
    }
    policy
}
