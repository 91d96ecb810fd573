//! Bad input gets a clear error and disturbs nothing else: another app
//! keeps serving, the host and the server stay up.

mod common;
use common::*;
use std::time::Duration;

fn stderr_of(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Deploys `text` and expects the CLI to fail with `expected` in its output.
fn rejected(c: &Cluster, file: &str, text: &str, expected: &[&str]) {
    let path = c.compose(file, text);
    let out = c.atoll(&["deploy", "-f", &path.to_string_lossy()]);
    let said = stderr_of(&out);
    assert!(!out.status.success(), "{file} was accepted: {said}");
    for e in expected {
        assert!(said.contains(e), "{file}: expected {e:?} in: {said}");
    }
}

#[test]
fn bad_files_and_bad_components_fail_clearly_and_disturb_nothing() {
    let mut c = Cluster::start();
    c.start_host("h1", "127.0.4.2", &[]);
    let hello = sample_wasm("hello");
    let faulty = sample_wasm("faulty");
    let good_port = free_port();
    let good = c.compose(
        "good.yaml",
        &format!("name: good\nservices:\n  web:\n    x-atoll:\n      component: {}\n    ports: [\"{good_port}:80\"]\n", hello.display()),
    );
    c.deploy_wait(&good);
    let good_ok = |c: &Cluster| {
        let (s, b) = http_get(&format!("127.0.4.2:{good_port}"), "/").expect("good app answers");
        assert_eq!(s, 200, "the good app keeps serving: {b}");
        let _ = c;
    };

    rejected(
        &c,
        "yaml.yaml",
        "name: x\nservices:\n  web: [unclosed\n",
        &["line"],
    );
    rejected(
        &c,
        "unknown.yaml",
        &format!(
            "name: x\nservices:\n  web:\n    x-atoll:\n      component: {}\n    enviroment: {{}}\n",
            hello.display()
        ),
        &[
            "services.web.enviroment",
            "did you mean `environment`",
            "line 6",
        ],
    );
    rejected(
        &c,
        "replicas.yaml",
        &format!(
            "name: x\nservices:\n  web:\n    x-atoll:\n      component: {}\n    deploy:\n      replicas: -1\n",
            hello.display()
        ),
        &[
            "services.web.deploy.replicas",
            "non-negative integer",
            "line 7",
        ],
    );
    rejected(
        &c,
        "missing.yaml",
        "name: x\nservices:\n  web:\n    x-atoll:\n      component: ./nowhere.wasm\n",
        &["services.web.x-atoll.component", "nowhere.wasm"],
    );
    let core = c.dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write core module");
    rejected(
        &c,
        "core.yaml",
        &format!(
            "name: x\nservices:\n  web:\n    x-atoll:\n      component: {}\n",
            core.display()
        ),
        &["services.web.x-atoll.component", "not a component"],
    );
    good_ok(&c);

    // A constraint no host satisfies: the deploy is accepted, --wait fails
    // and the app's status says why.
    let nowhere = c.compose(
        "nowhere.yaml",
        &format!(
            "name: nowhere\nservices:\n  web:\n    x-atoll:\n      component: {}\n    deploy:\n      placement:\n        constraints: [\"node.labels.zone == mars\"]\n",
            hello.display()
        ),
    );
    let out = c.atoll(&[
        "deploy",
        "-f",
        &nowhere.to_string_lossy(),
        "--wait",
        "--timeout",
        "20",
    ]);
    let said = stderr_of(&out);
    assert!(
        !out.status.success(),
        "unplaceable deploy succeeded: {said}"
    );
    assert!(
        said.contains("node.labels.zone == mars"),
        "names the constraint: {said}"
    );
    let apps = c.json(&["ls", "-o", "json"]);
    let app = apps
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "nowhere"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(app["status"], "pending");

    // A component that traps, loops, or eats memory: that request fails,
    // the instance and everything else keep going.
    let fport = free_port();
    let faulty_file = c.compose(
        "faulty.yaml",
        &format!(
            "name: faulty\nservices:\n  f:\n    x-atoll:\n      component: {}\n      timeout: 1s\n    ports: [\"{fport}:80\"]\n    deploy:\n      resources:\n        limits:\n          memory: 32M\n",
            faulty.display()
        ),
    );
    c.deploy_wait(&faulty_file);
    let at = format!("127.0.4.2:{fport}");
    let (s, _) = http_get(&at, "/trap").expect("trap request");
    assert_eq!(s, 500, "a trap is a 500");
    let started = std::time::Instant::now();
    let (s, _) = http_get(&at, "/loop").expect("loop request");
    assert!(s == 504 || s == 500, "an endless loop is cut: {s}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cut by the 1 s deadline"
    );
    let (s, _) = http_get(&at, "/grow").expect("grow request");
    assert_eq!(s, 500, "growing past the memory limit is a 500");
    let (s, body) = http_get(&at, "/").expect("faulty root");
    assert_eq!(s, 200, "the faulty instance still serves: {body}");
    good_ok(&c);

    assert!(c.host("h1").is_running(), "the host is up");
    assert!(
        c.server.as_mut().is_some_and(Proc::is_running),
        "the server is up"
    );
}

#[test]
fn the_api_cuts_slow_and_idle_clients_caps_connections_and_refuses_large_json() {
    use std::io::{Read, Write};
    use std::time::Instant;
    let c = Cluster::start();
    let port = free_port();
    let _server = c.spawn_server(
        "limited",
        port,
        &["--header-timeout", "2s", "--max-connections", "20"],
    );
    let addr = format!("127.0.0.1:{port}");

    // Twenty idle connections fill the listener: a request waits until
    // the header timeout cuts them, then is answered.
    let mut idle: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(&addr).expect("idle connection"))
        .collect();
    let opened = Instant::now();
    let asked = Instant::now();
    let (status, _) = http_get(&addr, "/v1/health").expect("health");
    let waited = asked.elapsed();
    assert_eq!(status, 200);
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "the 21st connection waited {waited:?} for a slot"
    );
    for s in &mut idle {
        let left = Duration::from_secs(4).saturating_sub(opened.elapsed());
        assert!(
            closed_within(s, left.max(Duration::from_millis(200))),
            "an idle connection was kept past the header timeout"
        );
    }

    // Headers a byte every 300 ms: cut at the timeout, not before.
    let mut slow = std::net::TcpStream::connect(&addr).expect("slow client");
    let started = Instant::now();
    slow.write_all(b"GET /v1/health HTTP/1.1\r\n")
        .expect("request line");
    let mut cut = None;
    for byte in b"Host: slow\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
        if slow.write_all(&[*byte]).is_err() || closed_within(&mut slow, Duration::from_millis(300))
        {
            cut = Some(started.elapsed());
            break;
        }
    }
    let cut = cut.expect("the slow client was never cut");
    assert!(
        cut >= Duration::from_millis(1800) && cut < Duration::from_secs(5),
        "cut after {cut:?}"
    );

    // A deploy whose Compose text is over 1 MiB: 413 naming it, and the
    // API answers on.
    let body = format!(
        "{{\"compose\":\"{}\",\"default_name\":\"big\",\"artifacts\":{{}}}}",
        "a".repeat(2 << 20)
    );
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST /v1/apps HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("headers");
    // The server may answer and close before taking it all.
    let _ = s.write_all(body.as_bytes());
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("the Compose text is 2048 KiB"), "{answer}");
    let (status, _) = http_get(&addr, "/v1/health").expect("health after");
    assert_eq!(status, 200);
    assert!(c.instances("big").is_empty());
}

/// `atoll deploy` of a file with variables: values from the environment
/// first, then `.env` beside the file, then `--env-file`; an unset one is
/// empty with a warning naming it; `${VAR:?message}` refuses the deploy
/// with the message, naming the key and line.
#[test]
fn compose_variables_come_from_the_environment_then_dotenv_then_env_files() {
    let mut c = Cluster::start();
    c.start_host("h1", "127.0.4.3", &[]);
    let (env_port, dotenv_port, file_port) = (free_port(), free_port(), free_port());
    let dir = c.dir.path().join("project");
    std::fs::create_dir_all(&dir).expect("project dir");
    std::fs::write(
        dir.join(".env"),
        format!("# the project's defaults\nWEB_PORT={dotenv_port}\nAPI_PORT={dotenv_port}\n"),
    )
    .expect(".env");
    let extra = c.dir.path().join("extra.env");
    std::fs::write(
        &extra,
        format!("API_PORT={env_port}\nADMIN_PORT={file_port}\nREPLICAS=2\n"),
    )
    .expect("env file");
    let text = format!(
        "name: vars
services:
  web:
    x-atoll:
      component: {hello}
    ports: [\"${{WEB_PORT}}:80\"]
    deploy:
      replicas: ${{REPLICAS:-1}}
    environment:
      NOTE: \"${{NOT_SET_ANYWHERE}}\"
  api:
    x-atoll:
      component: {hello}
    ports: [\"${{API_PORT:?say which port}}:80\"]
  admin:
    x-atoll:
      component: {hello}
    ports: [\"${{ADMIN_PORT}}:80\"]
  debug:
    x-atoll:
      component: {hello}
    profiles: [debug]
",
        hello = sample_wasm("hello").display()
    );
    // One of the names `docker compose` looks for (not the first).
    let file = dir.join("docker-compose.yml");
    std::fs::write(&file, &text).expect("compose");
    let file_arg = file.to_string_lossy().to_string();
    let extra_arg = extra.to_string_lossy().to_string();
    // `-f FILE`, or (`file: false`) no -f, run in the project folder.
    let deploy_from = |file: bool, env: &[(&str, String)], extra: bool| {
        let mut cmd = std::process::Command::new(atoll_bin());
        cmd.args(["deploy", "--wait", "--timeout", "60"])
            .env("ATOLL_SERVER", &c.api)
            .env_remove("NOT_SET_ANYWHERE")
            .env_remove("COMPOSE_PROFILES");
        match file {
            true => cmd.args(["-f", &file_arg]),
            false => cmd.current_dir(&dir),
        };
        if extra {
            cmd.args(["--env-file", &extra_arg]);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("atoll deploy")
    };
    let deploy = |env: &[(&str, String)], extra: bool| deploy_from(true, env, extra);
    // The environment wins over .env (WEB_PORT), .env over --env-file
    // (API_PORT), --env-file fills what neither has (ADMIN_PORT, REPLICAS).
    let web_port = free_port();
    let out = deploy(&[("WEB_PORT", web_port.to_string())], true);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("services.web.environment.NOTE: variable NOT_SET_ANYWHERE is not set"),
        "{err}"
    );
    for port in [web_port, dotenv_port, file_port] {
        let (s, b) = http_get(&format!("127.0.4.3:{port}"), "/").expect("published");
        assert_eq!(s, 200, "port {port}: {b}");
    }
    let web = (c.instances("vars").into_iter())
        .filter(|r| r["service"] == "web")
        .count();
    assert_eq!(web, 2, "REPLICAS from --env-file");
    // The service of profile `debug` is left out, saying so, until the
    // profile is active.
    assert!(err.contains("services.debug: left out"), "{err}");
    let services = |c: &Cluster| -> Vec<String> {
        let mut s: Vec<String> = (c.instances("vars").iter())
            .filter_map(|r| r["service"].as_str().map(str::to_string))
            .collect();
        s.dedup();
        s
    };
    assert!(!services(&c).contains(&"debug".to_string()));
    // (And without -f: the file is found by its name in the folder.)
    let out = deploy_from(
        false,
        &[
            ("WEB_PORT", web_port.to_string()),
            ("COMPOSE_PROFILES", "debug".to_string()),
        ],
        true,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        services(&c).contains(&"debug".to_string()),
        "{:?}",
        services(&c)
    );

    // Without .env's API_PORT and the env file: the required variable
    // refuses the deploy, naming key, line and message; nothing changes.
    std::fs::remove_file(dir.join(".env")).expect("rm .env");
    let out = deploy(&[("WEB_PORT", web_port.to_string())], false);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "refused: {err}");
    for said in [
        "services.api.ports[0]",
        "line 14",
        "API_PORT is missing a value: say which port",
    ] {
        assert!(err.contains(said), "{said:?} in: {err}");
    }
    let (s, _) = http_get(&format!("127.0.4.3:{dotenv_port}"), "/").expect("still published");
    assert_eq!(s, 200);
}
