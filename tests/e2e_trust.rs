//! Cluster trust, the API: a server started with the identity `atoll
//! cluster init` made serves HTTPS and wants a token on every route but
//! the health check. No token or a forged one: 401; a `read` token reads
//! and is refused a deploy (403); a `deploy` token limited to app `a`
//! deploys `a` and is refused `b`; a revoked or expired token: 401; plain
//! HTTP to it fails. `atoll up` is secure with no flags, and `atoll ps`
//! in another terminal works through the CLI context it wrote.

mod common;

use common::cli::{cli, ok, refused, said};
use common::*;
use futures::StreamExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Components only: no runtime binary, so no container network is made.
const NO_CONTAINERS: &[&str] = &["--oci-runtime", "/nonexistent/oci-runtime"];

fn hello(c: &Cluster, app: &str) -> PathBuf {
    c.compose(
        &format!("{app}.yaml"),
        &format!(
            "name: {app}
services:
  web:
    x-atoll:
      component: {}
",
            sample_wasm("hello").display()
        ),
    )
}

#[test]
fn the_api_wants_a_token_with_the_right_role_and_app() {
    let mut c = Cluster::start();
    let ids = c.dir.path().join("identity");
    let ctx = c.dir.path().join("context.json");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let init = cli(
        &ctx,
        &[],
        &[
            "cluster",
            "init",
            "--dir",
            &ids.to_string_lossy(),
            "--listen",
            &listen,
        ],
    );
    let out = ok(init);
    assert!(
        out.contains("admin.token") && out.contains("ca.pem"),
        "{out}"
    );
    // A second init keeps the CA it made.
    refused(
        cli(
            &ctx,
            &[],
            &["cluster", "init", "--dir", &ids.to_string_lossy()],
        ),
        "already holds a cluster identity",
    );
    let server = c.spawn_server("secure", port, &["--identity", &ids.to_string_lossy()]);
    c.start_host("h1", "127.0.18.2", NO_CONTAINERS);
    let as_admin = |args: &[&str]| cli(&ctx, &[], args);
    wait_until("the secure API", Duration::from_secs(15), || {
        as_admin(&["ls"]).status.success().then_some(())
    });

    // No token: the same server named another way, so the context (and
    // its token) does not apply.
    let ca = ids.join("ca.pem");
    let ca = ca.to_string_lossy();
    let bare = format!("https://localhost:{port}");
    refused(
        cli(&ctx, &[("ATOLL_SERVER", &bare), ("ATOLL_CA", &ca)], &["ps"]),
        "no token",
    );
    // A forged token of the admin's shape, and garbage.
    let forged = "atoll_admin_0000000000000000000000000000000000000000000";
    refused(
        cli(&ctx, &[("ATOLL_TOKEN", forged)], &["ps"]),
        "unknown or revoked token admin",
    );
    refused(
        cli(&ctx, &[("ATOLL_TOKEN", "hunter2")], &["ps"]),
        "malformed token",
    );
    // Plain HTTP to the HTTPS port fails, and the server says who tried.
    refused(
        cli(
            &ctx,
            &[("ATOLL_SERVER", &format!("http://{listen}"))],
            &["ps"],
        ),
        "cannot reach the atoll server",
    );
    wait_until(
        "the refused handshake in the log",
        Duration::from_secs(5),
        || {
            server
                .log()
                .contains("API TLS handshake failed")
                .then_some(())
        },
    );
    // A CA that is not the cluster's: the server is not trusted.
    let other = c.dir.path().join("other");
    ok(cli(
        &c.dir.path().join("other.json"),
        &[],
        &["cluster", "init", "--dir", &other.to_string_lossy()],
    ));
    refused(
        cli(
            &ctx,
            &[("ATOLL_CA", &other.join("ca.pem").to_string_lossy())],
            &["ps"],
        ),
        "cannot reach the atoll server",
    );

    // A read token reads, and may not deploy.
    let read = ok(as_admin(&["token", "create", "--role", "read"]));
    let as_read = |args: &[&str]| cli(&ctx, &[("ATOLL_TOKEN", &read)], args);
    ok(as_read(&["ps"]));
    refused(
        as_read(&["deploy", "-f", &hello(&c, "a").to_string_lossy()]),
        "has role read; this needs deploy",
    );
    refused(as_read(&["token", "ls"]), "this needs admin");

    // A deploy token limited to app a deploys a, and not b.
    let deploy = ok(as_admin(&[
        "token", "create", "--role", "deploy", "--app", "a",
    ]));
    let as_a = |args: &[&str]| cli(&ctx, &[("ATOLL_TOKEN", &deploy)], args);
    ok(as_a(&[
        "deploy",
        "-f",
        &hello(&c, "a").to_string_lossy(),
        "--wait",
        "--timeout",
        "60",
    ]));
    refused(
        as_a(&["deploy", "-f", &hello(&c, "b").to_string_lossy()]),
        "is limited to app a, not b",
    );
    refused(as_a(&["rm", "b"]), "is limited to app a, not b");
    refused(as_a(&["hosts"]), "cluster-wide");
    ok(as_admin(&[
        "deploy",
        "-f",
        &hello(&c, "b").to_string_lossy(),
    ]));
    // Its lists hold its app only.
    let apps = ok(as_a(&["ls", "-o", "json"]));
    let apps: serde_json::Value = serde_json::from_str(&apps).expect("json");
    let names: Vec<&str> = (apps.as_array().into_iter().flatten())
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["a"], "{apps}");

    // Listed (never with a secret), then revoked: refused from then on.
    let listed = ok(as_admin(&["token", "ls", "-o", "json"]));
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("json");
    let rows = listed.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(
        !listed.to_string().contains(&read[12..]),
        "a secret listed: {listed}"
    );
    let read_id = read.split('_').nth(1).expect("token id");
    let ok_revoked = ok(as_admin(&["token", "revoke", read_id]));
    assert!(ok_revoked.contains("revoked"), "{ok_revoked}");
    refused(
        as_read(&["ps"]),
        &format!("unknown or revoked token {read_id}"),
    );
    refused(as_admin(&["token", "revoke", read_id]), "no token");

    // A heartbeat speaks for the host its subject names only: h1's own
    // heartbeat, renamed, sent on h1's subject, makes no host "ghost".
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let client = async_nats::connect(&c.nats_url).await.expect("connect");
        let mut beats = client
            .subscribe("atoll.default.hb.h1")
            .await
            .expect("subscribe");
        // Between changes h1 sends pulses; its whole state comes when
        // asked on a pulse's reply subject, as a server asks.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut forged = loop {
            let beat = tokio::time::timeout_at(deadline, beats.next())
                .await
                .expect("a full heartbeat of h1 within 10 s")
                .expect("a heartbeat");
            let value: serde_json::Value = serde_json::from_slice(&beat.payload).expect("json");
            if value.get("host").is_some() {
                break value;
            }
            if let Some(reply) = beat.reply {
                client
                    .publish(reply, Default::default())
                    .await
                    .expect("ask");
            }
        };
        forged["host"]["name"] = "ghost".into();
        let bytes = serde_json::to_vec(&forged).expect("json");
        client
            .publish("atoll.default.hb.h1", bytes.into())
            .await
            .expect("publish");
        client.flush().await.expect("flush");
    });
    wait_until(
        "the forged heartbeat to be refused",
        Duration::from_secs(10),
        || {
            (server.log())
                .contains("ignoring a heartbeat sent on another host's subject")
                .then_some(())
        },
    );
    let hosts = ok(as_admin(&["hosts", "-o", "json"]));
    assert!(
        !hosts.contains("ghost"),
        "a host made from a forged heartbeat: {hosts}"
    );

    // A token with a TTL expires.
    let brief = ok(as_admin(&[
        "token", "create", "--role", "read", "--ttl", "1s",
    ]));
    let as_brief = |args: &[&str]| cli(&ctx, &[("ATOLL_TOKEN", &brief)], args);
    ok(as_brief(&["ps"]));
    wait_until("the token to expire", Duration::from_secs(15), || {
        let out = as_brief(&["ps"]);
        (!out.status.success() && said(&out).contains("expired")).then_some(())
    });
    drop(server);
}

#[test]
fn atoll_up_is_secure_and_the_cli_needs_no_flags() {
    let dir = tempdir::Dir::new();
    let ctx = dir.path().join("context.json");
    let (nats_port, api_port) = (free_port(), free_port());
    let file = dir.path().join("compose.yaml");
    std::fs::write(
        &file,
        format!(
            "name: hello
services:
  web:
    x-atoll:
      component: {}
    ports: [\"{}:80\"]
",
            sample_wasm("hello").display(),
            free_port()
        ),
    )
    .expect("write compose");
    let mut cmd = Command::new(atoll_bin());
    cmd.args(["up", "-f", &file.to_string_lossy()])
        .args(["--nats", &format!("nats://127.0.0.1:{nats_port}")])
        .args(["--listen", &format!("127.0.0.1:{api_port}")])
        .args(["--bind", "127.0.18.3"])
        .args(["--data-dir", &dir.path().join("data").to_string_lossy()])
        .args(NO_CONTAINERS)
        .env("ATOLL_CONTEXT", &ctx);
    let up = Proc::spawn("up", &mut cmd, dir.path());
    wait_until("atoll up to deploy", Duration::from_secs(60), || {
        up.log().contains("CLI context").then_some(())
    });
    // Another terminal: no flags at all.
    let ps = wait_until("atoll ps", Duration::from_secs(30), || {
        let out = cli(&ctx, &[], &["ps", "-o", "json"]);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (rows.as_array()?.iter().any(|r| r["state"] == "running")).then_some(rows)
    });
    assert!(ps.to_string().contains("hello-web-"), "{ps}");
    // Its NATS has accounts: an anonymous client is refused, the
    // identity's credentials are let in.
    let nats = format!("nats://127.0.0.1:{nats_port}");
    let creds = dir.path().join("data/identity/server.creds");
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let anonymous = rt.block_on(async_nats::connect(&nats));
    let refused = anonymous.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        refused.contains("authorization"),
        "anonymous NATS: {refused:?}"
    );
    let client = rt
        .block_on(async {
            async_nats::ConnectOptions::with_credentials_file(&creds)
                .await?
                .connect(&nats)
                .await
                .map_err(std::io::Error::other)
        })
        .expect("the identity's credentials connect");
    drop(client);
    // The API it serves wants the token: plain HTTP is not answered.
    let plain = http_get(&format!("127.0.0.1:{api_port}"), "/v1/apps");
    assert!(
        !matches!(plain, Ok((200, _))),
        "plain HTTP answered: {plain:?}"
    );
    // Killed with -9, it leaves no nats-server behind.
    let data = dir.path().join("data").to_string_lossy().to_string();
    assert!(!nats_servers_of(&data).is_empty(), "its nats-server runs");
    drop(up);
    wait_until("its nats-server to end", Duration::from_secs(10), || {
        nats_servers_of(&data).is_empty().then_some(())
    });
}

/// The nats-server processes whose command line mentions `text`.
fn nats_servers_of(text: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).to_string())
                .is_ok_and(|c| c.starts_with("nats-server") && c.contains(text))
        })
        .collect()
}
