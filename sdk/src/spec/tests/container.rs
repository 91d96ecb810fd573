//! The container keys: `entrypoint`, `command` (and the shell-word
//! splitter), `working_dir`, `user`, `read_only`, `security_opt`,
//! capabilities, `stop_grace_period`, `restart`, `deploy.restart_policy`
//! and `deploy.resources.limits.pids`.

use super::super::privilege::capability;
use super::super::units::split_words;
use super::super::*;
use super::{errors, ok, one_error, web};

/// The container options of `services.web` with `body` under it.
fn opts(body: &str) -> ContainerOptions {
    ok(&web(body)).app.services["web"].container.clone()
}

fn words(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|w| w.to_string()).collect())
}

#[test]
fn shell_words() {
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        ("   \t\n ", &[]),
        ("serve", &["serve"]),
        ("  serve  --port\t8080\n", &["serve", "--port", "8080"]),
        (
            "sh -c 'echo \"$HOME\"; ls'",
            &["sh", "-c", "echo \"$HOME\"; ls"],
        ),
        ("echo 'a\\b'", &["echo", "a\\b"]),
        ("echo \"a \\\"b\\\" c\"", &["echo", "a \"b\" c"]),
        ("echo \"\\$x \\\\ \\` \\n\"", &["echo", "$x \\ ` \\n"]),
        ("echo \"a\\\nb\"", &["echo", "ab"]),
        ("d\\ e \\'x\\' \\\\", &["d e", "'x'", "\\"]),
        ("run \\\n  --fast", &["run", "--fast"]),
        ("a''b \"\"c", &["ab", "c"]),
        ("run '' \"\"", &["run", "", ""]),
        ("x='a b'\"c d\"e", &["x=a bc de"]),
        (
            "echo $HOME * ~ # not a comment",
            &["echo", "$HOME", "*", "~", "#", "not", "a", "comment"],
        ),
        ("é 'ü ö'", &["é", "ü ö"]),
    ];
    for (line, expected) in cases {
        assert_eq!(
            split_words(line),
            Ok(expected.iter().map(|w| w.to_string()).collect()),
            "{line:?}"
        );
    }
    for (bad, kind) in [
        ("echo 'oops", "unterminated single quote"),
        ("echo \"oops", "unterminated double quote"),
        ("echo \"oops\\\"", "unterminated double quote"),
        ("echo \"oops\\", "unterminated double quote"),
        ("'", "unterminated single quote"),
        ("echo \\", "lone backslash"),
    ] {
        let e = split_words(bad).unwrap_err().to_string();
        assert!(e.contains(kind) && e.contains(bad), "{bad:?}: {e}");
    }
}

#[test]
fn command_and_entrypoint_forms() {
    let o = opts("command: serve --name 'my app'\nentrypoint: [/bin/tini, \"--\"]");
    assert_eq!(o.command, words(&["serve", "--name", "my app"]));
    assert_eq!(o.entrypoint, words(&["/bin/tini", "--"]));
    // List items are not split; numbers and booleans are kept as written.
    let o = opts("command: [\"echo hi\", 10, 1.50, true, \"\"]");
    assert_eq!(o.command, words(&["echo hi", "10", "1.50", "true", ""]));
    // Block scalars are command lines too.
    let o = opts("command: >\n  run\n  --fast");
    assert_eq!(o.command, words(&["run", "--fast"]));
    // Empty: no arguments (command), no image entrypoint (entrypoint).
    assert_eq!(opts("command: []").command, Some(vec![]));
    assert_eq!(opts("command: ''").command, Some(vec![]));
    let o = opts("entrypoint: []\ncommand: [sleep, infinity]");
    assert_eq!(o.entrypoint, Some(vec![]));
    let o = opts("entrypoint: \"\"\ncommand: sleep 1");
    assert_eq!(o.entrypoint, Some(vec![]));
    // Null: the image's own.
    let o = opts("command:\nentrypoint: ~");
    assert_eq!((o.command, o.entrypoint), (None, None));
}

#[test]
fn command_and_entrypoint_errors() {
    let e = one_error(&web("command: echo 'oops"), "services.web.command", 4);
    assert!(
        e.message
            .starts_with("unterminated single quote in \"echo 'oops\""),
        "{e}"
    );
    let e = one_error(
        &web("environment: {}\nentrypoint: sh -c \"x"),
        "services.web.entrypoint",
        5,
    );
    assert!(e.message.contains("unterminated double quote"), "{e}");
    let e = one_error(&web("command: run \\"), "services.web.command", 4);
    assert!(e.message.contains("lone backslash"), "{e}");
    let e = one_error(&web("command: {run: x}"), "services.web.command", 4);
    assert_eq!(
        e.message,
        "expected a command line or a list of strings, found a mapping"
    );
    one_error(&web("entrypoint: 5"), "services.web.entrypoint", 4);
    let e = one_error(
        &web("command:\n  - run\n  - [x]"),
        "services.web.command[1]",
        6,
    );
    assert_eq!(e.message, "expected a string, found a list");
    one_error(&web("command:\n  - run\n  -"), "services.web.command[1]", 6);
}

#[test]
fn an_empty_entrypoint_needs_a_command() {
    for body in [
        "entrypoint: []",
        "entrypoint: ''",
        "entrypoint: []\ncommand: []",
        "entrypoint: []\ncommand:",
    ] {
        let e = one_error(&web(body), "services.web.entrypoint", 4);
        assert!(e.message.contains("nothing to run"), "{body}: {e}");
    }
    // The order of the keys does not matter.
    let o = opts("command: [run]\nentrypoint: []");
    assert_eq!(o.entrypoint, Some(vec![]));
}

#[test]
fn working_dir_is_absolute() {
    assert_eq!(
        opts("working_dir: /srv/app").working_dir.as_deref(),
        Some("/srv/app")
    );
    for bad in ["srv", "./srv", "''", "~/x"] {
        let e = one_error(
            &web(&format!("working_dir: {bad}")),
            "services.web.working_dir",
            4,
        );
        assert!(
            e.message
                .starts_with("expected an absolute path such as /app"),
            "{bad}: {e}"
        );
    }
    let e = one_error(&web("working_dir: 3"), "services.web.working_dir", 4);
    assert_eq!(e.message, "expected a string, found an integer");
}

#[test]
fn user_forms() {
    for (written, user) in [
        ("nginx", "nginx"),
        ("\"1000\"", "1000"),
        ("1000", "1000"),
        ("0", "0"),
        ("\"1000:1000\"", "1000:1000"),
        ("app:staff", "app:staff"),
    ] {
        let o = opts(&format!("user: {written}"));
        assert_eq!(o.user.as_deref(), Some(user), "{written}");
    }
    for bad in [
        "''",
        "\"a b\"",
        "\"1:2:3\"",
        "\":1\"",
        "\"1:\"",
        "-1",
        "true",
        "1.5",
        "[root]",
    ] {
        let e = one_error(&web(&format!("user: {bad}")), "services.web.user", 4);
        assert!(
            e.message.starts_with("expected a user such as 1000"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn read_only_is_a_boolean() {
    assert!(opts("read_only: true").read_only);
    assert!(opts("read_only: \"true\"").read_only);
    assert!(!opts("read_only: false").read_only);
    assert!(!opts("read_only:").read_only);
    let e = one_error(&web("read_only: yes"), "services.web.read_only", 4);
    assert_eq!(e.message, "expected true or false, found \"yes\"");
    let e = one_error(&web("read_only: 1"), "services.web.read_only", 4);
    assert_eq!(e.message, "expected true or false, found an integer");
}

#[test]
fn security_opt_no_new_privileges() {
    for list in [
        "[no-new-privileges]",
        "[no-new-privileges:true]",
        "[no-new-privileges=true]",
        "[\"no-new-privileges:TRUE\"]",
        "[no-new-privileges:false, no-new-privileges]",
    ] {
        let parsed = ok(&web(&format!("security_opt: {list}")));
        assert!(
            parsed.app.services["web"].container.no_new_privileges,
            "{list}"
        );
        assert!(parsed.warnings.is_empty(), "{list}: {:?}", parsed.warnings);
    }
    for list in [
        "[no-new-privileges:false]",
        "[no-new-privileges, no-new-privileges=false]",
        "[]",
    ] {
        assert!(
            !opts(&format!("security_opt: {list}")).no_new_privileges,
            "{list}"
        );
    }
}

#[test]
fn other_security_options_are_ignored_with_a_warning() {
    let parsed = ok(&web(
        "security_opt:\n  - seccomp=unconfined\n  - no-new-privileges\n  - label:disable",
    ));
    assert!(parsed.app.services["web"].container.no_new_privileges);
    assert_eq!(
        parsed.warnings,
        [
            "services.web.security_opt[0]: \"seccomp=unconfined\" is not implemented yet, ignored (only no-new-privileges is) (line 5)",
            "services.web.security_opt[2]: \"label:disable\" is not implemented yet, ignored (only no-new-privileges is) (line 7)",
        ]
    );
}

#[test]
fn security_opt_errors() {
    let e = one_error(
        &web("security_opt:\n  - no-new-privileges:maybe"),
        "services.web.security_opt[0]",
        5,
    );
    assert!(
        e.message.ends_with("found \"no-new-privileges:maybe\""),
        "{e}"
    );
    one_error(
        &web("security_opt: no-new-privileges"),
        "services.web.security_opt",
        4,
    );
    one_error(&web("security_opt: [1]"), "services.web.security_opt[0]", 4);
}

#[test]
fn capability_spellings() {
    for (written, stored) in [
        ("NET_ADMIN", Some("NET_ADMIN")),
        ("net_admin", Some("NET_ADMIN")),
        ("CAP_NET_ADMIN", Some("NET_ADMIN")),
        ("cap_sys_time", Some("SYS_TIME")),
        ("Checkpoint_Restore", Some("CHECKPOINT_RESTORE")),
        ("ALL", Some("ALL")),
        ("all", Some("ALL")),
        ("CAP_ALL", Some("ALL")),
        ("NET_ADMINS", None),
        ("CAP_", None),
        ("", None),
        (" NET_ADMIN", None),
    ] {
        assert_eq!(capability(written).as_deref(), stored, "{written:?}");
    }
}

#[test]
fn cap_add_and_cap_drop() {
    let o = opts(
        "cap_drop: [all]\ncap_add:\n  - net_bind_service\n  - CAP_CHOWN\n  - NET_BIND_SERVICE",
    );
    assert_eq!(o.cap_drop, ["ALL"]);
    // Each capability once, in file order.
    assert_eq!(o.cap_add, ["NET_BIND_SERVICE", "CHOWN"]);
    assert!(opts("cap_add: []").cap_add.is_empty());
}

#[test]
fn unknown_capabilities_are_errors() {
    let text = web("cap_add:\n  - NET_ADMIN\n  - NET_ADMINS\ncap_drop:\n  - CAP_FLY\n  - 7");
    let errs = errors(&text);
    let got: Vec<_> = errs.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [
            ("services.web.cap_add[1]", 6),
            ("services.web.cap_drop[0]", 8),
            ("services.web.cap_drop[1]", 9)
        ]
    );
    assert_eq!(
        errs[0].message,
        "unknown capability \"NET_ADMINS\": expected a Linux capability such as NET_ADMIN or CAP_SYS_TIME, or ALL"
    );
    assert!(errs[1].message.contains("\"CAP_FLY\""), "{}", errs[1]);
    assert_eq!(errs[2].message, "expected a string, found an integer");
    let e = one_error(&web("cap_add: NET_ADMIN"), "services.web.cap_add", 4);
    assert_eq!(e.message, "expected a list, found a string");
}

#[test]
fn stop_grace_period() {
    for (written, ms) in [
        ("10s", 10_000),
        ("1m30s", 90_000),
        ("1.5s", 1_500),
        ("0s", 0),
        ("\"0\"", 0),
        ("0", 0),
    ] {
        let o = opts(&format!("stop_grace_period: {written}"));
        assert_eq!(o.stop_grace_ms, Some(ms), "{written}");
    }
    assert_eq!(opts("stop_grace_period:").stop_grace_ms, None);
    for (bad, message) in [
        (
            "10",
            "expected a duration such as 30s or 1m30s, found an integer",
        ),
        ("soon", "invalid duration \"soon\""),
        ("-1s", "invalid duration \"-1s\""),
        ("500us", "is too short: the minimum is 1ms (or 0)"),
        ("[10s]", "found a list"),
    ] {
        let e = one_error(
            &web(&format!("stop_grace_period: {bad}")),
            "services.web.stop_grace_period",
            4,
        );
        assert!(e.message.contains(message), "{bad}: {e}");
    }
}

fn restart_of(body: &str) -> RestartPolicy {
    opts(body).restart
}

fn policy(condition: RestartCondition, max_attempts: Option<u32>) -> RestartPolicy {
    RestartPolicy {
        condition,
        max_attempts,
        ..RestartPolicy::default()
    }
}

#[test]
fn restart_forms() {
    use RestartCondition::*;
    for (written, expected) in [
        ("no", policy(None, Option::None)),
        ("\"no\"", policy(None, Option::None)),
        ("false", policy(None, Option::None)),
        ("always", policy(Any, Option::None)),
        ("unless-stopped", policy(Any, Option::None)),
        ("on-failure", policy(OnFailure, Option::None)),
        ("on-failure:5", policy(OnFailure, Some(5))),
        ("\"on-failure:0\"", policy(OnFailure, Option::None)),
    ] {
        assert_eq!(
            restart_of(&format!("restart: {written}")),
            expected,
            "{written}"
        );
    }
    // Nothing said: restarted after any exit, with the default timings.
    assert_eq!(restart_of("restart:"), RestartPolicy::default());
    assert_eq!(RestartPolicy::default(), policy(Any, Option::None));
}

#[test]
fn restart_errors() {
    for (bad, message) in [
        (
            "sometimes",
            "expected no, always, on-failure, on-failure:N or unless-stopped, found \"sometimes\"",
        ),
        (
            "true",
            "expected no, always, on-failure, on-failure:N or unless-stopped, found a boolean",
        ),
        ("Always", "found \"Always\""),
        ("3", "found an integer"),
        ("\"on-failure:\"", "invalid retry count in \"on-failure:\""),
        ("on-failure:-1", "invalid retry count in \"on-failure:-1\""),
        ("on-failure:x", "invalid retry count"),
        ("on-failure:99999999999", "no larger than 4294967295"),
    ] {
        let e = one_error(&web(&format!("restart: {bad}")), "services.web.restart", 4);
        assert!(e.message.contains(message), "{bad}: {e}");
    }
}

#[test]
fn restart_policy_forms() {
    let p = restart_of(
        "deploy:\n  restart_policy:\n    condition: on-failure\n    delay: 5s\n    max_attempts: 3\n    window: 2m",
    );
    assert_eq!(
        p,
        RestartPolicy {
            condition: RestartCondition::OnFailure,
            delay_ms: Some(5_000),
            max_attempts: Some(3),
            window_ms: Some(120_000),
        }
    );
    let p = restart_of("deploy:\n  restart_policy:\n    condition: none");
    assert_eq!(p, policy(RestartCondition::None, None));
    let p = restart_of("deploy:\n  restart_policy: {condition: any, max_attempts: \"2\"}");
    assert_eq!(p, policy(RestartCondition::Any, Some(2)));
    // Zeros as in Swarm: no delay, no attempt limit, no window.
    let p = restart_of("deploy:\n  restart_policy: {delay: 0s, max_attempts: 0, window: 0}");
    assert_eq!(
        p,
        RestartPolicy {
            delay_ms: Some(0),
            ..RestartPolicy::default()
        }
    );
    // Empty or null: the defaults.
    assert_eq!(
        restart_of("deploy:\n  restart_policy: {}"),
        RestartPolicy::default()
    );
    assert_eq!(
        restart_of("deploy:\n  restart_policy:\n    delay:"),
        RestartPolicy::default()
    );
}

#[test]
fn restart_policy_errors() {
    let base = "services.web.deploy.restart_policy";
    let rp = |body: &str| web(&format!("deploy:\n  restart_policy:\n    {body}"));
    let e = one_error(&rp("condition: always"), &format!("{base}.condition"), 6);
    assert_eq!(
        e.message,
        "expected none, on-failure or any, found \"always\""
    );
    one_error(&rp("condition: [any]"), &format!("{base}.condition"), 6);
    let e = one_error(&rp("delay: 5"), &format!("{base}.delay"), 6);
    assert!(e.message.starts_with("expected a duration"), "{e}");
    one_error(&rp("window: forever"), &format!("{base}.window"), 6);
    let e = one_error(&rp("max_attempts: -1"), &format!("{base}.max_attempts"), 6);
    assert_eq!(e.message, "expected a non-negative integer");
    one_error(
        &rp("max_attempts: 5000000000"),
        &format!("{base}.max_attempts"),
        6,
    );
    let e = one_error(&rp("conditon: any"), &format!("{base}.conditon"), 6);
    assert_eq!(e.message, "unknown key (did you mean `condition`?)");
    one_error(&web("deploy:\n  restart_policy: any"), base, 5);
}

#[test]
fn restart_policy_wins_over_restart() {
    for body in [
        "restart: always\ndeploy:\n  restart_policy: {condition: none}",
        "deploy:\n  restart_policy: {condition: none}\nrestart: always",
    ] {
        let parsed = ok(&web(body));
        let restart = parsed.app.services["web"].container.restart;
        assert_eq!(restart, policy(RestartCondition::None, None), "{body}");
        let line = if body.starts_with("restart") { 4 } else { 6 };
        assert_eq!(
            parsed.warnings,
            [format!(
                "services.web.restart: ignored: deploy.restart_policy is set too, and wins (line {line})"
            )]
        );
    }
}

fn pids_of(body: &str) -> Option<u32> {
    let text = web(&format!("deploy:\n  resources:\n{body}"));
    ok(&text).app.services["web"].deploy.resources.limits.pids
}

#[test]
fn pids_limit() {
    assert_eq!(pids_of("    limits:\n      pids: 100"), Some(100));
    assert_eq!(pids_of("    limits:\n      pids: \"64\""), Some(64));
    assert_eq!(pids_of("    limits:\n      memory: 1G"), None);
    let base = "services.web.deploy.resources";
    let res = |body: &str| web(&format!("deploy:\n  resources:\n{body}"));
    let e = one_error(
        &res("    limits:\n      pids: 0"),
        &format!("{base}.limits.pids"),
        7,
    );
    assert_eq!(
        e.message,
        "a limit must be greater than zero (omit it for the default: no limit on cpus, 1 GiB of memory and 4096 processes for a container)"
    );
    let e = one_error(
        &res("    limits:\n      pids: -1"),
        &format!("{base}.limits.pids"),
        7,
    );
    assert_eq!(
        e.message,
        "expected a positive integer, found -1 (a container always has a limit: 4096 without the key; give a larger number for more)"
    );
    one_error(
        &res("    limits:\n      pids: many"),
        &format!("{base}.limits.pids"),
        7,
    );
    one_error(
        &res("    limits:\n      pids: 1.5"),
        &format!("{base}.limits.pids"),
        7,
    );
    // Only a limit, as in the Compose Specification.
    let e = one_error(
        &res("    reservations:\n      pids: 10"),
        &format!("{base}.reservations.pids"),
        7,
    );
    assert_eq!(e.message, "unknown key");
}

#[test]
fn components_ignore_container_keys_with_a_warning() {
    let text = "services:
  api:
    x-atoll:
      component: api.wasm
    command: serve
    entrypoint: []
    user: '1000'
    read_only: true
    security_opt: [no-new-privileges]
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    working_dir: /srv
    stop_grace_period: 5s
    restart: always
    deploy:
      restart_policy: {condition: none}
      resources:
        limits: {pids: 10, memory: 64M}
";
    let parsed = ok(text);
    let at = |key: &str, line: usize| {
        format!(
            "services.api.{key}: ignored: a component does not run in a container (line {line})"
        )
    };
    assert_eq!(
        parsed.warnings,
        [
            at("command", 5),
            at("entrypoint", 6),
            at("user", 7),
            at("read_only", 8),
            at("security_opt", 9),
            at("cap_add", 10),
            at("cap_drop", 11),
            at("working_dir", 12),
            at("stop_grace_period", 13),
            at("restart", 14),
            at("deploy.restart_policy", 16),
            at("deploy.resources.limits.pids", 18),
        ]
    );
    // Still validated: a bad value is an error, not a warning.
    let text = "services:\n  api:\n    x-atoll:\n      component: api.wasm\n    cap_add: [FLY]\n";
    one_error(text, "services.api.cap_add[0]", 5);
}

#[test]
fn container_options_survive_json() {
    let o = opts(
        "entrypoint: [\"\"]\ncommand: a 'b c'\nuser: \"0\"\ncap_add: [ALL]\nrestart: on-failure:2\nstop_grace_period: 0s",
    );
    let json = serde_json::to_string(&o).unwrap();
    let back: ContainerOptions = serde_json::from_str(&json).unwrap();
    assert_eq!(back, o);
    // Older documents without the field read as the defaults.
    let svc: Service = serde_json::from_str(
        r#"{"name":"web","artifact":{"kind":"image","ref":"nginx"},"timeout_ms":1,"environment":{},"ports":[],"deploy":{"mode":"replicated","replicas":1,"placement":{"constraints":[],"preferences":[],"max_replicas_per_node":null},"resources":{"limits":{"memory":null,"cpus_milli":null},"reservations":{"memory":null,"cpus_milli":null}}}}"#,
    )
    .unwrap();
    assert_eq!(svc.container, ContainerOptions::default());
    assert_eq!(svc.deploy.resources.limits.pids, None);
}

#[test]
fn expose_is_checked_and_needs_nothing_else() {
    let parsed = ok(&web("expose: [\"5432\", 6379, \"8000-8010/tcp\", 53/udp]"));
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let e = one_error(
        &web("expose: [\"5432\", \"http\"]"),
        "services.web.expose[1]",
        4,
    );
    assert!(e.to_string().contains("invalid port \"http\""), "{e}");
    one_error(&web("expose: [\"9-1\"]"), "services.web.expose[0]", 4);
}
