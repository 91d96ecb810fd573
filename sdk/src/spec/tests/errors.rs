//! Every error: its exact path, line and message.

use super::super::parse;
use super::{errors, one_error, web};

#[test]
fn display_names_path_message_and_line() {
    let e = one_error(
        &web("deploy:\n  replicas: -1"),
        "services.web.deploy.replicas",
        5,
    );
    assert_eq!(
        e.to_string(),
        "services.web.deploy.replicas: expected a non-negative integer (line 5)"
    );
}

#[test]
fn replicas_must_be_a_non_negative_integer() {
    for bad in ["-1", "\"x\"", "1.5", "[1]", "true", "", "99999999999"] {
        let text = web(&format!("deploy:\n  replicas: {bad}"));
        let e = one_error(&text, "services.web.deploy.replicas", 5);
        assert!(
            e.message.starts_with("expected a non-negative integer"),
            "{bad}: {e}"
        );
    }
    // A string of digits is what interpolation would give: accepted.
    let parsed = parse(&web("deploy:\n  replicas: \"4\""), "demo").unwrap();
    assert_eq!(parsed.app.services["web"].deploy.replicas, 4);
}

#[test]
fn malformed_yaml_is_one_error_with_the_parser_line() {
    let e = one_error("services:\n  web:\n    image: [nginx\n  api: {}\n", "", 4);
    assert!(e.message.starts_with("invalid YAML: "), "{e}");
    let e = one_error("services:\n  web: {}\n  web: {}\n", "", 3);
    assert!(e.message.contains("duplicated key"), "{e}");
}

#[test]
fn document_must_be_a_mapping() {
    let e = one_error("- a\n- b\n", "", 1);
    assert!(e.message.contains("found a list"), "{e}");
    let e = one_error("just text\n", "", 1);
    assert!(e.message.contains("found a string"), "{e}");
    let e = one_error("", "", 1);
    assert!(e.message.contains("empty"), "{e}");
    let e = one_error("# nothing\n", "", 1);
    assert!(e.message.contains("empty"), "{e}");
}

#[test]
fn services_are_required_and_not_empty() {
    let e = one_error("name: shop\n", "services", 1);
    assert!(e.message.contains("needs at least one service"), "{e}");
    one_error("services: {}\n", "services", 1);
    one_error("name: shop\nservices:\n", "services", 2);
    let e = one_error("services: [web]\n", "services", 1);
    assert_eq!(e.message, "expected a mapping, found a list");
}

#[test]
fn unknown_keys_are_errors_at_every_level() {
    let e = one_error(
        "servics: {}\nservices:\n  web:\n    image: nginx\n",
        "servics",
        1,
    );
    assert_eq!(e.message, "unknown key (did you mean `services`?)");
    // A key of a service or of the top level that is no typo may be newer
    // than the catalogue: a warning (the file still deploys).
    let p = super::ok(&web("frobnicate: 1\npre_start: []"));
    assert!(
        p.warnings[0].starts_with("services.web.frobnicate: unknown key, ignored"),
        "{:?}",
        p.warnings
    );
    assert!(
        p.warnings[1].starts_with("services.web.pre_start: unknown key"),
        "{:?}",
        p.warnings
    );
    let p = super::ok("services:\n  web:\n    image: nginx\nx_future_section: {}\n");
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    one_error(
        &web("deploy:\n  replica: 2"),
        "services.web.deploy.replica",
        5,
    );
    one_error(
        &web("deploy:\n  placement:\n    zone: east"),
        "services.web.deploy.placement.zone",
        6,
    );
    // `devices` is a Compose key of reservations, not of limits.
    one_error(
        &web("deploy:\n  resources:\n    limits:\n      devices: []"),
        "services.web.deploy.resources.limits.devices",
        7,
    );
    one_error(
        &web("ports:\n  - target: 80\n    host: x"),
        "services.web.ports[0].host",
        6,
    );
    one_error(
        &web("deploy:\n  placement:\n    preferences:\n      - pack: node.labels.zone"),
        "services.web.deploy.placement.preferences[0].pack",
        7,
    );
}

#[test]
fn unknown_x_atoll_keys_are_errors() {
    let text = "services:\n  api:\n    x-atoll:\n      component: a.wasm\n      memory: 1\n";
    let e = one_error(text, "services.api.x-atoll.memory", 5);
    assert_eq!(e.message, "unknown key");
}

#[test]
fn service_names_have_no_dots() {
    let e = one_error(
        "services:\n  web.v1:\n    image: nginx\n",
        "services.web.v1",
        2,
    );
    assert!(e.message.starts_with("invalid service name"), "{e}");
    one_error("services:\n  -web:\n    image: nginx\n", "services.-web", 2);
}

#[test]
fn exactly_one_artifact() {
    let e = one_error(
        "services:\n  web:\n    environment: {}\n",
        "services.web",
        2,
    );
    assert!(e.message.starts_with("needs `image`"), "{e}");
    let both = "services:\n  web:\n    image: nginx\n    x-atoll:\n      component: a.wasm\n";
    let e = one_error(both, "services.web", 2);
    assert!(e.message.contains("not both"), "{e}");
    // A bad image is reported once, not also as "no image".
    let e = one_error(
        "services:\n  web:\n    image: 1.5\n",
        "services.web.image",
        3,
    );
    assert_eq!(e.message, "expected a string, found a number");
    one_error(
        "services:\n  web:\n    image: ''\n",
        "services.web.image",
        3,
    );
    one_error("services:\n  web:\n", "services.web", 2);
}

#[test]
fn x_atoll_values() {
    let text = "services:\n  api:\n    x-atoll:\n      component: [a]\n";
    one_error(text, "services.api.x-atoll.component", 4);
    for bad in ["30", "soon", "0s", "-1s"] {
        let text = format!(
            "services:\n  api:\n    x-atoll:\n      component: a.wasm\n      timeout: {bad}\n"
        );
        one_error(&text, "services.api.x-atoll.timeout", 5);
    }
    one_error(
        "services:\n  api:\n    x-atoll: 3\n",
        "services.api.x-atoll",
        3,
    );
}

#[test]
fn deploy_values() {
    let e = one_error(
        &web("deploy:\n  mode: everywhere"),
        "services.web.deploy.mode",
        5,
    );
    assert_eq!(
        e.message,
        "expected replicated or global, found \"everywhere\""
    );
    let e = one_error(
        &web("deploy:\n  mode: global-job"),
        "services.web.deploy.mode",
        5,
    );
    assert!(e.message.contains("not supported"), "{e}");
    one_error(
        &web("deploy:\n  placement:\n    max_replicas_per_node: -1"),
        "services.web.deploy.placement.max_replicas_per_node",
        6,
    );
    one_error(&web("deploy: 3"), "services.web.deploy", 4);
}

#[test]
fn bad_constraints_name_the_string() {
    let text = web(
        "deploy:\n  placement:\n    constraints:\n      - node.labels.zone == east\n      - node.role == manager\n      - node.labels.zone = east\n      - 3",
    );
    let errs = errors(&text);
    let paths: Vec<_> = errs.iter().map(|e| (e.path.as_str(), e.line)).collect();
    let base = "services.web.deploy.placement.constraints";
    assert_eq!(
        paths,
        [
            (&*format!("{base}[1]"), 8),
            (&*format!("{base}[2]"), 9),
            (&*format!("{base}[3]"), 10)
        ]
    );
    assert!(
        errs[0].message.contains("\"node.role == manager\""),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].message.contains("\"node.labels.zone = east\""),
        "{}",
        errs[1]
    );
    assert_eq!(errs[2].message, "expected a string, found an integer");
}

#[test]
fn bad_preferences() {
    let text = web(
        "deploy:\n  placement:\n    preferences:\n      - spread: node.hostname\n      - {}\n      - spread",
    );
    let errs = errors(&text);
    let got: Vec<_> = errs.iter().map(|e| (e.path.as_str(), e.line)).collect();
    let base = "services.web.deploy.placement.preferences";
    assert_eq!(
        got,
        [
            (&*format!("{base}[0].spread"), 7),
            (&*format!("{base}[1]"), 8),
            (&*format!("{base}[2]"), 9)
        ]
    );
    assert!(errs[0].message.contains("\"node.hostname\""), "{}", errs[0]);
}

#[test]
fn bad_resources() {
    let base = "services.web.deploy.resources";
    let res = |body: &str| web(&format!("deploy:\n  resources:\n{body}"));
    let e = one_error(
        &res("    limits:\n      memory: lots"),
        &format!("{base}.limits.memory"),
        7,
    );
    assert!(e.message.starts_with("invalid size \"lots\""), "{e}");
    one_error(
        &res("    limits:\n      memory: -5"),
        &format!("{base}.limits.memory"),
        7,
    );
    let e = one_error(
        &res("    limits:\n      cpus: 50%"),
        &format!("{base}.limits.cpus"),
        7,
    );
    assert!(e.message.starts_with("invalid CPU count \"50%\""), "{e}");
    let e = one_error(
        &res("    limits:\n      cpus: 0"),
        &format!("{base}.limits.cpus"),
        7,
    );
    assert!(e.message.contains("greater than zero"), "{e}");
    one_error(
        &res("    limits:\n      memory: 0"),
        &format!("{base}.limits.memory"),
        7,
    );
    // Zero reservations are fine.
    parse(
        &res("    reservations:\n      memory: 0\n      cpus: 0"),
        "demo",
    )
    .unwrap();
}

#[test]
fn bad_ports() {
    let cases = [
        ("\"8000-8010:80\"", "port ranges are not supported"),
        ("\"8080:80/udp\"", "udp is not supported"),
        ("\"70000:80\"", "not a port number"),
        ("0", "not a port number"),
        ("[80]", "expected a port"),
    ];
    for (item, expected) in cases {
        let e = one_error(
            &web(&format!("ports:\n  - {item}")),
            "services.web.ports[0]",
            5,
        );
        assert!(e.message.contains(expected), "{item}: {e}");
    }
    let long = web("ports:\n  - published: 80");
    let e = one_error(&long, "services.web.ports[0]", 5);
    assert!(e.message.contains("`target`"), "{e}");
    one_error(
        &web("ports:\n  - target: 80\n    protocol: udp"),
        "services.web.ports[0].protocol",
        6,
    );
    one_error(
        &web("ports:\n  - target: 80\n    published: 8000-8010"),
        "services.web.ports[0].published",
        6,
    );
    one_error(&web("ports: \"80:80\""), "services.web.ports", 4);
}

#[test]
fn a_published_port_is_used_once_per_file() {
    let text = "services:\n  web:\n    image: nginx\n    ports: [\"8080:80\"]\n  api:\n    image: api\n    ports:\n      - 9000\n      - target: 81\n        published: 8080\n";
    let e = one_error(text, "services.api.ports[1]", 9);
    assert_eq!(e.message, "port 8080 is already published by service web");
    let e = one_error(
        &web("ports: [\"80:80\", \"80:81\"]"),
        "services.web.ports[1]",
        4,
    );
    assert_eq!(e.message, "port 80 is already published by this service");
    // Ports the server picks (`"80"`) never clash here.
    assert!(
        super::ok(&web("ports: [80, \"81\", {target: 82}]"))
            .warnings
            .is_empty()
    );
}

#[test]
fn bad_environment() {
    one_error(
        &web("environment:\n  A: [1]"),
        "services.web.environment.A",
        5,
    );
    one_error(
        &web("environment:\n  - =x"),
        "services.web.environment[0]",
        5,
    );
    one_error(&web("environment: text"), "services.web.environment", 4);
}

#[test]
fn keys_must_be_scalars_and_tags_are_refused() {
    one_error(&web("? [a]\n: 1"), "services.web", 4);
    let e = one_error(&web("deploy: !reset null"), "services.web.deploy", 4);
    assert!(e.message.contains("tagged !reset"), "{e}");
    let e = one_error(
        &web("environment:\n  <<: 3"),
        "services.web.environment.<<",
        5,
    );
    assert!(e.message.contains("merge"), "{e}");
}

#[test]
fn all_errors_are_collected_and_sorted_by_line() {
    let text = "
name: Bad Name
services:
  web.1:
    image: nginx
    deploy:
      replicas: x
      mode: sideways
  api:
    healthcheck: {}
    bogus: 1
    ports: [\"1-2\"]
unknown: 1
";
    let errs = errors(text);
    let got: Vec<_> = errs.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (2, "name"),
            (4, "services.web.1"),
            (7, "services.web.1.deploy.replicas"),
            (8, "services.web.1.deploy.mode"),
            (9, "services.api"),
            (10, "services.api.healthcheck"),
            (12, "services.api.ports[0]"),
        ]
    );
}

#[test]
fn autoscale_errors_name_what_is_wrong() {
    let cases = [
        (
            "x-atoll: { component: a.wasm, autoscale: { min: 0 } }",
            "missing `max`",
        ),
        (
            "x-atoll: { component: a.wasm, autoscale: { max: 2 } }",
            "missing `target`",
        ),
        (
            "x-atoll: { component: a.wasm, autoscale: { min: 3, max: 2, target: { rps: 10 } } }",
            "`min` (3) is above `max` (2)",
        ),
        (
            "x-atoll: { component: a.wasm, autoscale: { max: 2, target: { rps: 10, cpu: 5 } } }",
            "exactly one of",
        ),
        (
            "x-atoll: { component: a.wasm, autoscale: { max: 2, target: { rps: 0 } } }",
            "a number above 0",
        ),
        (
            "x-atoll: { component: a.wasm, autoscale: { max: 2, target: { memory: 5 } } }",
            "unknown key",
        ),
        (
            "image: nginx\n    x-atoll: { autoscale: { min: 0, max: 2, target: { rps: 1 } } }",
            "scale to zero) is for components",
        ),
    ];
    for (svc, want) in cases {
        let text = format!("services:\n  api:\n    {svc}\n");
        let errors = errors(&text);
        assert!(
            errors.iter().any(|e| e.to_string().contains(want)),
            "{svc}: want {want:?} in {errors:?}"
        );
    }
}
