//! Operator verbs against a real cluster: `atoll exec` runs a command in
//! a running container through youki on whichever host runs it, passes
//! its output and exit status through, and refuses clearly what it cannot
//! do (an unknown instance, a Wasm component).

#[path = "containers/cleanup.rs"]
mod cleanup;
mod common;
#[allow(dead_code)]
#[path = "containers/image.rs"]
mod image;
#[allow(dead_code)]
#[path = "containers/registry.rs"]
mod registry;
#[path = "containers/setup.rs"]
mod setup;

use common::*;
use setup::{cluster_with_image, start_container_host};
use std::time::Duration;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn exec_runs_a_command_in_a_container_and_returns_its_status() {
    let (mut dirs, mut c, registry) = cluster_with_image("exec\n");
    let data = dirs.data("h1");
    start_container_host(
        &mut c,
        "h1",
        "127.0.25.2",
        &data,
        &registry.host,
        "10.89.231.0/24",
        &[],
    );
    let file = c.compose(
        "web.yaml",
        &format!(
            "name: web\nservices:\n  web:\n    image: {}/web:1\n    environment:\n      GREETING: hello from web\n",
            registry.host
        ),
    );
    c.deploy(&file);
    let id = wait_until("the container to run", Duration::from_secs(60), || {
        c.running("web").into_iter().next().map(|(id, _)| id)
    });

    // Output and status come back as the command gave them.
    let out = c.atoll(&[
        "exec",
        &id,
        "--",
        "sh",
        "-c",
        "echo \"$GREETING\"; echo oops >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from web\n");
    assert_eq!(text(&out.stderr), "oops\n");

    // A unique prefix of the id is enough; success is 0.
    let prefix = &id[..id.len() - 2];
    let out = c.atoll(&["exec", prefix, "--", "cat", "/proc/1/cmdline"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("httpd"),
        "runs inside the container: {}",
        text(&out.stdout)
    );

    // A command the image does not have fails with the runtime's reason.
    let out = c.atoll(&["exec", &id, "--", "no-such-program"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(!text(&out.stderr).is_empty(), "says why");

    // A command past its timeout is killed, and the verb says so.
    let started = std::time::Instant::now();
    let out = c.atoll(&["exec", "--timeout", "1s", &id, "--", "sleep", "30"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded: {:?}",
        started.elapsed()
    );

    // What cannot run is refused with a reason and status 1.
    let out = c.atoll(&["exec", "nosuchinstance", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no instance nosuchinstance"),
        "{}",
        text(&out.stderr)
    );
    let out = c.atoll(&["exec", &id]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing command is a usage error"
    );

    let hello = sample_wasm("hello");
    let file = c.compose(
        "wasm.yaml",
        &format!(
            "name: wasm\nservices:\n  api:\n    x-atoll:\n      component: {}\n",
            hello.display()
        ),
    );
    c.deploy(&file);
    let wasm_id = wait_until("the component to run", Duration::from_secs(60), || {
        c.running("wasm").into_iter().next().map(|(id, _)| id)
    });
    let out = c.atoll(&["exec", &wasm_id, "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Wasm component"),
        "{}",
        text(&out.stderr)
    );

    // `-q` lists ids only; the server says its version.
    let out = c.atoll(&["ps", "-q", "web"]);
    assert_eq!(text(&out.stdout), format!("{id}\n"));
    let out = c.atoll(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("version json");
    assert_eq!(v["server"], v["client"], "{v}");

    // The container was not disturbed by any of it.
    let rows = c.instances("web");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["restarts"], 0, "{rows:?}");
}
