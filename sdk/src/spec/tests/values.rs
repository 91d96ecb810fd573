//! Value syntaxes through the whole parser: environment, ports, memory and
//! CPUs, constraints, durations.

use super::super::*;
use super::{ok, web};

fn env_of(body: &str) -> Vec<String> {
    ok(&web(body)).app.services["web"]
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

#[test]
fn environment_map_form_stringifies_scalars() {
    let body = "environment:\n  S: text\n  I: 42\n  O: 0080\n  F: 1.50\n  B: true\n  N:\n  T: ~\n  Q: \"quoted: yes\"\n  E: a=b";
    assert_eq!(
        env_of(body),
        [
            "B=true",
            "E=a=b",
            "F=1.50",
            "I=42",
            "N=",
            "O=0080",
            "Q=quoted: yes",
            "S=text",
            "T="
        ]
    );
}

#[test]
fn environment_list_form() {
    let body = "environment:\n  - A=1\n  - B\n  - C=x=y\n  - D=\n  - A=2";
    // Later entries win, as with repeated `-e` flags.
    assert_eq!(env_of(body), ["A=2", "B=", "C=x=y", "D="]);
}

fn ports_of(body: &str) -> Vec<(u16, u16)> {
    ok(&web(body)).app.services["web"]
        .ports
        .iter()
        .map(|p| (p.published, p.target))
        .collect()
}

#[test]
fn port_forms() {
    let body = "ports:\n  - \"8080:80\"\n  - \"8081\"\n  - 8082\n  - 8083:83\n  - \"8084:84/tcp\"\n  - \"127.0.0.1:8085:85\"\n  - \"[::1]:8086:86\"\n  - target: 87\n    published: 8087\n  - target: \"88\"\n    published: \"8088\"\n  - target: 8089";
    assert_eq!(
        ports_of(body),
        [
            (8080, 80),
            // Without a published port: one the server picks.
            (0, 8081),
            (0, 8082),
            (8083, 83),
            (8084, 84),
            (8085, 85),
            (8086, 86),
            (8087, 87),
            (8088, 88),
            (0, 8089)
        ]
    );
}

fn resources_of(body: &str) -> Resources {
    let text = web(&format!("deploy:\n  resources:\n{body}"));
    ok(&text).app.services["web"].deploy.resources
}

#[test]
fn memory_units() {
    let cases: [(&str, u64); 9] = [
        ("64M", 64 << 20),
        ("64m", 64 << 20),
        ("1g", 1 << 30),
        ("512k", 512 << 10),
        ("100b", 100),
        ("1.5G", 1_610_612_736),
        ("1048576", 1 << 20),
        ("\"2048\"", 2048),
        ("256MiB", 256 << 20),
    ];
    for (written, bytes) in cases {
        let r = resources_of(&format!("    limits:\n      memory: {written}"));
        assert_eq!(r.limits.memory, Some(bytes), "{written}");
    }
}

#[test]
fn cpu_counts() {
    let cases = [
        ("\"0.5\"", 500),
        ("0.5", 500),
        ("2", 2000),
        ("1.25", 1250),
        ("0.1", 100),
        ("'3'", 3000),
    ];
    for (written, milli) in cases {
        let r = resources_of(&format!("    reservations:\n      cpus: {written}"));
        assert_eq!(r.reservations.cpus_milli, Some(milli), "{written}");
    }
}

#[test]
fn constraints_and_preferences() {
    let body = "deploy:\n  placement:\n    constraints: [\"node.labels.region==eu\", \"node.platform.arch != aarch64\"]\n    preferences:\n      - spread: node.labels.zone\n      - spread: node.labels.rack\n    max_replicas_per_node: 0";
    let placement = &ok(&web(body)).app.services["web"].deploy.placement;
    let written: Vec<String> = placement
        .constraints
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        written,
        ["node.labels.region == eu", "node.platform.arch != aarch64"]
    );
    let spread: Vec<&str> = placement
        .preferences
        .iter()
        .map(|p| p.spread_label.as_str())
        .collect();
    assert_eq!(spread, ["zone", "rack"]);
    // 0 means no limit, as in Swarm.
    assert_eq!(placement.max_replicas_per_node, None);
}

#[test]
fn timeouts() {
    for (written, ms) in [
        ("30s", 30_000),
        ("1m30s", 90_000),
        ("250ms", 250),
        ("2h", 7_200_000),
    ] {
        let text = format!(
            "services:\n  api:\n    x-atoll:\n      component: api.wasm\n      timeout: {written}\n"
        );
        assert_eq!(ok(&text).app.services["api"].timeout_ms, ms, "{written}");
    }
}

#[test]
fn numeric_keys_and_service_names_are_text() {
    let parsed = ok("services:\n  123:\n    image: nginx\n    environment:\n      1: one\n");
    let svc = &parsed.app.services["123"];
    assert_eq!(svc.name, "123");
    assert_eq!(svc.environment["1"], "one");
}
