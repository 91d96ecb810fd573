//! Large and exact: a file near the API's 1 MiB limit parses in time
//! linear in its size (found by fuzzing: a mapping's key lookups and, for
//! a file that is not ASCII, each scalar's offsets were quadratic), and an
//! app's JSON form reads back equal (found by fuzzing: a ratio lost its
//! last bit).

use std::time::{Duration, Instant};

use super::ok;

/// A service with `n` environment variables, after a non-ASCII comment.
fn many_variables(n: usize) -> String {
    let mut text = String::from("# café\nservices:\n  web:\n    image: web\n    environment:\n");
    for i in 0..n {
        text.push_str(&format!("      VAR_{i}: \"{i}\"\n"));
    }
    text
}

fn time_to_parse(text: &str) -> Duration {
    let start = Instant::now();
    let parsed = ok(text);
    let elapsed = start.elapsed();
    assert!(!parsed.app.services["web"].environment.is_empty());
    elapsed
}

#[test]
fn a_large_mapping_parses_in_linear_time() {
    let (small, large) = (many_variables(2_000), many_variables(32_000));
    // The best of five of each: a busy machine slows some runs, never
    // speeds one up.
    let best = |text: &str| {
        (0..5)
            .map(|_| time_to_parse(text))
            .min()
            .unwrap_or_default()
    };
    let (t_small, t_large) = (best(&small), best(&large));
    // Sixteen times the keys: about sixteen times the time when linear,
    // far more when quadratic (before the fix: 550 times).
    assert!(
        t_large < t_small * 32,
        "2,000 keys: {t_small:?}, 32,000 keys: {t_large:?}"
    );
}

#[test]
fn an_app_reads_back_from_its_json_form_equal() {
    let parsed = ok("services:
  web:
    image: web
    deploy:
      update_config:
        max_failure_ratio: 0.9856906946328695
");
    let json = serde_json::to_vec(&parsed.app).expect("to json");
    let back: crate::spec::App = serde_json::from_slice(&json).expect("from json");
    assert_eq!(back, parsed.app);
}
