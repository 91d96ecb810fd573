//! Service addresses are allocated so that no two services of a cluster
//! share one, end to end with real containers: two apps whose names hash
//! to one address each reach their own service by name.

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

/// Two app names whose service `web` hashes to one address, found (not
/// hard-coded): with a 16-bit hash, a few hundred names are enough.
fn colliding_apps() -> (String, String) {
    let mut seen = std::collections::HashMap::new();
    for i in 0..200_000 {
        let name = format!("c{i}");
        let vip = atoll_sdk::cluster::service_vip(&name, "web");
        if let Some(first) = seen.insert(vip, name.clone()) {
            return (first, name);
        }
    }
    panic!("no two names collided")
}

#[test]
fn services_whose_addresses_would_collide_each_get_their_own() {
    let (first, second) = colliding_apps();
    let (mut dirs, mut c, registry) = cluster_with_image("collide\n");
    let reg = registry.host.clone();
    let data = dirs.data("h1");
    let bind = "127.0.24.2";
    start_container_host(&mut c, "h1", bind, &data, &reg, "10.89.226.0/24", &[]);
    let mut ports = Vec::new();
    for app in [&first, &second] {
        let port = free_port();
        let file = c.compose(
            &format!("{app}.yaml"),
            &format!(
                "name: {app}\nservices:\n  web:\n    image: {reg}/web:1\n    ports: [\"{port}:8080\"]\n    stop_grace_period: 1s\n"
            ),
        );
        c.deploy_wait(&file);
        ports.push(port);
    }
    // Each app's `web` is its own: by name, from inside, each reaches its
    // own instance, at an address of its own.
    let mut addresses = Vec::new();
    for (app, port) in [&first, &second].into_iter().zip(&ports) {
        let at = format!("{bind}:{port}");
        let me = wait_until(
            &format!("{app}'s web to reach itself by name"),
            Duration::from_secs(30),
            || {
                http_get(&at, "/cgi-bin/call?web:8080/cgi-bin/whoami?")
                    .ok()
                    .filter(|(status, body)| *status == 200 && body.contains("-web-"))
                    .map(|(_, body)| body)
            },
        );
        assert!(
            me.trim().starts_with(&format!("{app}-web-")),
            "{app} reached {me:?}"
        );
        let (_, hosts) = http_get(&at, "/cgi-bin/file?/etc/hosts").expect("hosts");
        let web = (hosts.lines())
            .find(|l| l.split_whitespace().nth(1) == Some("web"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no web in {hosts}"))
            .to_string();
        addresses.push(web);
    }
    assert_ne!(
        addresses[0], addresses[1],
        "{first} and {second} share {addresses:?}"
    );
    assert_eq!(
        addresses[0],
        atoll_sdk::cluster::service_vip(&first, "web").to_string(),
        "the first keeps its hashed address"
    );
}
