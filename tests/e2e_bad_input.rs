//! Bad input gets a clear error and disturbs nothing else: another app
//! keeps serving, the host and the server stay up.

mod common;
use common::*;
use std::time::Duration;

fn stderr_of(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Deploys `text` and expects the CLI to fail with `expected` in its output.
fn rejected(c: &Cluster, file: &str, text: &str, expected: &[&str]) {
    let path = c.compose(file, text);
    let out = c.atoll(&["deploy", "-f", &path.to_string_lossy()]);
    let said = stderr_of(&out);
    assert!(!out.status.success(), "{file} was accepted: {said}");
    for e in expected {
        assert!(said.contains(e), "{file}: expected {e:?} in: {said}");
    }
}

#[test]
fn bad_files_and_bad_components_fail_clearly_and_disturb_nothing() {
    let mut c = Cluster::start();
    c.start_host("h1", "127.0.4.2", &[]);
    let hello = sample_wasm("hello");
    let faulty = sample_wasm("faulty");
    let good_port = free_port();
    let good = c.compose(
        "good.yaml",
        &format!("name: good\nservices:\n  web:\n    x-atoll:\n      component: {}\n    ports: [\"{good_port}:80\"]\n", hello.display()),
    );
    c.deploy_wait(&good);
    let good_ok = |c: &Cluster| {
        let (s, b) = http_get(&format!("127.0.4.2:{good_port}"), "/").expect("good app answers");
        assert_eq!(s, 200, "the good app keeps serving: {b}");
        let _ = c;
    };

    rejected(
        &c,
        "yaml.yaml",
        "name: x\nservices:\n  web: [unclosed\n",
        &["line"],
    );
    rejected(
        &c,
        "unknown.yaml",
        &format!(
            "name: x\nservices:\n  web:\n    x-atoll:\n      component: {}\n    colour: blue\n",
            hello.display()
        ),
        &["services.web.colour", "line 6"],
    );
    rejected(
        &c,
        "replicas.yaml",
        &format!(
            "name: x\nservices:\n  web:\n    x-atoll:\n      component: {}\n    deploy:\n      replicas: -1\n",
            hello.display()
        ),
        &[
            "services.web.deploy.replicas",
            "non-negative integer",
            "line 7",
        ],
    );
    rejected(
        &c,
        "missing.yaml",
        "name: x\nservices:\n  web:\n    x-atoll:\n      component: ./nowhere.wasm\n",
        &["services.web.x-atoll.component", "nowhere.wasm"],
    );
    let core = c.dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write core module");
    rejected(
        &c,
        "core.yaml",
        &format!(
            "name: x\nservices:\n  web:\n    x-atoll:\n      component: {}\n",
            core.display()
        ),
        &["services.web.x-atoll.component", "not a component"],
    );
    good_ok(&c);

    // A constraint no host satisfies: the deploy is accepted, --wait fails
    // and the app's status says why.
    let nowhere = c.compose(
        "nowhere.yaml",
        &format!(
            "name: nowhere\nservices:\n  web:\n    x-atoll:\n      component: {}\n    deploy:\n      placement:\n        constraints: [\"node.labels.zone == mars\"]\n",
            hello.display()
        ),
    );
    let out = c.atoll(&[
        "deploy",
        "-f",
        &nowhere.to_string_lossy(),
        "--wait",
        "--timeout",
        "20",
    ]);
    let said = stderr_of(&out);
    assert!(
        !out.status.success(),
        "unplaceable deploy succeeded: {said}"
    );
    assert!(
        said.contains("node.labels.zone == mars"),
        "names the constraint: {said}"
    );
    let apps = c.json(&["ls", "-o", "json"]);
    let app = apps
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "nowhere"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(app["status"], "pending");

    // A component that traps, loops, or eats memory: that request fails,
    // the instance and everything else keep going.
    let fport = free_port();
    let faulty_file = c.compose(
        "faulty.yaml",
        &format!(
            "name: faulty\nservices:\n  f:\n    x-atoll:\n      component: {}\n      timeout: 1s\n    ports: [\"{fport}:80\"]\n    deploy:\n      resources:\n        limits:\n          memory: 32M\n",
            faulty.display()
        ),
    );
    c.deploy_wait(&faulty_file);
    let at = format!("127.0.4.2:{fport}");
    let (s, _) = http_get(&at, "/trap").expect("trap request");
    assert_eq!(s, 500, "a trap is a 500");
    let started = std::time::Instant::now();
    let (s, _) = http_get(&at, "/loop").expect("loop request");
    assert!(s == 504 || s == 500, "an endless loop is cut: {s}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cut by the 1 s deadline"
    );
    let (s, _) = http_get(&at, "/grow").expect("grow request");
    assert_eq!(s, 500, "growing past the memory limit is a 500");
    let (s, body) = http_get(&at, "/").expect("faulty root");
    assert_eq!(s, 200, "the faulty instance still serves: {body}");
    good_ok(&c);

    assert!(c.host("h1").is_running(), "the host is up");
    assert!(
        c.server.as_mut().is_some_and(Proc::is_running),
        "the server is up"
    );
}
