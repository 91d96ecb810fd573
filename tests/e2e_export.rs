//! Backups: `atoll export` of an app with two revisions, NATS and the
//! server replaced by fresh ones (a new store: nothing survives) while
//! the host runs on, `atoll import`, and the host's instances are adopted
//! under the same ids without a restart; the history is back and a
//! rollback to the first revision works. An import over a newer revision
//! is refused unless forced, and a malformed file changes nothing. An apps
//! bucket deleted under a running fleet is noticed, not obeyed: nothing
//! stops until an import restores it.

mod common;

use common::load::Load;
use common::*;
use serde_json::Value;
use std::time::Duration;

/// Components only: no runtime binary, so no container network is made.
const NO_CONTAINERS: &[&str] = &["--oci-runtime", "/nonexistent/oci-runtime"];

/// The running instances of `app`: (id, revision, restarts), by id.
fn running(c: &Cluster, app: &str) -> Vec<(String, u64, u64)> {
    let mut out: Vec<(String, u64, u64)> = (c.instances(app).iter())
        .filter(|i| i["state"] == "running")
        .map(|i| {
            (
                i["id"].as_str().unwrap_or_default().to_string(),
                i["revision"].as_u64().unwrap_or_default(),
                i["restarts"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    out.sort();
    out
}

/// `atoll history APP -o json`: (revision, current) oldest first.
fn history(c: &Cluster, app: &str) -> Vec<(u64, bool)> {
    let rows = c.json(&["history", app, "-o", "json"]);
    (rows.as_array().cloned().unwrap_or_default().iter())
        .map(|r| {
            (
                r["revision"].as_u64().unwrap_or_default(),
                r["current"] == true,
            )
        })
        .collect()
}

fn compose(port: u16, version: &str) -> String {
    format!(
        "name: keep
services:
  hello:
    x-atoll:
      component: {}
    environment:
      VERSION: \"{version}\"
    deploy:
      replicas: 2
    ports: [\"{port}:80\"]
",
        sample_wasm("hello").display()
    )
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn an_export_imported_into_a_fresh_cluster_adopts_what_hosts_run() {
    let mut c = Cluster::start();
    let bind = "127.0.14.2";
    c.start_host("h1", bind, NO_CONTAINERS);
    let port = free_port();
    c.deploy_wait(&c.compose("keep-1.yaml", &compose(port, "1")));
    c.deploy_wait(&c.compose("keep-2.yaml", &compose(port, "2")));
    let before = wait_until(
        "two instances of revision 2",
        Duration::from_secs(30),
        || {
            let r = running(&c, "keep");
            (r.len() == 2 && r.iter().all(|(_, rev, _)| *rev == 2)).then_some(r)
        },
    );
    assert!(
        before.iter().all(|(_, _, restarts)| *restarts == 0),
        "{before:?}"
    );

    // Export: JSON on stdout with the format version, cluster and history.
    let out = c.atoll_ok(&["export"]);
    let state: Value = serde_json::from_slice(&out.stdout).expect("export is JSON");
    assert_eq!(state["v"], 1);
    assert_eq!(state["cluster"], "default");
    assert_eq!(state["apps"][0]["name"], "keep");
    assert_eq!(state["apps"][0]["current"], 2);
    let revisions: Vec<u64> = (state["apps"][0]["revisions"].as_array())
        .map(|a| a.iter().filter_map(|r| r["revision"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(revisions, [1, 2]);
    let file = c.dir.path().join("state.json");
    std::fs::write(&file, &out.stdout).expect("write state");
    let file = file.to_string_lossy().to_string();

    // A new control plane: the server and NATS die, NATS starts on an
    // empty store. The host runs on.
    c.server.as_mut().expect("server").kill9();
    c.nats.as_mut().expect("nats").kill9();
    std::fs::remove_dir_all(c.dir.path().join("nats")).expect("remove the NATS store");
    c.start_nats();
    c.start_server();
    c.wait_host_ready("h1", Duration::from_secs(30));
    let ls = c.json(&["ls", "-o", "json"]);
    assert_eq!(
        ls.as_array().map(Vec::len),
        Some(0),
        "a fresh cluster: {ls}"
    );

    let out = c.atoll_ok(&["import", &file]);
    let said = text(&out);
    assert!(
        said.contains("app keep: imported 2 revision(s), revision 2 deployed"),
        "{said}"
    );
    assert!(said.contains("1 app(s) imported, 0 skipped"), "{said}");

    // Adopted: the same instances, never restarted, and no others.
    wait_until(
        "the host's instances to be adopted",
        Duration::from_secs(30),
        || (running(&c, "keep") == before).then_some(()),
    );
    // The host took the new bucket's assignment (its revisions count from
    // 1 again) and runs on what it lists: the same instances, untouched.
    wait_until(
        "the host to take the adopting assignment",
        Duration::from_secs(15),
        || {
            (c.host("h1").log())
                .contains("the assignments bucket was made anew")
                .then_some(())
        },
    );
    assert!(
        !c.host("h1").log().contains("ignoring an assignment older"),
        "the host refused the new bucket's assignment"
    );
    assert_eq!(running(&c, "keep"), before, "adopted, not restarted");
    assert_eq!(c.instances("keep").len(), 2, "no extra instances");
    assert_eq!(history(&c, "keep"), [(1, false), (2, true)]);
    let addr = format!("{bind}:{port}");
    wait_until("the app to answer", Duration::from_secs(15), || {
        http_get(&addr, "/")
            .ok()
            .filter(|(s, b)| *s == 200 && b.contains("hello from"))
    });

    // A rollback to an imported revision.
    let out = c.atoll_ok(&["rollback", "keep", "--to", "1", "--wait", "--timeout", "60"]);
    assert!(
        text(&out).contains("app keep revision 3 restores revision 1"),
        "{}",
        text(&out)
    );
    let after = wait_until(
        "two instances of revision 3",
        Duration::from_secs(30),
        || {
            let r = running(&c, "keep");
            (r.len() == 2 && r.iter().all(|(_, rev, _)| *rev == 3)).then_some(r)
        },
    );
    assert!(
        after.iter().all(|a| !before.contains(a)),
        "replaced: {after:?}"
    );

    // The cluster is now ahead of the file: refused, naming both.
    let out = c.atoll(&["import", &file]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("import refused, nothing was changed")
            && said.contains(
                "app keep: the cluster has revision 3, newer than the file's revision 2 (--force overwrites it)"
            ),
        "{said}"
    );
    assert_eq!(history(&c, "keep"), [(1, false), (2, false), (3, true)]);

    // Malformed files change nothing: named by the CLI, and by the server.
    let bad = c.dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"v": 1, "cluster": "x", "exported_at_ms": 0, "apps": [{"name": "keep", "current": 1, "revisions": [{"revision": 1}]}]}"#,
    )
    .expect("write");
    let out = c.atoll(&["import", &bad.to_string_lossy()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("app keep revision 1: missing field"),
        "{}",
        text(&out)
    );
    std::fs::write(&bad, "not json").expect("write");
    let out = c.atoll(&["import", &bad.to_string_lossy()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not JSON"), "{}", text(&out));
    let api = c.api.replace("http://", "");
    let (status, body) = http_request(&api, "POST", "/v1/import", br#"{"v": 2, "apps": []}"#);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("export format version 2 is not supported"),
        "{body}"
    );
    assert_eq!(history(&c, "keep"), [(1, false), (2, false), (3, true)]);

    // Forced: the file's revision 2 is deployed again.
    let out = c.atoll_ok(&["import", &file, "--force"]);
    assert!(text(&out).contains("revision 2 deployed"), "{}", text(&out));
    wait_until(
        "two instances of revision 2 again",
        Duration::from_secs(30),
        || {
            let r = running(&c, "keep");
            (r.len() == 2 && r.iter().all(|(_, rev, _)| *rev == 2)).then_some(())
        },
    );
}

/// The server's `/metrics` value of a sample without labels.
fn gauge(c: &Cluster, name: &str) -> Option<f64> {
    let api = c.api.replace("http://", "");
    let (_, body) = http_get(&api, "/metrics").ok()?;
    (body.lines())
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn an_apps_bucket_deleted_under_a_running_fleet_stops_nothing_until_an_import() {
    let mut c = Cluster::start();
    let bind = "127.0.16.2";
    c.start_host("h1", bind, NO_CONTAINERS);
    let port = free_port();
    c.deploy_wait(&c.compose("keep.yaml", &compose(port, "1")));
    let before = wait_until("two running instances", Duration::from_secs(30), || {
        let r = running(&c, "keep");
        (r.len() == 2).then_some(r)
    });
    let file = c.dir.path().join("state.json");
    std::fs::write(&file, c.atoll_ok(&["export"]).stdout).expect("write state");
    let events = c.follow_events();
    let load = Load::start(&[format!("{bind}:{port}")], "/", 4, |_| "hello from".into());
    wait_until("load to flow", Duration::from_secs(10), || {
        (load.ok() > 50).then_some(())
    });
    assert_eq!(gauge(&c, "atoll_desired_state_lost"), Some(0.0));

    // Someone deletes the apps bucket's stream.
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let client = rt
        .block_on(async_nats::connect(&c.nats_url))
        .expect("connect");
    rt.block_on(async {
        let js = async_nats::jetstream::new(client.clone());
        js.delete_stream("KV_atoll-default-apps").await
    })
    .expect("delete the apps stream");
    events.wait_for_event(
        "state-lost",
        "the apps bucket is gone",
        Duration::from_secs(15),
    );
    wait_until("the gauge to say so", Duration::from_secs(5), || {
        (gauge(&c, "atoll_desired_state_lost") == Some(1.0)).then_some(())
    });
    // Anything that opens the buckets (a host or server starting) makes
    // it again, empty.
    rt.block_on(atoll_sdk::nats::Buckets::open(client, "default"))
        .expect("open the buckets");
    events.wait_for_event(
        "state-lost",
        "the apps bucket went back from revision 1 to 0",
        Duration::from_secs(15),
    );
    // What would stop the fleet is there: the server sees no app. Given
    // a few controller passes (one a second at least), nothing stops.
    wait_until("the server to see no app", Duration::from_secs(15), || {
        let ls = c.json(&["ls", "-o", "json"]);
        (ls.as_array().map(Vec::len) == Some(0)).then_some(())
    });
    let window = std::time::Instant::now();
    while window.elapsed() < Duration::from_secs(3) {
        assert!(
            !c.host("h1").log().contains("stopped instance="),
            "an instance was stopped while desired state was lost"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let stops: Vec<Value> = (events.json_lines().into_iter())
        .filter(|e| e["kind"] == "stop" || e["kind"] == "place")
        .collect();
    assert!(stops.is_empty(), "nothing placed or stopped: {stops:?}");

    // The import makes the bucket again and restores it: the hold is
    // over, the instances are the same ones, never restarted.
    let out = c.atoll_ok(&["import", &file.to_string_lossy()]);
    assert!(text(&out).contains("1 app(s) imported"), "{}", text(&out));
    events.wait_for_event(
        "state-lost",
        "desired state is back",
        Duration::from_secs(15),
    );
    wait_until("the gauge to clear", Duration::from_secs(5), || {
        (gauge(&c, "atoll_desired_state_lost") == Some(0.0)).then_some(())
    });
    wait_until("the same instances", Duration::from_secs(30), || {
        (running(&c, "keep") == before).then_some(())
    });
    assert_eq!(c.instances("keep").len(), 2, "no extra instances");
    assert!(
        !c.host("h1").log().contains("stopped instance="),
        "nothing was stopped"
    );
    let seen = load.finish();
    assert_eq!(seen.failed, 0, "{:?}", seen.failures);
}
