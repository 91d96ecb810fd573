//! `x-atoll.disconnect`: the edge policy of a service.

use super::super::*;
use super::{ok, one_error, web};

fn policy(body: &str) -> Disconnect {
    let text = web(&format!("x-atoll:\n  disconnect:\n{}", indent(body)));
    let parsed = ok(&text);
    assert_eq!(parsed.warnings, Vec::<String>::new());
    parsed.app.services["web"].disconnect
}

fn indent(body: &str) -> String {
    body.lines().map(|l| format!("    {l}\n")).collect()
}

#[test]
fn defaults_replace_at_once_as_before() {
    let d = ok(&web("")).app.services["web"].disconnect;
    assert_eq!(d, Disconnect::default());
    assert_eq!(
        (d.lost_after_ms, d.replace, d.reconcile, d.stop_after_ms),
        (0, true, HealPolicy::BestScore, None)
    );
}

#[test]
fn every_key() {
    let d = policy("lost_after: 30s\nreplace: false\nreconcile: keep_original\nstop_after: 10m");
    assert_eq!(d.lost_after_ms, 30_000);
    assert!(!d.replace);
    assert_eq!(d.reconcile, HealPolicy::KeepOriginal);
    assert_eq!(d.stop_after_ms, Some(600_000));
    assert_eq!(
        policy("reconcile: keep_replacement").reconcile,
        HealPolicy::KeepReplacement
    );
    assert_eq!(policy("lost_after: 0s").lost_after_ms, 0);
}

#[test]
fn bad_values_name_what_is_wrong() {
    let text = web("x-atoll:\n  disconnect:\n    reconcile: newest");
    let e = one_error(&text, "services.web.x-atoll.disconnect.reconcile", 6);
    assert_eq!(
        e.message,
        "expected keep_original, keep_replacement or best_score, found \"newest\""
    );
    let text = web("x-atoll:\n  disconnect:\n    lost_after: soon");
    one_error(&text, "services.web.x-atoll.disconnect.lost_after", 6);
    let text = web("x-atoll:\n  disconnect:\n    keep: true");
    let e = one_error(&text, "services.web.x-atoll.disconnect.keep", 6);
    assert_eq!(e.message, "unknown key");
}

#[test]
fn the_policy_is_not_part_of_what_runs() {
    // Changing it must restart nothing: it is left out of the serialized
    // service when it is the default, and the scheduler leaves it out of
    // the spec hash.
    let json = serde_json::to_value(&ok(&web("")).app.services["web"]).expect("json");
    assert!(json.get("disconnect").is_none());
}
