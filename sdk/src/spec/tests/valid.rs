//! Valid files: a full round trip, defaults, name defaulting, anchors.

use std::collections::BTreeMap;

use super::super::*;
use super::{ok, one_error};

pub(super) const FULL: &str = r#"
name: shop
x-common: &common
  LOG: info
services:
  web:
    image: ghcr.io/acme/web:1.4
    entrypoint: ["/bin/tini", "--"]
    command: serve --greeting 'hello world' "--port=8080"
    working_dir: /srv
    user: "1000:1000"
    read_only: true
    security_opt: [no-new-privileges:true]
    cap_drop: [ALL]
    cap_add: [net_bind_service, CAP_chown]
    stop_grace_period: 1m
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:8080/"]
      interval: 10s
      retries: 5
    x-atoll:
      canary:
        image: ghcr.io/acme/web:1.5
        weight: 10
    environment:
      <<: *common
      PORT: 8080
      DEBUG: false
      RATIO: 1.10
      EMPTY:
    ports:
      - "80:8080"
      - 443
      - target: 9000
        published: 9443
        protocol: tcp
        mode: ingress
        name: admin
    deploy:
      mode: replicated
      replicas: 3
      placement:
        constraints:
          - node.labels.zone == east
          - node.hostname != h1
          - node.platform.arch == x86_64
          - node.platform.os == linux
        preferences:
          - spread: node.labels.rack
        max_replicas_per_node: 2
      restart_policy:
        condition: on-failure
        delay: 5s
        max_attempts: 3
        window: 2m
      resources:
        limits:
          memory: 64M
          cpus: "0.5"
          pids: 100
        reservations:
          memory: 1.5G
          cpus: 2
      update_config:
        parallelism: 2
        order: stop-first
        failure_action: pause
        max_failure_ratio: 0.25
      rollback_config:
        parallelism: 0
        monitor: 0s
  api:
    x-atoll:
      component: ./api/target/api.wasm
      timeout: 1m30s
      health:
        http: /healthz
        liveness: false
    environment:
      - DB=postgres://db
      - FLAG
    deploy:
      mode: global
"#;

#[test]
fn full_file_round_trip() {
    let parsed = ok(FULL);
    assert_eq!(parsed.warnings, Vec::<String>::new());
    let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let web_check = Check {
        probe: Probe::Command {
            argv: vec!["curl".into(), "-f".into(), "http://localhost:8080/".into()],
        },
        interval_ms: 10_000,
        timeout_ms: 30_000,
        retries: 5,
        start_period_ms: 0,
    };
    let web = Service {
        name: "web".into(),
        artifact: Artifact::Image("ghcr.io/acme/web:1.4".into()),
        timeout_ms: 30_000,
        environment: env(&[
            ("LOG", "info"),
            ("PORT", "8080"),
            ("DEBUG", "false"),
            ("RATIO", "1.10"),
            ("EMPTY", ""),
        ]),
        ports: vec![
            PortMapping {
                published: 80,
                target: 8080,
            },
            PortMapping {
                published: 0,
                target: 443,
            },
            PortMapping {
                published: 9443,
                target: 9000,
            },
        ],
        deploy: Deploy {
            mode: Mode::Replicated,
            replicas: 3,
            placement: Placement {
                constraints: vec![
                    Constraint {
                        field: ConstraintField::Label("zone".into()),
                        op: ConstraintOp::Eq,
                        value: "east".into(),
                    },
                    Constraint {
                        field: ConstraintField::Hostname,
                        op: ConstraintOp::Ne,
                        value: "h1".into(),
                    },
                    Constraint {
                        field: ConstraintField::Arch,
                        op: ConstraintOp::Eq,
                        value: "x86_64".into(),
                    },
                    Constraint {
                        field: ConstraintField::Os,
                        op: ConstraintOp::Eq,
                        value: "linux".into(),
                    },
                ],
                preferences: vec![Preference {
                    spread_label: "rack".into(),
                }],
                max_replicas_per_node: Some(2),
            },
            resources: Resources {
                limits: ResourceSpec {
                    memory: Some(64 * 1024 * 1024),
                    cpus_milli: Some(500),
                    pids: Some(100),
                },
                reservations: ResourceSpec {
                    memory: Some(1_610_612_736),
                    cpus_milli: Some(2000),
                    pids: None,
                },
            },
            update: UpdateConfig {
                parallelism: 2,
                order: UpdateOrder::StopFirst,
                failure_action: FailureAction::Pause,
                max_failure_ratio: 0.25,
                ..UpdateConfig::default()
            },
            rollback: UpdateConfig {
                parallelism: 0,
                monitor_ms: 0,
                ..UpdateConfig::rollback_default()
            },
        },
        container: ContainerOptions {
            entrypoint: Some(vec!["/bin/tini".into(), "--".into()]),
            command: Some(vec![
                "serve".into(),
                "--greeting".into(),
                "hello world".into(),
                "--port=8080".into(),
            ]),
            working_dir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            read_only: true,
            no_new_privileges: true,
            cap_add: vec!["NET_BIND_SERVICE".into(), "CHOWN".into()],
            cap_drop: vec!["ALL".into()],
            stop_grace_ms: Some(60_000),
            restart: RestartPolicy {
                condition: RestartCondition::OnFailure,
                delay_ms: Some(5_000),
                max_attempts: Some(3),
                window_ms: Some(120_000),
            },
            ..ContainerOptions::default()
        },
        volumes: vec![],
        health: Some(Health {
            ready: web_check.clone(),
            live: Some(web_check),
        }),
        canary: Some(Canary {
            artifact: Artifact::Image("ghcr.io/acme/web:1.5".into()),
            weight: 10,
            replicas: 1,
        }),
        autoscale: None,
        disconnect: Disconnect::default(),
        files: Vec::new(),
        restarted_at_ms: None,
    };
    let api = Service {
        name: "api".into(),
        artifact: Artifact::Component("./api/target/api.wasm".into()),
        timeout_ms: 90_000,
        environment: env(&[("DB", "postgres://db"), ("FLAG", "")]),
        ports: vec![],
        deploy: Deploy {
            mode: Mode::Global,
            ..Deploy::default()
        },
        container: ContainerOptions::default(),
        volumes: vec![],
        health: Some(Health {
            ready: Check {
                probe: Probe::Http {
                    path: "/healthz".into(),
                    port: None,
                },
                interval_ms: 2_000,
                timeout_ms: 1_000,
                retries: 3,
                start_period_ms: 0,
            },
            live: None,
        }),
        canary: None,
        autoscale: None,
        disconnect: Disconnect::default(),
        files: Vec::new(),
        restarted_at_ms: None,
    };
    let expected = App {
        name: "shop".into(),
        services: [("web".to_string(), web), ("api".to_string(), api)].into(),
    };
    assert_eq!(parsed.app, expected);

    // The model survives a JSON round trip (it travels over NATS and HTTP).
    let json = serde_json::to_string(&parsed.app).unwrap();
    let back: App = serde_json::from_str(&json).unwrap();
    assert_eq!(back, expected);
}

#[test]
fn minimal_service_gets_defaults() {
    let parsed = ok("services:\n  web:\n    image: nginx\n");
    let web = &parsed.app.services["web"];
    assert_eq!(web.artifact, Artifact::Image("nginx".into()));
    assert_eq!(web.timeout_ms, 30_000);
    assert!(web.environment.is_empty() && web.ports.is_empty());
    assert_eq!(web.deploy, Deploy::default());
    assert_eq!(web.deploy.replicas, 1);
    // No container keys: the image's own settings, restarted on any exit.
    assert_eq!(web.container, ContainerOptions::default());
    assert_eq!(web.container.restart.condition, RestartCondition::Any);
    // No health check (ready as soon as it runs), no canary.
    assert_eq!((&web.health, &web.canary), (&None, &None));
}

#[test]
fn empty_sections_are_fine() {
    let parsed = ok(
        "services:\n  web:\n    image: nginx\n    environment:\n    ports: []\n    deploy:\n      placement:\n      resources: {}\n",
    );
    assert_eq!(parsed.app.services["web"].deploy, Deploy::default());
}

#[test]
fn name_defaults_to_the_lowercased_folder_name() {
    let text = "services:\n  web:\n    image: nginx\n";
    let parsed = parse(text, "My-Shop").unwrap();
    assert_eq!(parsed.app.name, "my-shop");
    // An explicit name wins.
    let parsed = parse(&format!("name: store\n{text}"), "My-Shop").unwrap();
    assert_eq!(parsed.app.name, "store");
}

#[test]
fn invalid_default_name_is_an_error_on_name() {
    let text = "services:\n  web:\n    image: nginx\n";
    let e = parse(text, "my shop!").unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!((e.0[0].path.as_str(), e.0[0].line), ("name", 1));
    assert!(e.0[0].message.contains("\"my shop!\""), "{}", e.0[0]);
}

#[test]
fn explicit_name_is_not_lowercased() {
    let e = one_error(
        "name: Shop\nservices:\n  web:\n    image: nginx\n",
        "name",
        1,
    );
    assert!(e.message.starts_with("invalid app name \"Shop\""), "{e}");
}

#[test]
fn anchors_aliases_and_merge_keys() {
    let text = "
x-deploy: &deploy
  replicas: 2
  resources:
    limits: {memory: 32M}
x-env: &env {A: '1', B: '2'}
services:
  a:
    image: nginx
    deploy: *deploy
  b:
    image: nginx
    environment:
      <<: [*env, {C: '3', A: ignored}]
      B: own
    deploy:
      <<: *deploy
      replicas: 5
";
    let parsed = ok(text);
    let (a, b) = (&parsed.app.services["a"], &parsed.app.services["b"]);
    assert_eq!(a.deploy.replicas, 2);
    assert_eq!(a.deploy.resources.limits.memory, Some(32 << 20));
    assert_eq!(b.deploy.replicas, 5);
    assert_eq!(b.deploy.resources.limits.memory, Some(32 << 20));
    let env: Vec<_> = b
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(env, ["A=1", "B=own", "C=3"]);
}

#[test]
fn extensions_are_ignored_everywhere() {
    let text = "
x-top: 1
services:
  web:
    image: nginx
    x-note: hi
    x-atoll:
      x-later: 1
    ports:
      - target: 80
        published: 8080
        x-port: 1
    deploy:
      x-d: 1
      placement:
        x-p: 1
        preferences:
          - spread: node.labels.zone
            x-s: 1
      resources:
        x-r: 1
        limits:
          x-l: 1
";
    let parsed = ok(text);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
}

#[test]
fn autoscale_reads_its_bounds_target_and_windows() {
    let app = ok("services:
  api:
    x-atoll:
      component: api.wasm
      autoscale:
        min: 0
        max: 6
        target: { inflight: 2.5 }
        scale_down_window: 30s
  web:
    image: nginx
    x-atoll:
      autoscale: { max: 3, target: { cpu: \"50%\" } }
");
    let app = app.app;
    let api = app.services["api"].autoscale.expect("api autoscales");
    assert_eq!(
        api,
        Autoscale {
            min: 0,
            max: 6,
            metric: ScaleMetric::Inflight,
            target_milli: 2_500,
            scale_up_window_ms: 6_000,
            scale_down_window_ms: 30_000,
        }
    );
    let web = app.services["web"].autoscale.expect("web autoscales");
    assert_eq!(
        (web.min, web.max, web.metric, web.target_milli),
        (1, 3, ScaleMetric::Cpu, 50_000)
    );
}
