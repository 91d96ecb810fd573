//! Compose `secrets:` and `configs:`, end to end with a real container
//! through youki and a real component: a secret given with `file:` is a
//! file at `/run/secrets/NAME` in the container (0400, on a tmpfs) and a
//! `wasi:config` value in the component; a config given with `content:`
//! is a file at its target. The secret's value appears nowhere else: not
//! in any NATS stream (read whole with a real client), nor in the host's
//! `assignment.json` or the container's `config.json`, nor in `ps -o
//! json`, `history` or the events. A changed value replaces the instances,
//! which then see the new one.

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
use futures::StreamExt;
use setup::{cluster_with_image, start_container_host};
use std::path::Path;
use std::time::Duration;

const SECRET: &str = "pw-7f3a9c1e-do-not-leak";
const ROTATED: &str = "pw-2b8d4e60-rotated";

/// Every message of every JetStream stream, as bytes.
fn all_stream_messages(nats_url: &str) -> Vec<(String, Vec<u8>)> {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let client = async_nats::connect(nats_url).await.expect("connect");
        let js = async_nats::jetstream::new(client);
        let mut names = js.stream_names();
        let mut out = Vec::new();
        while let Some(name) = names.next().await {
            let name = name.expect("stream name");
            let mut stream = js.get_stream(&name).await.expect("stream");
            let info = stream.info().await.expect("info").clone();
            for seq in info.state.first_sequence..=info.state.last_sequence {
                if let Ok(msg) = stream.get_raw_message(seq).await {
                    out.push((
                        format!("{name}#{seq} {}", msg.subject),
                        msg.payload.to_vec(),
                    ));
                }
            }
        }
        out
    })
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every file under `dir` whose name is `name`.
fn files_named(dir: &Path, name: &str, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(kind) = e.file_type() else { continue };
        // The container's own root is not the host's record of it.
        if kind.is_dir() && e.file_name() != "rootfs" && e.file_name() != "secrets" {
            files_named(&p, name, out);
        } else if kind.is_file() && e.file_name() == name {
            out.push(p);
        }
    }
}

fn compose(reg: &str, web_port: u16, cfg_port: u16) -> String {
    format!(
        "name: vault
services:
  web:
    image: {reg}/web:1
    ports: [\"{web_port}:8080\"]
    stop_grace_period: 1s
    secrets:
      - db_password
    configs:
      - source: motd
        target: /etc/motd
  cfg:
    x-atoll:
      component: {}
    ports: [\"{cfg_port}:80\"]
    secrets:
      - db_password
secrets:
  db_password:
    file: ./db_password.txt
configs:
  motd:
    content: hello from a config
",
        sample_wasm("faulty").display()
    )
}

#[test]
fn secrets_reach_their_services_only_and_appear_nowhere_else() {
    let (mut dirs, mut c, registry) = cluster_with_image("vault\n");
    let reg = registry.host.clone();
    let data = dirs.data("h1");
    let bind = "127.0.23.2";
    start_container_host(&mut c, "h1", bind, &data, &reg, "10.89.224.0/24", &[]);
    let events = c.follow_events();

    let (web_port, cfg_port) = (free_port(), free_port());
    std::fs::write(c.dir.path().join("db_password.txt"), SECRET).expect("secret file");
    let file = c.compose("vault.yaml", &compose(&reg, web_port, cfg_port));
    c.deploy_wait(&file);
    let web = format!("{bind}:{web_port}");
    let cfg = format!("{bind}:{cfg_port}");

    let read = |hostport: &str, path: &str, want: &str| {
        wait_until(
            &format!("{path} on {hostport} to say {want:?}"),
            Duration::from_secs(30),
            || {
                http_get(hostport, path)
                    .ok()
                    .filter(|(status, body)| *status == 200 && body.contains(want))
                    .map(|(_, body)| body)
            },
        )
    };
    let secret = read(&web, "/cgi-bin/file?/run/secrets/db_password", SECRET);
    assert!(
        secret.contains("-r--------    1 0        0"),
        "0400, owned by the container's user (root): {secret}"
    );
    let motd = read(&web, "/cgi-bin/file?/etc/motd", "hello from a config");
    assert!(motd.contains("-r--r--r--"), "a config is 0444: {motd}");
    read(&cfg, "/config/db_password", SECRET);
    let (status, _) = http_get(&cfg, "/config/motd").expect("config route");
    assert_eq!(status, 404, "the component mounts no config motd");

    // The value is in the services and nowhere else.
    let mut leaks = Vec::new();
    for (at, bytes) in all_stream_messages(&c.nats_url) {
        if contains(&bytes, SECRET) {
            leaks.push(at);
        }
    }
    for name in ["assignment.json", "config.json"] {
        let mut found = Vec::new();
        files_named(&data, name, &mut found);
        assert!(!found.is_empty(), "no {name} under {}", data.display());
        for p in found {
            if contains(&std::fs::read(&p).unwrap_or_default(), SECRET) {
                leaks.push(p.display().to_string());
            }
        }
    }
    for args in [
        &["ps", "-o", "json"][..],
        &["history", "vault", "-o", "json"],
        &["ls", "-o", "json"],
    ] {
        let out = c.atoll_ok(args);
        if contains(&out.stdout, SECRET) || contains(&out.stderr, SECRET) {
            leaks.push(format!("atoll {}", args.join(" ")));
        }
    }
    if contains(events.log().as_bytes(), SECRET) {
        leaks.push("events".into());
    }
    assert!(leaks.is_empty(), "the secret's value leaked into {leaks:?}");

    // A new value is a changed service: its instances are replaced and
    // see the new value.
    let before = c.instances("vault");
    std::fs::write(c.dir.path().join("db_password.txt"), ROTATED).expect("secret file");
    c.deploy_wait(&file);
    read(&web, "/cgi-bin/file?/run/secrets/db_password", ROTATED);
    read(&cfg, "/config/db_password", ROTATED);
    let after = c.instances("vault");
    for old in &before {
        assert!(
            !after.iter().any(|n| n["id"] == old["id"]),
            "{} was replaced: {after:?}",
            old["id"]
        );
    }

    // Removed with the app: nothing of its values stays in NATS.
    c.atoll_ok(&["rm", "vault"]);
    wait_until("the app to go", Duration::from_secs(30), || {
        c.instances("vault").is_empty().then_some(())
    });
    let left: Vec<String> = all_stream_messages(&c.nats_url)
        .into_iter()
        .filter(|(at, _)| at.starts_with("KV_atoll-default-secrets") && at.contains("vault."))
        .map(|(at, _)| at)
        .collect();
    assert!(left.is_empty(), "sealed values left after rm: {left:?}");
}

#[test]
fn a_missing_or_undeclared_secret_is_refused_naming_it() {
    let c = Cluster::start();
    let file = c.compose(
        "bad.yaml",
        "name: bad\nservices:\n  web:\n    image: nginx\n    secrets: [api_key, nope]\nsecrets:\n  api_key:\n    environment: ATOLL_TEST_UNSET_KEY\n",
    );
    let out = c.deploy(&file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("services.web.secrets[1]: secret \"nope\" is not declared")
            && err.contains("(line 5)"),
        "{err}"
    );
    let file = c.compose(
        "unset.yaml",
        "name: unset\nservices:\n  web:\n    image: nginx\n    secrets: [api_key]\nsecrets:\n  api_key:\n    environment: ATOLL_TEST_UNSET_KEY\n",
    );
    let out = c.deploy(&file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("secrets.api_key.environment: ATOLL_TEST_UNSET_KEY is not set"),
        "{err}"
    );
    assert!(c.instances("unset").is_empty());
}
