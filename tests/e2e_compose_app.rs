//! A Compose project written the way projects write them, deployed as
//! written: variables with defaults from `.env` pick the image, a config
//! file and a folder of the project are shipped and read in the
//! container, a database port that no `ports:` names is reached by the
//! service's name from another host, and a `profiles: [debug]` service
//! stays off until its profile is asked for.

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
use std::path::Path;
use std::time::Duration;

/// The services of `app` with a running instance, and where.
fn running_services(c: &Cluster, app: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = (c.instances(app).iter())
        .filter(|i| i["state"] == "running")
        .map(|i| {
            let field = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            (field("service"), field("host"))
        })
        .collect();
    out.sort();
    out
}

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("project folder");
    }
    std::fs::write(path, text).expect("project file");
}

#[test]
fn a_project_as_written_runs_with_its_files_its_variables_and_its_profiles() {
    let (mut dirs, mut c, registry) = cluster_with_image("front page\n");
    let reg = registry.host.clone();
    let (d1, d2) = (dirs.data("h1"), dirs.data("h2"));
    start_container_host(&mut c, "h1", "127.0.25.5", &d1, &reg, "10.89.232.0/24", &[]);
    start_container_host(&mut c, "h2", "127.0.25.6", &d2, &reg, "10.89.233.0/24", &[]);

    let port = free_port();
    let project = c.dir.path().join("shop");
    write(&project.join(".env"), &format!("REGISTRY={reg}\n"));
    write(
        &project.join("site.conf"),
        "greeting = hello from the project folder\n",
    );
    write(
        &project.join("www/notes/today.txt"),
        "shipped with the deploy\n",
    );
    write(
        &project.join("compose.yaml"),
        &format!(
            "name: shop
services:
  front:
    image: ${{REGISTRY}}/web:${{TAG:-1}}
    ports: [\"{port}:8080\"]
    volumes:
      - ./site.conf:/etc/site.conf:ro
      - ./www:/www/extra
    depends_on: [db]
    stop_grace_period: 1s
    deploy:
      placement:
        constraints: [node.hostname == h1]
  db:
    image: ${{REGISTRY}}/web:${{TAG:-1}}
    entrypoint: [/bin/nc, -ll, -p, \"5432\", -e, /bin/echo1]
    expose: [\"5432\"]
    stop_grace_period: 0s
    deploy:
      placement:
        constraints: [node.hostname == h2]
  panel:
    x-atoll:
      component: {panel}
    ports: [\"80\"]
  debug:
    image: ${{REGISTRY}}/web:1
    profiles: [debug]
    stop_grace_period: 0s
",
            panel = sample_wasm("three_tier_front").display(),
        ),
    );
    let file = project.join("compose.yaml");
    let file = file.to_string_lossy().into_owned();

    // The variable's default picks the image; set, it picks another.
    let config = |tag: Option<&str>| {
        let mut cmd = std::process::Command::new(atoll_bin());
        cmd.args(["config", "-f", &file, "-o", "json"]);
        match tag {
            Some(t) => cmd.env("TAG", t),
            None => cmd.env_remove("TAG"),
        };
        let out = cmd.output().expect("atoll config");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let app: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        app["services"]["front"]["artifact"]["ref"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(config(None), format!("{reg}/web:1"));
    assert_eq!(config(Some("2.5")), format!("{reg}/web:2.5"));

    c.atoll_ok(&["deploy", "-f", &file, "--wait", "--timeout", "90"]);
    let services = |c: &Cluster| -> Vec<String> {
        (running_services(c, "shop").into_iter())
            .map(|(s, _)| s)
            .collect()
    };
    assert_eq!(
        services(&c),
        ["db", "front", "panel"],
        "the debug profile's service is left out"
    );
    let placed = running_services(&c, "shop");
    assert!(
        placed.contains(&("db".into(), "h2".into()))
            && placed.contains(&("front".into(), "h1".into())),
        "db and front on different hosts: {placed:?}"
    );
    let at = format!("127.0.25.5:{port}");
    // `"80"` publishes a port the server picks, shown by `ps`.
    let ps = c.atoll_ok(&["ps", "shop", "-o", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&ps.stdout).expect("ps JSON");
    let panel = rows
        .iter()
        .find(|r| r["service"] == "panel")
        .expect("panel");
    let panel_port = panel["ports"][0]["published"]
        .as_u64()
        .expect("a picked port") as u16;
    assert!((30000..=32767).contains(&panel_port), "{panel}");
    assert_eq!(panel["ports"][0]["target"], 80);
    let table = String::from_utf8_lossy(&c.atoll_ok(&["ps", "shop"]).stdout).into_owned();
    assert!(table.contains(&format!("{panel_port}->80")), "{table}");

    // The shipped file, read inside the container, read-only.
    let (status, body) = http_get(&at, "/cgi-bin/file?/etc/site.conf").expect("file");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("greeting = hello from the project folder"),
        "{body}"
    );
    assert!(body.starts_with("-r--r--r--"), "read-only: {body}");
    // The folder's files, served by the container's own web server.
    let (status, body) = http_get(&at, "/extra/notes/today.txt").expect("folder");
    assert_eq!((status, body.as_str()), (200, "shipped with the deploy\n"));

    // The database's port, named nowhere in `ports:`, by the service's
    // name, from a container on another host.
    let said = wait_until("db:5432 by name", Duration::from_secs(20), || {
        http_get(&at, "/cgi-bin/tcp?db:5432")
            .ok()
            .filter(|(s, b)| *s == 200 && b.contains("echo:ping"))
            .map(|(_, b)| b)
    });
    assert_eq!(said, "echo:ping\n");
    // And from a component, over a socket, from either host.
    for bind in ["127.0.25.5", "127.0.25.6"] {
        let said = wait_until("db:5432 from a component", Duration::from_secs(20), || {
            http_get(&format!("{bind}:{panel_port}"), "/tcp/db:5432")
                .ok()
                .filter(|(s, _)| *s == 200)
                .map(|(_, b)| b)
        });
        assert_eq!(said, "echo:ping\n", "through {bind}");
    }
    // Still not from outside: no published port answers it.
    let db_vip_port = std::net::TcpStream::connect_timeout(
        &"127.0.25.6:5432".parse().expect("addr"),
        Duration::from_secs(2),
    );
    assert!(db_vip_port.is_err(), "5432 is published on a host");

    // Deployed again, the picked port stays.
    let again = c.atoll_ok(&["deploy", "-f", &file, "--dry-run"]);
    let plan = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(plan.contains("nothing changed"), "{plan}");
    assert!(
        (plan.lines()).any(|l| l.starts_with("panel") && l.contains("unchanged")),
        "{plan}"
    );

    // A changed file is a changed service: its instance is replaced and
    // the new one reads the new content.
    write(&project.join("site.conf"), "greeting = changed\n");
    c.atoll_ok(&["deploy", "-f", &file, "--wait", "--timeout", "90"]);
    let body = wait_until("the changed file", Duration::from_secs(30), || {
        http_get(&at, "/cgi-bin/file?/etc/site.conf")
            .ok()
            .filter(|(s, b)| *s == 200 && b.contains("changed"))
            .map(|(_, b)| b)
    });
    assert!(body.contains("greeting = changed"), "{body}");

    // With its profile, the debug service runs too.
    c.atoll_ok(&[
        "deploy",
        "-f",
        &file,
        "--profile",
        "debug",
        "--wait",
        "--timeout",
        "90",
    ]);
    assert_eq!(services(&c), ["db", "debug", "front", "panel"]);
}
