//! Cluster trust, the hosts: a host joins with a `host` token and keeps
//! the identity it gets; its NATS user reaches its own part only (another
//! host's heartbeat, another host's assignment, the apps bucket: each
//! refused, tried with a real NATS client); component state works through
//! the grant a server gives it; a used-up token and a taken name are
//! refused; restarted with NATS and the API gone, it starts from its
//! identity and cache and serves.

mod common;

use async_nats::jetstream;
use common::cli::{cli, ok, refused};
use common::*;
use futures::StreamExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Components only: no runtime binary, so no container network is made.
const NO_CONTAINERS: &[&str] = &["--oci-runtime", "/nonexistent/oci-runtime"];

fn nats_with_accounts(dir: &Path, ids: &Path, port: u16) -> Proc {
    let mut cmd = Command::new("nats-server");
    cmd.arg("-c")
        .arg(ids.join("nats-auth.conf"))
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.join("nats-store"));
    let nats = Proc::spawn("nats", &mut cmd, dir);
    wait_until("NATS", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    nats
}

/// A JetStream context of `client` that gives up after a second (a
/// refused publish is never acknowledged).
fn impatient(client: async_nats::Client) -> jetstream::Context {
    jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_secs(1))
        .build(client)
}

#[test]
fn a_host_joins_and_reaches_its_own_part_only() {
    let dir = tempdir::Dir::new();
    let ids = dir.path().join("identity");
    let ctx = dir.path().join("context.json");
    let (nats_port, api_port) = (free_port(), free_port());
    let listen = format!("127.0.0.1:{api_port}");
    ok(cli(
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
    ));
    let mut nats = nats_with_accounts(dir.path(), &ids, nats_port);
    let nats_url = format!("nats://127.0.0.1:{nats_port}");
    let mut c = Cluster::on_nats(&nats_url);
    let server = c.spawn_server("s1", api_port, &["--identity", &ids.to_string_lossy()]);
    let as_admin = |args: &[&str]| cli(&ctx, &[], args);
    wait_until("the secure API", Duration::from_secs(15), || {
        as_admin(&["ls"]).status.success().then_some(())
    });

    // Without an identity or --insecure a host does not start.
    let data = c.dir.path().join("host-h1");
    // A host run that is expected to end: `atoll host` with `extra`.
    let host_run = |name: &str, data: &Path, extra: &[&str]| {
        Command::new(atoll_bin())
            .args(["host", "--nats", &nats_url, "--name", name, "--data-dir"])
            .arg(data)
            .args(extra)
            .args(NO_CONTAINERS)
            .output()
            .expect("run atoll host")
    };
    refused(host_run("h1", &data, &[]), "no identity");

    // Joins with a one-time host token.
    let token = ok(as_admin(&["token", "create", "--role", "host"]));
    let ca = ids.join("ca.pem").to_string_lossy().to_string();
    let server_url = format!("https://127.0.0.1:{api_port}");
    let join: Vec<&str> = ["--server", &server_url, "--join", &token, "--ca", &ca].to_vec();
    let flags: Vec<&str> = join
        .iter()
        .copied()
        .chain(NO_CONTAINERS.iter().copied())
        .collect();
    c.spawn_host_in(None, "h1", "127.0.19.2", &data, &flags);
    wait_until("h1 to be ready", Duration::from_secs(30), || {
        let out = as_admin(&["hosts", "-o", "json"]);
        let hosts: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (hosts.as_array()?.iter())
            .any(|h| h["name"] == "h1" && h["state"] == "ready")
            .then_some(())
    });
    let creds = data.join("identity/nats.creds");
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p)
            .expect("identity file")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&creds), 0o600);
    assert_eq!(mode(&data.join("identity/mesh.key")), 0o600);

    // The token is used up; a name joins once.
    let again = host_run("h2", &c.dir.path().join("host-h2"), &join);
    refused(again, "unknown or revoked token");
    let many = ok(as_admin(&[
        "token", "create", "--role", "host", "--ttl", "10m",
    ]));
    let join_many = ["--server", &server_url, "--join", &many, "--ca", &ca];
    let twin = host_run("h1", &c.dir.path().join("host-h1-twin"), &join_many);
    refused(twin, "has joined already");
    // Nor under another case: certificate names compare without it.
    let upper = host_run("H1", &c.dir.path().join("host-upper"), &join_many);
    refused(upper, "is not a host name");

    // Component state through the grant: the data tier keeps items.
    let port = free_port();
    let file = c.compose(
        "data.yaml",
        &format!(
            "name: shop
services:
  data:
    x-atoll:
      component: {}
    ports: [\"{port}:80\"]
",
            sample_wasm("three_tier_data").display()
        ),
    );
    ok(as_admin(&[
        "deploy",
        "-f",
        &file.to_string_lossy(),
        "--wait",
    ]));
    let addr = format!("127.0.19.2:{port}");
    let put = http_request(&addr, "PUT", "/items/tea", br#"{"name":"tea"}"#);
    assert_eq!(put.0, 201, "{put:?}");
    let got = http_get(&addr, "/items/tea");
    assert!(matches!(&got, Ok((200, b)) if b.contains("tea")), "{got:?}");
    // Its host answers `atoll logs` (to the server's inbox, which its own
    // NATS user may publish to only as the reply to a request).
    let logs = ok(as_admin(&["logs", "shop", "--timestamps"]));
    assert!(!logs.contains("did not answer"), "{logs}");
    // So is an interactive exec's first frame (here: why it cannot run).
    let rows = ok(as_admin(&["ps", "shop", "-q"]));
    let id = rows.trim();
    let out = as_admin(&["exec", "-i", id, "--", "true"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("Wasm component"), "{said}");

    // A second host joins (a token with a TTL serves several), and calls
    // between the two go over the mesh, mutual TLS.
    let data2 = c.dir.path().join("host-h2");
    let flags2: Vec<&str> = ["--server", &server_url, "--join", &many, "--ca", &ca]
        .into_iter()
        .chain(NO_CONTAINERS.iter().copied())
        .collect();
    c.spawn_host_in(None, "h2", "127.0.19.3", &data2, &flags2);
    let hello_port = free_port();
    let hello = c.compose(
        "hello.yaml",
        &format!(
            "name: hello
services:
  web:
    x-atoll:
      component: {}
    ports: [\"{hello_port}:80\"]
    deploy:
      replicas: 2
      placement:
        max_replicas_per_node: 1
",
            sample_wasm("hello").display()
        ),
    );
    wait_until("h2 to be ready", Duration::from_secs(30), || {
        let out = as_admin(&["hosts", "-o", "json"]);
        let hosts: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (hosts.as_array()?.iter())
            .any(|h| h["name"] == "h2" && h["state"] == "ready")
            .then_some(())
    });
    ok(as_admin(&[
        "deploy",
        "-f",
        &hello.to_string_lossy(),
        "--wait",
    ]));
    let via_h1 = format!("127.0.19.2:{hello_port}");
    wait_until(
        "h1's port to answer from h2's instance",
        Duration::from_secs(10),
        || {
            let answer = http_get(&via_h1, "/").ok()?;
            (answer.0 == 200 && answer.1.contains(" on h2")).then_some(())
        },
    );
    assert!(c.host("h1").log().contains("mesh port open (mutual TLS)"));

    // The mesh port: no client certificate, or plain HTTP: nothing.
    let mesh = "h1.hosts.atoll.invalid:7421";
    let curl = |extra: &[&str], url: &str| {
        Command::new("curl")
            .args(["-sS", "--max-time", "5", "--cacert", &ca])
            .args(["--resolve", &format!("{mesh}:127.0.19.2")])
            .args(extra)
            .arg(url)
            .output()
            .expect("run curl")
    };
    let bare = curl(&[], &format!("https://{mesh}/"));
    assert!(
        !bare.status.success(),
        "a mesh call without a certificate: {bare:?}"
    );
    // The API's certificate: the cluster's CA signed it, but not for a
    // host (server use only).
    let (api_cert, api_key) = (ids.join("api.pem"), ids.join("api.key"));
    let api_cert = curl(
        &[
            "--cert",
            &api_cert.to_string_lossy(),
            "--key",
            &api_key.to_string_lossy(),
        ],
        &format!("https://{mesh}/"),
    );
    assert!(
        !api_cert.status.success(),
        "a mesh call with the API's certificate: {api_cert:?}"
    );
    let plain = curl(&[], "http://127.0.19.2:7421/metrics");
    assert!(
        !plain.status.success(),
        "plain HTTP to the mesh port: {plain:?}"
    );
    // A peer's certificate, for a route the table does not allow: the
    // shop's data instance (on h1) through hello's published port.
    let rows = ok(as_admin(&["ps", "shop", "-o", "json"]));
    let rows: serde_json::Value = serde_json::from_str(&rows).expect("json");
    let data_id = rows[0]["id"].as_str().expect("an instance id").to_string();
    let (cert, key) = (
        data2.join("identity/mesh.pem"),
        data2.join("identity/mesh.key"),
    );
    let headers = [
        "--cert".to_string(),
        cert.to_string_lossy().to_string(),
        "--key".to_string(),
        key.to_string_lossy().to_string(),
        "-H".to_string(),
        "x-atoll-hop: 1".to_string(),
        "-H".to_string(),
        format!("x-atoll-instance: {data_id}"),
        "-H".to_string(),
        format!("x-atoll-port: {hello_port}"),
        "-H".to_string(),
        "x-atoll-published: 1".to_string(),
    ];
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let wrong = curl(&headers, &format!("https://{mesh}/items"));
    let said = String::from_utf8_lossy(&wrong.stdout).to_string();
    assert!(said.contains("refused"), "{said} {wrong:?}");
    // The same certificate, for a route the table allows: served.
    let hello_rows = ok(as_admin(&["ps", "hello", "-o", "json"]));
    let hello_rows: serde_json::Value = serde_json::from_str(&hello_rows).expect("json");
    let on_h1 = (hello_rows.as_array().into_iter().flatten())
        .find(|r| r["host"] == "h1")
        .and_then(|r| r["id"].as_str())
        .expect("hello on h1")
        .to_string();
    let headers: Vec<String> = headers
        .iter()
        .map(|h| h.replace(&data_id, &on_h1))
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let right = curl(&headers, &format!("https://{mesh}/"));
    let said = String::from_utf8_lossy(&right.stdout).to_string();
    assert!(
        said.contains(&format!("hello from {on_h1}")),
        "{said} {right:?}"
    );

    // A secret, sealed with the key derived from the identity: the
    // service's component reads it through `wasi:config`; the host that
    // runs it is given it, the other host is refused it.
    std::fs::write(c.dir.path().join("token.txt"), "joined-secret-51c0").expect("secret");
    let cfg_port = free_port();
    let cfg = c.compose(
        "cfg.yaml",
        &format!(
            "name: cfg
services:
  cfg:
    x-atoll:
      component: {}
    ports: [\"{cfg_port}:80\"]
    secrets: [token]
secrets:
  token:
    file: ./token.txt
",
            sample_wasm("faulty").display()
        ),
    );
    ok(as_admin(&[
        "deploy",
        "-f",
        &cfg.to_string_lossy(),
        "--wait",
    ]));
    wait_until(
        "the component to read its secret",
        Duration::from_secs(20),
        || {
            let got = http_get(&format!("127.0.19.2:{cfg_port}"), "/config/token").ok()?;
            (got == (200, "joined-secret-51c0".to_string())).then_some(())
        },
    );
    let rows = ok(as_admin(&["ps", "cfg", "-o", "json"]));
    let rows: serde_json::Value = serde_json::from_str(&rows).expect("json");
    let runs_it = rows[0]["host"].as_str().expect("a host").to_string();
    // The digest the host's cached assignment names the secret by.
    let cached = c.dir.path().join(format!("host-{runs_it}/assignment.json"));
    let cached: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cached).expect("the cached assignment"))
            .expect("json");
    fn find_digest(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::Object(m) => match (m.get("kind"), m.get("digest")) {
                (Some(k), Some(d)) if k == "secret" => d.as_str().map(str::to_string),
                _ => m.values().find_map(find_digest),
            },
            serde_json::Value::Array(a) => a.iter().find_map(find_digest),
            _ => None,
        }
    }
    let digest = find_digest(&cached).expect("the secret's digest in the assignment");
    let ask = |host: &str, creds: std::path::PathBuf| {
        let body = format!(
            r#"{{"app":"cfg","wanted":[{{"kind":"secret","name":"token","digest":"{digest}"}}]}}"#
        );
        let subject = format!("atoll.default.secrets.{host}");
        let url = nats_url.clone();
        let host = host.to_string();
        tokio::runtime::Runtime::new()
            .expect("tokio")
            .block_on(async move {
                let client = async_nats::ConnectOptions::with_credentials_file(&creds)
                    .await
                    .expect("creds")
                    .custom_inbox_prefix(format!("_INBOX_{host}"))
                    .connect(&url)
                    .await
                    .expect("the host's credentials connect");
                let reply = tokio::time::timeout(
                    Duration::from_secs(10),
                    client.request(subject, body.into()),
                )
                .await
                .expect("an answer within 10 s")
                .expect("request");
                String::from_utf8_lossy(&reply.payload).to_string()
            })
    };
    let creds_of = |host: &str| match host {
        "h1" => data.join("identity/nats.creds"),
        _ => data2.join("identity/nats.creds"),
    };
    let other = if runs_it == "h1" { "h2" } else { "h1" };
    let given = ask(&runs_it, creds_of(&runs_it));
    assert!(
        given.contains("\"value\""),
        "{runs_it} is given it: {given}"
    );
    assert!(
        !given.contains("joined-secret"),
        "base64 on the wire: {given}"
    );
    let refused = ask(other, creds_of(other));
    assert!(
        refused.contains("is not mounted by an instance assigned to"),
        "{other} is refused it: {refused}"
    );

    // h1's own NATS user, in a real client.
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let anonymous = async_nats::connect(&nats_url).await;
        assert!(anonymous.is_err(), "an anonymous NATS client was let in");
        let h1 = async_nats::ConnectOptions::with_credentials_file(&creds)
            .await
            .expect("creds")
            .custom_inbox_prefix("_INBOX_h1")
            .connect(&nats_url)
            .await
            .expect("h1's credentials connect");
        let admin = async_nats::ConnectOptions::with_credentials_file(ids.join("server.creds"))
            .await
            .expect("creds")
            .connect(&nats_url)
            .await
            .expect("the server's credentials connect");

        // Another host's heartbeat: never delivered. h1's own subject,
        // sent after it on the same connection, is: once that arrived,
        // the other would have.
        let mut beats = admin
            .subscribe("atoll.default.hb.*")
            .await
            .expect("subscribe");
        admin.flush().await.expect("flush");
        h1.publish("atoll.default.hb.h2", "forged".into())
            .await
            .expect("publish");
        // The marker, again every half second until it is seen (bounded:
        // the hosts' own heartbeats never let the subscription go quiet).
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut again = tokio::time::interval(Duration::from_millis(500));
        let marked = loop {
            tokio::select! {
                _ = again.tick() => {
                    h1.publish("atoll.default.hb.h1", "marker".into())
                        .await
                        .expect("publish");
                    h1.flush().await.expect("flush");
                }
                msg = beats.next() => match msg {
                    Some(m) if &m.payload[..] == b"marker" => break true,
                    Some(m) => seen.push((m.subject.to_string(), m.payload.clone())),
                    None => break false,
                },
                () = tokio::time::sleep_until(deadline) => break false,
            }
        };
        assert!(
            marked,
            "h1's own heartbeat subject never delivered: {seen:?}"
        );
        assert!(
            !seen
                .iter()
                .any(|(s, p)| s == "atoll.default.hb.h2" || &p[..] == b"forged"),
            "a heartbeat of h2 from h1's user went through: {seen:?}"
        );

        // Another host's assignment key, and the apps bucket: refused,
        // and what they hold is unchanged.
        let js = impatient(admin.clone());
        let all = js
            .get_key_value("atoll-default-assignments")
            .await
            .expect("bucket");
        let h2_before = all.entry("h2").await.expect("read").map(|e| e.revision);
        assert!(h2_before.is_some(), "h2 has an assignment");
        let js1 = impatient(h1.clone());
        let assignments = js1
            .get_key_value("atoll-default-assignments")
            .await
            .expect("h1 may open the assignments bucket");
        assert!(
            assignments.put("h2", "{}".into()).await.is_err(),
            "wrote h2's assignment"
        );
        assert!(
            assignments.entry("h2").await.is_err(),
            "read h2's assignment"
        );
        let mine = assignments.entry("h1").await.expect("h1 reads its own");
        assert!(mine.is_some(), "h1's assignment");
        let wrote_apps = js1
            .publish("$KV.atoll-default-apps.shop", "{}".into())
            .await;
        let acked = match wrote_apps {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        assert!(!acked, "h1's user wrote the apps bucket");
        assert!(
            js1.get_key_value("atoll-default-apps").await.is_err(),
            "opened apps"
        );
        assert!(
            js1.get_key_value("atoll-default-tokens").await.is_err(),
            "opened tokens"
        );
        let apps = js.get_key_value("atoll-default-apps").await.expect("apps");
        let shop = apps
            .get("shop")
            .await
            .expect("read")
            .expect("shop's record");
        assert_ne!(&shop[..], b"{}", "the apps bucket changed");
        let h2_after = all.entry("h2").await.expect("read").map(|e| e.revision);
        assert_eq!(h2_before, h2_after, "h2's assignment changed");
    });
    // NATS logged each refusal.
    wait_until("NATS to log the violations", Duration::from_secs(5), || {
        let log = nats.log();
        let refused = |subject: &str| {
            let subject = format!("Subject \"{subject}\"");
            (log.lines()).any(|l| l.contains("Publish Violation") && l.contains(&subject))
        };
        (refused("atoll.default.hb.h2") && refused("$KV.atoll-default-apps.shop")).then_some(())
    });
    // And nothing else: the host itself works within its permissions.
    let tried = [
        "atoll.default.hb.h2",
        "$KV.atoll-default-assignments.h2",
        "$JS.API.DIRECT.GET.KV_atoll-default-assignments.$KV.atoll-default-assignments.h2",
        "$KV.atoll-default-apps.shop",
        "$JS.API.STREAM.INFO.KV_atoll-default-apps",
        "$JS.API.STREAM.INFO.KV_atoll-default-tokens",
    ];
    let log = nats.log();
    let others: Vec<&str> = (log.lines())
        .filter(|l| l.contains("Violation"))
        .filter(|l| {
            !tried
                .iter()
                .any(|t| l.contains(&format!("Subject \"{t}\"")))
        })
        .collect();
    assert!(others.is_empty(), "refused to the host itself: {others:#?}");

    // Offline restart: NATS and the server gone, the host starts from its
    // identity (its join token is used up) and serves its cached app.
    drop(server);
    nats.kill9();
    c.host("h1").kill9();
    c.spawn_host_in(None, "h1", "127.0.19.2", &data, &flags);
    wait_until(
        "h1 to serve offline",
        Duration::from_secs(20),
        || match http_get(&addr, "/whoami") {
            Ok((200, _)) => Some(()),
            _ => None,
        },
    );
    let log = c.host("h1").log();
    assert!(log.contains("using this host's identity"), "{log}");
    assert!(!log.contains("joining the cluster"), "{log}");
}
