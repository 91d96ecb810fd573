//! Health checks (`healthcheck`, `x-atoll.health`), rolling updates
//! (`deploy.update_config`, `deploy.rollback_config`) and canaries
//! (`x-atoll.canary`).

use super::super::*;
use super::{errors, ok, one_error, web};

/// The health of `services.web` with `body` under it.
fn health(body: &str) -> Option<Health> {
    ok(&web(body)).app.services["web"].health.clone()
}

/// A component service `api` with `x_atoll` under its `x-atoll` (after
/// `component`, on line 5) and `body` under the service (after `x-atoll`).
fn component(x_atoll: &str, body: &str) -> String {
    let mut text = String::from("services:\n  api:\n    x-atoll:\n      component: ./api.wasm\n");
    for l in x_atoll.lines() {
        text.push_str(&format!("      {l}\n"));
    }
    for l in body.lines() {
        text.push_str(&format!("    {l}\n"));
    }
    text
}

fn argv(words: &[&str]) -> Probe {
    Probe::Command {
        argv: words.iter().map(|w| w.to_string()).collect(),
    }
}

fn http(path: &str, port: Option<u16>) -> Probe {
    Probe::Http {
        path: path.into(),
        port,
    }
}

/// A check with Docker's default timing.
fn compose_check(probe: Probe) -> Check {
    Check {
        probe,
        interval_ms: 30_000,
        timeout_ms: 30_000,
        retries: 3,
        start_period_ms: 0,
    }
}

/// A check with `x-atoll.health`'s default timing.
fn atoll_check(probe: Probe) -> Check {
    Check {
        probe,
        interval_ms: 2_000,
        timeout_ms: 1_000,
        retries: 3,
        start_period_ms: 0,
    }
}

/// The same check for readiness and liveness, as a Compose healthcheck gives.
fn both(check: Check) -> Option<Health> {
    Some(Health {
        ready: check.clone(),
        live: Some(check),
    })
}

// --- healthcheck -----------------------------------------------------------

#[test]
fn healthcheck_cmd_with_docker_defaults() {
    let h = health("healthcheck:\n  test: [\"CMD\", \"curl\", \"-f\", \"http://localhost/\"]");
    let check = compose_check(argv(&["curl", "-f", "http://localhost/"]));
    assert_eq!(h, both(check));
    // Numbers are kept as written, as in `command`.
    let h = health("healthcheck:\n  test: [CMD, sleep, 1.50]").unwrap();
    assert_eq!(h.ready.probe, argv(&["sleep", "1.50"]));
}

#[test]
fn healthcheck_cmd_shell_and_string_run_a_shell() {
    let shell = argv(&["/bin/sh", "-c", "curl -f http://localhost/ || exit 1"]);
    let h =
        health("healthcheck:\n  test: [\"CMD-SHELL\", \"curl -f http://localhost/ || exit 1\"]");
    assert_eq!(h, both(compose_check(shell.clone())));
    let h = health("healthcheck:\n  test: curl -f http://localhost/ || exit 1");
    assert_eq!(h, both(compose_check(shell)));
}

#[test]
fn healthcheck_none_and_disable_mean_no_check() {
    assert_eq!(health("healthcheck:\n  test: [\"NONE\"]"), None);
    assert_eq!(health("healthcheck:\n  disable: true"), None);
    // `disable` wins over a test (whose timing is still validated).
    assert_eq!(
        health("healthcheck:\n  test: [CMD, \"true\"]\n  interval: 5s\n  disable: true"),
        None
    );
    assert_eq!(health("healthcheck:\n  disable: \"true\""), None);
    // `disable: false` is the default.
    let h = health("healthcheck:\n  disable: false\n  test: [CMD, \"true\"]");
    assert_eq!(h, both(compose_check(argv(&["true"]))));
    // A null healthcheck is not set.
    assert_eq!(health("healthcheck:"), None);
    // No healthcheck at all: ready as soon as it runs.
    assert_eq!(health("environment: {}"), None);
    let e = one_error(
        &web("healthcheck:\n  disable: yes"),
        "services.web.healthcheck.disable",
        5,
    );
    assert_eq!(e.message, "expected true or false, found \"yes\"");
}

#[test]
fn healthcheck_timing() {
    let parsed = ok(&web(
        "healthcheck:\n  test: [CMD, check]\n  interval: 5s\n  timeout: 1500ms\n  retries: 5\n  start_period: 1m\n  start_interval: 1s",
    ));
    let check = Check {
        probe: argv(&["check"]),
        interval_ms: 5_000,
        timeout_ms: 1_500,
        retries: 5,
        start_period_ms: 60_000,
    };
    assert_eq!(parsed.app.services["web"].health, both(check));
    assert_eq!(
        parsed.warnings,
        [
            "services.web.healthcheck.start_interval: ignored: atoll probes every `interval`, during the start period too (line 10)"
        ]
    );
    // A zero start period is the default; `0` and `0s` are both fine.
    for zero in ["0", "0s"] {
        let h = health(&format!(
            "healthcheck:\n  test: [CMD, x]\n  start_period: {zero}"
        ));
        assert_eq!(h.unwrap().ready.start_period_ms, 0);
    }
    // Null timing keys keep the defaults.
    let h = health("healthcheck:\n  test: [CMD, x]\n  interval:\n  retries: ~");
    assert_eq!(h, both(compose_check(argv(&["x"]))));
}

#[test]
fn healthcheck_test_errors_name_the_test() {
    let path = "services.web.healthcheck.test";
    let cases: &[(&str, &str)] = &[
        ("[]", "empty test: expected"),
        ("[FOO, x]", "unknown test type \"FOO\""),
        ("[cmd, x]", "unknown test type \"cmd\""),
        ("[CMD]", "CMD needs a program to run"),
        ("[CMD, \"\"]", "CMD needs a program to run"),
        ("[CMD-SHELL]", "CMD-SHELL takes one command line"),
        ("[CMD-SHELL, a, b]", "CMD-SHELL takes one command line"),
        ("[CMD-SHELL, \" \"]", "empty command"),
        ("[NONE, x]", "NONE takes nothing after it"),
        ("\"\"", "empty command"),
        (
            "5",
            "expected [\"CMD\", program, args...], [\"CMD-SHELL\", command], [\"NONE\"] or a command string, found an integer",
        ),
        ("{CMD: x}", "found a mapping"),
    ];
    for (test, message) in cases {
        let e = one_error(&web(&format!("healthcheck:\n  test: {test}")), path, 5);
        assert!(e.message.contains(message), "{test}: {e}");
    }
    let e = one_error(
        &web("healthcheck:\n  test:\n    - CMD\n    - [x]"),
        "services.web.healthcheck.test[1]",
        7,
    );
    assert_eq!(e.message, "expected a string, found a list");
}

#[test]
fn healthcheck_needs_a_test() {
    let e = one_error(
        &web("healthcheck:\n  interval: 5s"),
        "services.web.healthcheck",
        4,
    );
    assert!(e.message.starts_with("missing `test`"), "{e}");
    one_error(&web("healthcheck: {}"), "services.web.healthcheck", 4);
    one_error(&web("healthcheck:\n  test:"), "services.web.healthcheck", 4);
    let e = one_error(&web("healthcheck: [CMD, x]"), "services.web.healthcheck", 4);
    assert_eq!(e.message, "expected a mapping, found a list");
}

#[test]
fn healthcheck_timing_errors() {
    let cases: &[(&str, &str, &str)] = &[
        ("interval: 0s", "interval", "must be longer than zero"),
        ("interval: 0", "interval", "must be longer than zero"),
        ("timeout: 0ms", "timeout", "must be longer than zero"),
        ("interval: 30", "interval", "expected a duration"),
        ("timeout: soon", "timeout", "invalid duration \"soon\""),
        ("start_period: 1x", "start_period", "invalid duration"),
        ("retries: 0", "retries", "must be at least 1"),
        ("retries: -1", "retries", "expected a non-negative integer"),
        ("retries: 1.5", "retries", "expected a non-negative integer"),
    ];
    for (line, key, message) in cases {
        let text = web(&format!("healthcheck:\n  test: [CMD, x]\n  {line}"));
        let e = one_error(&text, &format!("services.web.healthcheck.{key}"), 6);
        assert!(e.message.contains(message), "{line}: {e}");
    }
    let e = one_error(
        &web("healthcheck:\n  test: [CMD, x]\n  intervall: 5s"),
        "services.web.healthcheck.intervall",
        6,
    );
    assert_eq!(e.message, "unknown key (did you mean `interval`?)");
    // Every problem is reported.
    let errs = errors(&web(
        "healthcheck:\n  test: []\n  interval: 0s\n  retries: 0\n  bogus: 1",
    ));
    let got: Vec<_> = errs.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (5, "services.web.healthcheck.test"),
            (6, "services.web.healthcheck.interval"),
            (7, "services.web.healthcheck.retries"),
            (8, "services.web.healthcheck.bogus"),
        ]
    );
}

#[test]
fn components_cannot_run_a_healthcheck_command() {
    for test in ["[CMD, x]", "x", "[CMD-SHELL, x]"] {
        let text = component("", &format!("healthcheck:\n  test: {test}"));
        let e = one_error(&text, "services.api.healthcheck", 5);
        assert_eq!(
            e.message,
            "components cannot run commands; use x-atoll.health: { http: /path }"
        );
    }
    // Disabled, it is harmless.
    for body in [
        "healthcheck:\n  test: [NONE]",
        "healthcheck:\n  disable: true",
    ] {
        let parsed = ok(&component("", body));
        assert_eq!(parsed.app.services["api"].health, None);
    }
}

#[test]
fn healthcheck_and_x_atoll_health_exclude_each_other() {
    let text = web("healthcheck:\n  test: [CMD, x]\nx-atoll:\n  health:\n    http: /healthz");
    let e = one_error(&text, "services.web.x-atoll.health", 7);
    assert_eq!(
        e.message,
        "set either healthcheck or x-atoll.health, not both"
    );
    // Even when the healthcheck is invalid.
    let errs = errors(&web(
        "healthcheck:\n  test: []\nx-atoll:\n  health:\n    http: /healthz",
    ));
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!(errs[1].path, "services.web.x-atoll.health");
    // A disabled healthcheck does not count.
    let h = health("healthcheck:\n  disable: true\nx-atoll:\n  health:\n    http: /healthz");
    assert_eq!(h, both(atoll_check(http("/healthz", None))));
    let h = health("healthcheck:\n  test: [NONE]\nx-atoll:\n  health: {http: /up}");
    assert_eq!(h, both(atoll_check(http("/up", None))));
}

// --- x-atoll.health --------------------------------------------------------

#[test]
fn x_atoll_health_defaults() {
    let parsed = ok(&component("health:\n  http: /healthz", ""));
    let h = parsed.app.services["api"].health.clone();
    // No `liveness`: the same check restarts too.
    assert_eq!(h, both(atoll_check(http("/healthz", None))));
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    // On a container too.
    let h = health("x-atoll:\n  health: {http: /healthz, port: 8080}");
    assert_eq!(h, both(atoll_check(http("/healthz", Some(8080)))));
    // Null: not set.
    assert_eq!(health("x-atoll:\n  health:"), None);
}

#[test]
fn x_atoll_health_values() {
    let h = health(
        "x-atoll:\n  health:\n    http: /ready?full=1\n    port: \"9000\"\n    interval: 1s\n    timeout: 500ms\n    retries: 1\n    start_period: 10s",
    );
    let check = Check {
        probe: http("/ready?full=1", Some(9000)),
        interval_ms: 1_000,
        timeout_ms: 500,
        retries: 1,
        start_period_ms: 10_000,
    };
    assert_eq!(h, both(check));
}

#[test]
fn liveness_false_true_and_absent() {
    let ready = atoll_check(http("/healthz", None));
    let h = health("x-atoll:\n  health:\n    http: /healthz\n    liveness: false");
    assert_eq!(
        h,
        Some(Health {
            ready: ready.clone(),
            live: None
        })
    );
    for same in ["true", "", "~"] {
        let h = health(&format!(
            "x-atoll:\n  health:\n    http: /healthz\n    liveness: {same}"
        ));
        assert_eq!(h, both(ready.clone()), "liveness: {same}");
    }
}

#[test]
fn liveness_mapping_inherits_from_readiness() {
    let parent = "x-atoll:\n  health:\n    http: /ready\n    port: 8080\n    interval: 5s\n    timeout: 2s\n    retries: 2\n    start_period: 30s\n";
    let ready = Check {
        probe: http("/ready", Some(8080)),
        interval_ms: 5_000,
        timeout_ms: 2_000,
        retries: 2,
        start_period_ms: 30_000,
    };
    // Its own path, the rest inherited.
    let h = health(&format!("{parent}    liveness:\n      http: /live")).unwrap();
    assert_eq!(h.ready, ready);
    let live = Check {
        probe: http("/live", Some(8080)),
        ..ready.clone()
    };
    assert_eq!(h.live, Some(live));
    // Its own timing; `http` and `port` inherited.
    let h = health(&format!(
        "{parent}    liveness:\n      interval: 30s\n      retries: 5"
    ))
    .unwrap();
    let live = Check {
        interval_ms: 30_000,
        retries: 5,
        ..ready.clone()
    };
    assert_eq!(h.live, Some(live));
    // Everything its own.
    let h = health(&format!(
        "{parent}    liveness:\n      http: /live\n      port: 9090\n      interval: 10s\n      timeout: 3s\n      retries: 6\n      start_period: 1m"
    ))
    .unwrap();
    let live = Check {
        probe: http("/live", Some(9090)),
        interval_ms: 10_000,
        timeout_ms: 3_000,
        retries: 6,
        start_period_ms: 60_000,
    };
    assert_eq!(h.live, Some(live));
    // Empty: the readiness check.
    let h = health(&format!("{parent}    liveness: {{}}")).unwrap();
    assert_eq!(h.live, Some(ready));
    // Inheritance is from the parent's defaults when it gives none.
    let h = health("x-atoll:\n  health:\n    http: /a\n    liveness: {http: /b}").unwrap();
    assert_eq!(h.live, Some(atoll_check(http("/b", None))));
}

#[test]
fn x_atoll_health_errors() {
    let base = "services.web.x-atoll.health";
    let e = one_error(&web("x-atoll:\n  health:\n    port: 80"), base, 5);
    assert_eq!(
        e.message,
        "missing `http`: the path to probe, such as /healthz"
    );
    one_error(&web("x-atoll:\n  health: {}"), base, 5);
    let e = one_error(&web("x-atoll:\n  health: /healthz"), base, 5);
    assert_eq!(e.message, "expected a mapping, found a string");
    let cases: &[(&str, &str, &str)] = &[
        (
            "http: healthz",
            "http",
            "expected a path starting with /, such as /healthz, found \"healthz\"",
        ),
        ("http: /a b", "http", "expected a path starting with /"),
        ("http: 5", "http", "expected a string, found an integer"),
        ("port: 0", "port", "\"0\" is not a port number (1-65535)"),
        (
            "port: 70000",
            "port",
            "\"70000\" is not a port number (1-65535)",
        ),
        ("port: http", "port", "is not a port number"),
        (
            "port: [80]",
            "port",
            "expected a port number (1-65535), found a list",
        ),
        ("interval: 0s", "interval", "must be longer than zero"),
        ("timeout: 0", "timeout", "must be longer than zero"),
        ("retries: 0", "retries", "must be at least 1"),
        ("start_period: -1s", "start_period", "invalid duration"),
        (
            "liveness: 5",
            "liveness",
            "expected a mapping (http, port, interval, timeout, retries, start_period) or false, found an integer",
        ),
        (
            "liveness: {http: live}",
            "liveness.http",
            "expected a path starting with /",
        ),
        (
            "liveness: {retries: 0}",
            "liveness.retries",
            "must be at least 1",
        ),
        (
            "liveness: {liveness: false}",
            "liveness.liveness",
            "unknown key",
        ),
        ("path: /healthz", "path", "unknown key"),
    ];
    for (line, key, message) in cases {
        // `http` once: a duplicate key is a YAML error.
        let first = if *key == "http" {
            "port: 80"
        } else {
            "http: /ok"
        };
        let text = web(&format!("x-atoll:\n  health:\n    {first}\n    {line}"));
        let e = one_error(&text, &format!("{base}.{key}"), 7);
        assert!(e.message.contains(message), "{line}: {e}");
    }
    // `http` is required even if liveness names a path; both errors show.
    let errs = errors(&web(
        "x-atoll:\n  health:\n    interval: 0s\n    liveness:\n      http: nope",
    ));
    let got: Vec<_> = errs.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (5, "services.web.x-atoll.health"),
            (6, "services.web.x-atoll.health.interval"),
            (8, "services.web.x-atoll.health.liveness.http"),
        ]
    );
}

// --- deploy.update_config / rollback_config --------------------------------

fn deploy_of(body: &str) -> Deploy {
    ok(&web(body)).app.services["web"].deploy.clone()
}

#[test]
fn update_and_rollback_defaults() {
    let update = UpdateConfig {
        parallelism: 1,
        delay_ms: 0,
        order: UpdateOrder::StartFirst,
        monitor_ms: 5_000,
        failure_action: FailureAction::Rollback,
        max_failure_ratio: 0.0,
    };
    let rollback = UpdateConfig {
        failure_action: FailureAction::Pause,
        ..update
    };
    assert_eq!(UpdateConfig::default(), update);
    assert_eq!(UpdateConfig::rollback_default(), rollback);
    for body in [
        "environment: {}",
        "deploy: {}",
        "deploy:\n  update_config:\n  rollback_config: {}",
        "deploy:\n  update_config: {delay: ~, order: ~}",
    ] {
        let d = deploy_of(body);
        assert_eq!((d.update, d.rollback), (update, rollback), "{body}");
    }
}

#[test]
fn update_and_rollback_values() {
    let d = deploy_of(
        "deploy:\n  update_config:\n    parallelism: 0\n    delay: 10s\n    order: stop-first\n    monitor: 1m\n    failure_action: continue\n    max_failure_ratio: 0.5\n  rollback_config:\n    parallelism: 3\n    delay: 0\n    order: start-first\n    monitor: 0s\n    failure_action: continue\n    max_failure_ratio: 1",
    );
    assert_eq!(
        d.update,
        UpdateConfig {
            parallelism: 0,
            delay_ms: 10_000,
            order: UpdateOrder::StopFirst,
            monitor_ms: 60_000,
            failure_action: FailureAction::Continue,
            max_failure_ratio: 0.5,
        }
    );
    assert_eq!(
        d.rollback,
        UpdateConfig {
            parallelism: 3,
            delay_ms: 0,
            order: UpdateOrder::StartFirst,
            monitor_ms: 0,
            failure_action: FailureAction::Continue,
            max_failure_ratio: 1.0,
        }
    );
    // Missing keys keep each one's defaults.
    let d = deploy_of(
        "deploy:\n  update_config: {failure_action: pause}\n  rollback_config: {parallelism: \"2\", max_failure_ratio: \"0.25\"}",
    );
    assert_eq!(
        d.update,
        UpdateConfig {
            failure_action: FailureAction::Pause,
            ..UpdateConfig::default()
        }
    );
    assert_eq!(
        d.rollback,
        UpdateConfig {
            parallelism: 2,
            max_failure_ratio: 0.25,
            ..UpdateConfig::rollback_default()
        }
    );
    let d = deploy_of("deploy:\n  update_config: {failure_action: rollback, max_failure_ratio: 0}");
    assert_eq!(d.update, UpdateConfig::default());
    let d = deploy_of("deploy:\n  rollback_config: {failure_action: pause}");
    assert_eq!(d.rollback, UpdateConfig::rollback_default());
}

#[test]
fn update_and_rollback_errors() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "parallelism: -1",
            "parallelism",
            "expected a non-negative integer",
        ),
        (
            "parallelism: all",
            "parallelism",
            "expected a non-negative integer",
        ),
        ("delay: 5", "delay", "expected a duration"),
        ("monitor: 1x", "monitor", "invalid duration"),
        (
            "order: sideways",
            "order",
            "expected stop-first or start-first, found \"sideways\"",
        ),
        ("order: 1", "order", "expected a string"),
        (
            "max_failure_ratio: 1.5",
            "max_failure_ratio",
            "expected a number from 0 to 1, such as 0.2, found 1.5",
        ),
        ("max_failure_ratio: -0.1", "max_failure_ratio", "found -0.1"),
        ("max_failure_ratio: 2", "max_failure_ratio", "found 2"),
        (
            "max_failure_ratio: half",
            "max_failure_ratio",
            "found \"half\"",
        ),
        (
            "max_failure_ratio: .nan",
            "max_failure_ratio",
            "expected a number from 0 to 1",
        ),
        (
            "max_failure_ratio: [1]",
            "max_failure_ratio",
            "found a list",
        ),
        (
            "paralelism: 2",
            "paralelism",
            "unknown key (did you mean `parallelism`?)",
        ),
    ];
    for section in ["update_config", "rollback_config"] {
        for (line, key, message) in cases {
            let text = web(&format!("deploy:\n  {section}:\n    {line}"));
            let path = format!("services.web.deploy.{section}.{key}");
            let e = one_error(&text, &path, 6);
            assert!(e.message.contains(message), "{section}.{line}: {e}");
        }
    }
    let e = one_error(
        &web("deploy:\n  update_config:\n    failure_action: stop"),
        "services.web.deploy.update_config.failure_action",
        6,
    );
    assert_eq!(
        e.message,
        "expected pause, continue or rollback, found \"stop\""
    );
    let e = one_error(
        &web("deploy:\n  rollback_config:\n    failure_action: rollback"),
        "services.web.deploy.rollback_config.failure_action",
        6,
    );
    assert_eq!(
        e.message,
        "a rollback cannot roll back: expected pause or continue"
    );
    let e = one_error(
        &web("deploy:\n  rollback_config:\n    failure_action: stop"),
        "services.web.deploy.rollback_config.failure_action",
        6,
    );
    assert_eq!(e.message, "expected pause or continue, found \"stop\"");
    one_error(
        &web("deploy:\n  update_config: fast"),
        "services.web.deploy.update_config",
        5,
    );
}

// --- x-atoll.canary --------------------------------------------------------

fn canary_of(text: &str, service: &str) -> Option<Canary> {
    ok(text).app.services[service].canary.clone()
}

#[test]
fn canary_image_and_component() {
    let c = canary_of(
        &web("x-atoll:\n  canary:\n    image: registry/app:2\n    weight: 20"),
        "web",
    );
    assert_eq!(
        c,
        Some(Canary {
            artifact: Artifact::Image("registry/app:2".into()),
            weight: 20,
            replicas: 1,
        })
    );
    // A component path is kept as written, like `x-atoll.component`.
    let c = canary_of(
        &component(
            "canary:\n  component: ./v2.wasm\n  weight: 5\n  replicas: 3",
            "",
        ),
        "api",
    );
    assert_eq!(
        c,
        Some(Canary {
            artifact: Artifact::Component("./v2.wasm".into()),
            weight: 5,
            replicas: 3,
        })
    );
    // The bounds, and a string of digits.
    for (w, expected) in [("0", 0), ("100", 100), ("\"20\"", 20)] {
        let text = web(&format!("x-atoll:\n  canary: {{image: x, weight: {w}}}"));
        assert_eq!(canary_of(&text, "web").unwrap().weight, expected, "{w}");
    }
    // Null: not set.
    assert_eq!(canary_of(&web("x-atoll:\n  canary:"), "web"), None);
    assert_eq!(canary_of(&web("environment: {}"), "web"), None);
}

#[test]
fn canary_errors() {
    let base = "services.web.x-atoll.canary";
    let e = one_error(
        &web("x-atoll:\n  canary:\n    image: a\n    component: b.wasm\n    weight: 1"),
        base,
        5,
    );
    assert_eq!(e.message, "set either `image` or `component`, not both");
    let e = one_error(&web("x-atoll:\n  canary:\n    weight: 1"), base, 5);
    assert_eq!(
        e.message,
        "needs `image` (an OCI image) or `component` (a .wasm file)"
    );
    let e = one_error(&web("x-atoll:\n  canary:\n    image: a"), base, 5);
    assert!(e.message.starts_with("missing `weight`"), "{e}");
    let e = one_error(&web("x-atoll:\n  canary: a:2"), base, 5);
    assert_eq!(e.message, "expected a mapping, found a string");
    let cases: &[(&str, &str, &str)] = &[
        (
            "weight: 101",
            "weight",
            "expected a percentage, an integer from 0 to 100, found 101",
        ),
        ("weight: -1", "weight", "found -1"),
        ("weight: 1.5", "weight", "found 1.5"),
        ("weight: \"10%\"", "weight", "found \"10%\""),
        ("weight: [1]", "weight", "found a list"),
        ("replicas: 0", "replicas", "must be at least 1"),
        (
            "replicas: -2",
            "replicas",
            "expected a non-negative integer",
        ),
        ("version: 2", "version", "unknown key"),
    ];
    for (line, key, message) in cases {
        let weight = if *key == "weight" {
            ""
        } else {
            "\n    weight: 1"
        };
        let text = web(&format!(
            "x-atoll:\n  canary:\n    image: a\n    {line}{weight}"
        ));
        let e = one_error(&text, &format!("{base}.{key}"), 7);
        assert!(e.message.contains(message), "{line}: {e}");
    }
    let e = one_error(
        &web("x-atoll:\n  canary:\n    image: a b\n    weight: 1"),
        &format!("{base}.image"),
        6,
    );
    assert!(e.message.starts_with("expected an image reference"), "{e}");
    // Every problem is reported.
    let errs = errors(&web(
        "x-atoll:\n  canary:\n    weight: 200\n    replicas: 0",
    ));
    let got: Vec<_> = errs.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (5, base),
            (6, "services.web.x-atoll.canary.weight"),
            (7, "services.web.x-atoll.canary.replicas"),
        ]
    );
}

#[test]
fn canaries_need_replicated_mode() {
    let text = web("x-atoll:\n  canary: {image: a, weight: 10}\ndeploy:\n  mode: global");
    let e = one_error(&text, "services.web.x-atoll.canary", 5);
    assert_eq!(
        e.message,
        "canaries need replicated mode (deploy.mode is global)"
    );
    let text = web("x-atoll:\n  canary: {image: a, weight: 10}\ndeploy:\n  mode: replicated");
    assert!(canary_of(&text, "web").is_some());
}

#[test]
fn a_component_canary_cannot_run_the_healthcheck_command() {
    let text =
        web("healthcheck:\n  test: [CMD, x]\nx-atoll:\n  canary: {component: v2.wasm, weight: 10}");
    let e = one_error(&text, "services.web.x-atoll.canary", 7);
    assert!(
        e.message.starts_with("a component canary cannot run"),
        "{e}"
    );
    // An HTTP probe works for both.
    let text = web("x-atoll:\n  health: {http: /up}\n  canary: {component: v2.wasm, weight: 10}");
    assert!(canary_of(&text, "web").is_some());
}
