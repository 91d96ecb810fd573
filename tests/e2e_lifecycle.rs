//! Redeploying and removing an app: an unchanged file changes nothing, a
//! changed one replaces the instances, `atoll rm` stops them and closes the
//! published port.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn redeploy_scale_and_remove() {
    let mut c = Cluster::start();
    c.start_host("h1", "127.0.5.2", &[]);
    let port = free_port();
    let wasm = sample_wasm("hello");
    let compose = |replicas: u32| {
        format!(
            "name: life\nservices:\n  web:\n    x-atoll:\n      component: {}\n    ports: [\"{port}:80\"]\n    deploy:\n      replicas: {replicas}\n",
            wasm.display()
        )
    };
    let file = c.compose("life.yaml", &compose(2));
    c.deploy_wait(&file);
    let first: Vec<String> = c.running("life").into_iter().map(|(id, _)| id).collect();
    assert_eq!(first.len(), 2);

    // The same file again: nothing changes.
    let out = c.atoll(&["deploy", "-f", &file.to_string_lossy()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unchanged"),
        "{out:?}"
    );

    // Scaling keeps the running instances and adds one.
    let file = c.compose("life.yaml", &compose(3));
    c.deploy_wait(&file);
    let scaled: Vec<String> = c.running("life").into_iter().map(|(id, _)| id).collect();
    assert_eq!(scaled.len(), 3);
    assert!(
        first.iter().all(|id| scaled.contains(id)),
        "scaling replaced instances: {first:?} → {scaled:?}"
    );
    let apps = c.json(&["ls", "-o", "json"]);
    assert_eq!(apps[0]["revision"], 2);

    let out = c.atoll(&["rm", "life"]);
    assert!(out.status.success(), "{out:?}");
    wait_until("the instances to stop", Duration::from_secs(10), || {
        c.instances("life").is_empty().then_some(())
    });
    wait_until(
        "the published port to close",
        Duration::from_secs(10),
        || {
            http_get(&format!("127.0.5.2:{port}"), "/")
                .is_err()
                .then_some(())
        },
    );
    let out = c.atoll(&["rm", "life"]);
    assert!(!out.status.success(), "removing a removed app fails");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no app named life"));

    // The name can be used again; revisions keep counting.
    c.deploy_wait(&file);
    let apps = c.json(&["ls", "-o", "json"]);
    assert_eq!(apps[0]["revision"], 3);
}
