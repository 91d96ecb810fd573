//! Named volumes: the top-level declarations and each service's mounts, in
//! every valid form, and every error with its path and line.

use super::super::*;
use super::{errors, ok, one_error, web};

/// `services.web` with `body` under it (from line 4), then the top-level
/// declarations `data` (an empty mapping) and `cache` (null).
fn with_volumes(body: &str) -> String {
    let mut text = web(body);
    text.push_str("volumes:\n  data: {}\n  cache:\n");
    text
}

fn mounts(body: &str) -> Vec<VolumeMount> {
    let parsed = ok(&with_volumes(body));
    assert_eq!(parsed.warnings, Vec::<String>::new());
    parsed.app.services["web"].volumes.clone()
}

fn mount(name: &str, target: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: Some(name.into()),
        target: target.into(),
        read_only,
        nocopy: false,
    }
}

#[test]
fn short_syntax() {
    assert_eq!(
        mounts("volumes:\n  - data:/var/lib/data\n  - cache:/cache:ro\n  - \"data:/backup/:rw\""),
        [
            mount("data", "/var/lib/data", false),
            mount("cache", "/cache", true),
            mount("data", "/backup", false),
        ]
    );
}

#[test]
fn long_syntax() {
    let body = "volumes:\n  - type: volume\n    source: data\n    target: /data\n    read_only: true\n  - source: cache\n    target: /cache/\n    read_only: \"false\"\n  - {type: volume, source: data, target: /other, x-note: 1}";
    assert_eq!(
        mounts(body),
        [
            mount("data", "/data", true),
            mount("cache", "/cache", false),
            mount("data", "/other", false),
        ]
    );
}

#[test]
fn no_volumes() {
    assert_eq!(mounts(""), []);
    assert_eq!(mounts("volumes:"), []);
    assert_eq!(mounts("volumes: []"), []);
    // Declared but unused volumes are fine, and so is an empty section.
    let text = format!("{}volumes:\n", web(""));
    assert_eq!(ok(&text).warnings, Vec::<String>::new());
}

#[test]
fn declarations_may_follow_or_precede_services() {
    let text = "volumes:\n  db-data.v1:\n  2nd_cache: {}\nservices:\n  db:\n    image: postgres\n    volumes: [db-data.v1:/var/lib/postgresql/data, 2nd_cache:/cache]\n";
    let parsed = ok(text);
    assert_eq!(parsed.warnings, Vec::<String>::new());
    assert_eq!(
        parsed.app.services["db"].volumes,
        [
            mount("db-data.v1", "/var/lib/postgresql/data", false),
            mount("2nd_cache", "/cache", false),
        ]
    );
}

#[test]
fn declaration_settings_are_ignored_with_a_warning() {
    let text = format!(
        "{}volumes:\n  data:\n    driver: local\n    driver_opts: {{type: nfs}}\n    external: true\n    labels: {{a: b}}\n    name: real-name\n    x-note: 1\n",
        web("volumes: [data:/data]")
    );
    let parsed = ok(&text);
    let at = |key: &str, line: usize| {
        format!(
            "volumes.data.{key}: ignored: atoll keeps a named volume in a directory on its host (line {line})"
        )
    };
    assert_eq!(
        parsed.warnings,
        [
            at("driver", 7),
            at("driver_opts", 8),
            at("external", 9),
            at("labels", 10),
            at("name", 11),
        ]
    );
    assert_eq!(
        parsed.app.services["web"].volumes,
        [mount("data", "/data", false)]
    );
}

#[test]
fn long_syntax_options_are_ignored_with_a_warning() {
    let body = "volumes:\n  - type: volume\n    source: data\n    target: /data\n    volume: {nocopy: false}\n    consistency: cached";
    let parsed = ok(&with_volumes(body));
    assert_eq!(
        parsed.warnings,
        ["services.web.volumes[0].consistency: not implemented yet, ignored (line 9)"]
    );
    assert_eq!(
        parsed.app.services["web"].volumes,
        [mount("data", "/data", false)]
    );
}

#[test]
fn components_ignore_volumes() {
    let text = "services:\n  api:\n    x-atoll:\n      component: api.wasm\n    volumes: [data:/data]\nvolumes:\n  data:\n";
    let parsed = ok(text);
    assert_eq!(
        parsed.warnings,
        ["services.api.volumes: ignored: a component does not run in a container (line 5)"]
    );
    assert_eq!(parsed.app.services["api"].volumes, []);
    // Still validated.
    let text =
        "services:\n  api:\n    x-atoll:\n      component: api.wasm\n    volumes: [nope:/data]\n";
    one_error(text, "services.api.volumes[0]", 5);
}

#[test]
fn volume_names() {
    use super::super::volumes::is_volume_name;
    for good in ["data", "Data", "9", "db-data", "db_data", "db.data", "a..b"] {
        assert!(is_volume_name(good), "{good}");
    }
    for bad in ["", "-a", "_a", ".a", "..", "a/b", "a b", "a:b", "é"] {
        assert!(!is_volume_name(bad), "{bad}");
    }
}

const BIND: &str = "bind mounts of host paths are refused: ship a file or folder of the project with a relative source (./nginx.conf:/etc/nginx/nginx.conf, read by the atoll command line), or declare a named volume under the top-level `volumes:` and use NAME:/path";

#[test]
fn bind_mounts_are_errors() {
    for source in ["/srv/data", "./data", "../data", "~/data", "."] {
        let body = format!("volumes:\n  - cache:/cache\n  - {source}:/data:ro");
        let e = one_error(&with_volumes(&body), "services.web.volumes[1]", 6);
        assert_eq!(e.message, BIND, "{source}");
    }
    let long = |body: &str, path: &str, line: usize| {
        let e = one_error(&with_volumes(body), path, line);
        assert_eq!(e.message, BIND, "{body}");
    };
    long(
        "volumes:\n  - type: bind\n    source: ./data\n    target: /data",
        "services.web.volumes[0].type",
        5,
    );
    // The source is not also reported as an undeclared volume.
    long(
        "volumes:\n  - type: bind\n    source: data2\n    target: /data",
        "services.web.volumes[0].type",
        5,
    );
    long(
        "volumes:\n  - source: /srv/data\n    target: /data",
        "services.web.volumes[0].source",
        5,
    );
    long(
        "volumes:\n  - type: volume\n    source: ~/data\n    target: /data",
        "services.web.volumes[0].source",
        6,
    );
}

#[test]
fn anonymous_volumes_are_the_instances_own() {
    let anonymous = |target: &str, nocopy: bool| VolumeMount {
        name: None,
        target: target.into(),
        read_only: false,
        nocopy,
    };
    assert_eq!(
        mounts("volumes: [/data, /cache/]"),
        [anonymous("/data", false), anonymous("/cache", false)]
    );
    assert_eq!(
        mounts("volumes:\n  - type: volume\n    target: /data\n    volume: {nocopy: true}"),
        [anonymous("/data", true)]
    );
    let parsed = ok(&with_volumes("volumes: [/data]"));
    assert!(
        !parsed.app.services["web"].has_named_volumes(),
        "not tied to a host"
    );
}

#[test]
fn nocopy_and_tmpfs_in_the_long_form() {
    let mut data = mount("data", "/data", false);
    data.nocopy = true;
    assert_eq!(
        mounts("volumes:\n  - source: data\n    target: /data\n    volume:\n      nocopy: true"),
        [data]
    );
    let parsed = ok(&with_volumes(
        "volumes:\n  - type: tmpfs\n    target: /scratch\n    tmpfs: {size: 16m, mode: 1770}",
    ));
    let web = &parsed.app.services["web"];
    assert!(web.volumes.is_empty());
    assert_eq!(
        web.container.tmpfs,
        [TmpfsMount {
            target: "/scratch".into(),
            size: Some(16 << 20),
            mode: Some(0o1770),
            flags: vec![],
        }]
    );
    let e = one_error(
        &with_volumes("volumes:\n  - source: data\n    target: /data\n    volume: {subpath: x}"),
        "services.web.volumes[0].volume.subpath",
        7,
    );
    assert_eq!(e.message, "not supported: mount the whole volume");
}

#[test]
fn undeclared_volumes_are_errors() {
    let e = one_error(
        &with_volumes("volumes: [dtaa:/data]"),
        "services.web.volumes[0]",
        4,
    );
    assert_eq!(
        e.message,
        "undeclared volume \"dtaa\": declare it under the top-level `volumes:` (declared: cache, data)"
    );
    let e = one_error(
        &with_volumes("volumes:\n  - source: dtaa\n    target: /data"),
        "services.web.volumes[0].source",
        5,
    );
    assert!(e.message.starts_with("undeclared volume \"dtaa\""), "{e}");
    let e = one_error(&web("volumes: [data:/data]"), "services.web.volumes[0]", 4);
    assert_eq!(
        e.message,
        "undeclared volume \"data\": declare it under the top-level `volumes:` (none is declared)"
    );
}

#[test]
fn malformed_short_syntax() {
    let cases = [
        (
            "data",
            "expected NAME:/path or NAME:/path:ro, found \"data\"",
        ),
        (
            ":/data",
            "expected NAME:/path or NAME:/path:ro, found \":/data\"",
        ),
        (
            "data:",
            "expected NAME:/path or NAME:/path:ro, found \"data:\"",
        ),
        (
            "data:/d:ro:z",
            "expected NAME:/path or NAME:/path:ro, found \"data:/d:ro:z\"",
        ),
        (
            "data:/d:z",
            "expected the mode ro or rw, found \"z\" in \"data:/d:z\"",
        ),
        (
            "data:/d:ro,z",
            "expected the mode ro or rw, found \"ro,z\" in \"data:/d:ro,z\"",
        ),
        (
            "data:srv/data",
            "the target must be an absolute path such as /data, found \"srv/data\"",
        ),
        ("data:/", "a volume cannot be mounted at /"),
        ("data://", "a volume cannot be mounted at /"),
    ];
    for (item, message) in cases {
        let body = format!("volumes:\n  - cache:/cache\n  - \"{item}\"");
        let e = one_error(&with_volumes(&body), "services.web.volumes[1]", 6);
        assert_eq!(e.message, message, "{item}");
    }
}

#[test]
fn malformed_long_syntax() {
    let cases = [
        (
            "type: npipe\n    source: data\n    target: /data",
            "services.web.volumes[0].type",
            5,
            "unsupported mount type \"npipe\": `volume` or `tmpfs`",
        ),
        (
            "type: 1\n    source: data\n    target: /data",
            "services.web.volumes[0].type",
            5,
            "expected a string, found an integer",
        ),
        (
            "source: data\n    target: data",
            "services.web.volumes[0].target",
            6,
            "the target must be an absolute path such as /data, found \"data\"",
        ),
        (
            "source: data\n    target: [/data]",
            "services.web.volumes[0].target",
            6,
            "expected a string, found a list",
        ),
        (
            "source: data\n    target: /data\n    read_only: yes",
            "services.web.volumes[0].read_only",
            7,
            "expected true or false, found \"yes\"",
        ),
        (
            "source: data",
            "services.web.volumes[0]",
            5,
            "missing `target`: the absolute path to mount the volume at",
        ),
    ];
    for (item, path, line, message) in cases {
        let body = format!("volumes:\n  - {item}");
        let e = one_error(&with_volumes(&body), path, line);
        assert_eq!(e.message, message, "{item}");
    }
    // A misspelt key is unknown, and the key it meant is missing.
    let errs = errors(&with_volumes(
        "volumes:\n  - source: data\n    taget: /data",
    ));
    let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "services.web.volumes[0]: missing `target`: the absolute path to mount the volume at (line 5)",
            "services.web.volumes[0].taget: unknown key (did you mean `target`?) (line 6)",
        ]
    );
}

#[test]
fn wrong_types() {
    let e = one_error(
        &with_volumes("volumes: data:/data"),
        "services.web.volumes",
        4,
    );
    assert_eq!(e.message, "expected a list, found a string");
    let e = one_error(
        &with_volumes("volumes:\n  - 5"),
        "services.web.volumes[0]",
        5,
    );
    assert_eq!(
        e.message,
        "expected NAME:/path or NAME:/path:ro or a mapping, found an integer"
    );
}

#[test]
fn the_same_target_twice() {
    let body = "volumes:\n  - data:/data\n  - cache:/cache\n  - source: cache\n    target: /data/";
    let e = one_error(&with_volumes(body), "services.web.volumes[2]", 7);
    assert_eq!(
        e.message,
        "/data is already a mount target (in services.web.volumes[0])"
    );
    // Different services may use the same target, and share a volume.
    let text = "services:\n  a:\n    image: x\n    volumes: [data:/data]\n  b:\n    image: y\n    volumes: [data:/data:ro]\nvolumes: {data: {}}\n";
    let parsed = ok(text);
    assert_eq!(
        parsed.app.services["b"].volumes,
        [mount("data", "/data", true)]
    );
}

#[test]
fn bad_declarations() {
    let text = format!("{}volumes:\n  -data: {{}}\n", web(""));
    let e = one_error(&text, "volumes.-data", 5);
    assert_eq!(
        e.message,
        "invalid volume name: use letters, digits, '_', '-' and '.', starting with a letter or digit"
    );
    // The invalid name still counts as declared: its mounts are not
    // reported again.
    let text = format!("{}volumes:\n  a/b:\n", web("volumes: [a/b:/data]"));
    one_error(&text, "volumes.a/b", 6);

    let e = one_error(
        &format!("{}volumes:\n  data: 5\n", web("")),
        "volumes.data",
        5,
    );
    assert_eq!(e.message, "expected a mapping, found an integer");
    let e = one_error(&format!("{}volumes: [data]\n", web("")), "volumes", 4);
    assert_eq!(e.message, "expected a mapping, found a list");
    let e = one_error(
        &format!("{}volumes:\n  data:\n    drver: local\n", web("")),
        "volumes.data.drver",
        6,
    );
    assert_eq!(e.message, "unknown key (did you mean `driver`?)");
}

#[test]
fn every_problem_is_reported() {
    let body = "volumes:\n  - /srv:/srv\n  - nope:/a\n  - data:rel\n  - data:/x:rx\n  - type: bind\n    source: /y\n    target: /y";
    let errs = errors(&with_volumes(body));
    let at: Vec<(&str, usize)> = errs.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        at,
        [
            ("services.web.volumes[0]", 5),
            ("services.web.volumes[1]", 6),
            ("services.web.volumes[2]", 7),
            ("services.web.volumes[3]", 8),
            ("services.web.volumes[4].type", 9),
        ]
    );
}
