//! `deploy.mode: global`: one instance per matching host, and a host that
//! joins later gets its own.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn global_mode_runs_one_instance_per_matching_host_including_late_joiners() {
    let mut c = Cluster::start();
    c.start_host("edge1", "127.0.3.2", &["--label", "role=edge"]);
    c.start_host("edge2", "127.0.3.3", &["--label", "role=edge"]);
    c.start_host("core", "127.0.3.4", &["--label", "role=core"]);
    let port = free_port();
    let file = c.compose(
        "global.yaml",
        &format!(
            "name: fleet\nservices:\n  agent:\n    x-atoll:\n      component: {}\n    ports: [\"{port}:80\"]\n    deploy:\n      mode: global\n      placement:\n        constraints: [\"node.labels.role == edge\"]\n",
            sample_wasm("hello").display()
        ),
    );
    c.deploy_wait(&file);
    let mut hosts: Vec<String> = c.running("fleet").into_iter().map(|(_, h)| h).collect();
    hosts.sort();
    assert_eq!(
        hosts,
        ["edge1", "edge2"],
        "one per matching host, none on core"
    );

    c.start_host("edge3", "127.0.3.5", &["--label", "role=edge"]);
    let hosts = wait_until("edge3 to get its instance", Duration::from_secs(10), || {
        let mut h: Vec<String> = c.running("fleet").into_iter().map(|(_, h)| h).collect();
        h.sort();
        (h.len() == 3).then_some(h)
    });
    assert_eq!(hosts, ["edge1", "edge2", "edge3"]);
    let (status, body) = http_get(&format!("127.0.3.5:{port}"), "/").expect("request via edge3");
    assert_eq!(status, 200, "{body}");
}
