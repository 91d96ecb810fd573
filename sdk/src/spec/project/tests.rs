//! Override files, `extends`, `include` and `env_file`, read from an
//! in-memory folder and checked through the parsed app.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{ComposeInput, Project, ProjectFile, load};
use crate::spec::{Parsed, SpecError};

/// Files by path, for `extends`, `include` and `env_file`.
struct Folder(BTreeMap<PathBuf, String>);

impl Folder {
    fn new(files: &[(&str, &str)]) -> Folder {
        Folder(
            files
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                .collect(),
        )
    }

    fn read(&self, path: &Path) -> Result<String, String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| "no such file".to_string())
    }

    /// A file, or the files under a folder (those ending `.sh` are
    /// executable).
    fn list(&self, path: &Path) -> Result<Vec<ProjectFile>, String> {
        let file = |rel: String, text: &String| ProjectFile {
            mode: if rel.ends_with(".sh") { 0o755 } else { 0o644 },
            rel,
            value: text.clone().into_bytes(),
        };
        if let Some(text) = self.0.get(path) {
            return Ok(vec![file(String::new(), text)]);
        }
        let under: Vec<ProjectFile> = (self.0.iter())
            .filter_map(|(p, t)| {
                let rel = p.strip_prefix(path).ok()?;
                Some(file(rel.display().to_string(), t))
            })
            .collect();
        match under.is_empty() {
            true => Err("no such file or directory".into()),
            false => Ok(under),
        }
    }
}

fn vars(name: &str) -> Option<String> {
    match name {
        "TAG" => Some("1.2".into()),
        "PORT" => Some("8080".into()),
        _ => None,
    }
}

/// The files given with `-f`, in order, all from folder `app`.
fn project(folder: &Folder, given: &[(&str, &str)]) -> Result<Project, Vec<SpecError>> {
    let inputs: Vec<ComposeInput> = given
        .iter()
        .map(|(name, text)| ComposeInput {
            name: name.to_string(),
            dir: PathBuf::from("app"),
            text: text.to_string(),
        })
        .collect();
    load(
        &inputs,
        &|p| folder.read(p),
        &|p| folder.list(p),
        &vars,
        &[],
    )
    .map_err(|e| e.0)
}

fn parsed(folder: &Folder, given: &[(&str, &str)]) -> Parsed {
    let p = project(folder, given).unwrap_or_else(|e| panic!("load failed: {e:#?}"));
    p.parse("demo", &vars, &[])
        .unwrap_or_else(|e| panic!("parse failed:\n{e}\n---\n{}", p.text))
}

fn errors(folder: &Folder, given: &[(&str, &str)]) -> Vec<SpecError> {
    match project(folder, given) {
        Err(e) => e,
        Ok(p) => match p.parse("demo", &vars, &[]) {
            Ok(ok) => panic!("expected errors, got {:#?}", ok.app),
            Err(e) => e.0,
        },
    }
}

/// A service's environment as (name, value) pairs, in name order.
fn env_of(svc: &crate::spec::Service) -> Vec<(&str, &str)> {
    (svc.environment.iter())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

const BASE: &str = "\
services:
  web:
    image: nginx:${TAG}
    command: [nginx, -g, daemon off;]
    environment:
      - A=1
      - B=2
      - PRICE=$$5
    ports:
      - \"80:80\"
      - \"443:443\"
  db:
    image: postgres:16
    ports: [\"5432:5432\"]
";

#[test]
fn one_plain_file_is_kept_as_written() {
    let p = project(&Folder::new(&[]), &[("compose.yaml", BASE)]).unwrap();
    assert!(!p.built);
    assert_eq!(p.text, BASE);
}

#[test]
fn override_files_merge_by_compose_rules() {
    let over = "\
services:
  web:
    command: [nginx-debug]
    environment:
      B: three
      C: \"4\"
    ports:
      - \"8443:443\"
      - target: 80
        published: 80
        protocol: tcp
  db:
    ports: !reset []
";
    let p = parsed(
        &Folder::new(&[]),
        &[("compose.yaml", BASE), ("override.yaml", over)],
    );
    let web = &p.app.services["web"];
    assert_eq!(
        web.container.command.as_deref(),
        Some(&["nginx-debug".to_string()][..])
    );
    assert_eq!(
        env_of(web),
        [("A", "1"), ("B", "three"), ("C", "4"), ("PRICE", "$5")]
    );
    let ports: Vec<(u16, u16)> = web.ports.iter().map(|p| (p.published, p.target)).collect();
    assert_eq!(ports, [(80, 80), (443, 443), (8443, 443)]);
    assert!(p.app.services["db"].ports.is_empty());
    assert!(matches!(&web.artifact, crate::spec::Artifact::Image(i) if i == "nginx:1.2"));
}

#[test]
fn override_replaces_whole_values() {
    let over = "services:\n  web:\n    environment: !override\n      ONLY: x\n";
    let p = parsed(&Folder::new(&[]), &[("a.yaml", BASE), ("b.yaml", over)]);
    let env: Vec<&str> = p.app.services["web"]
        .environment
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(env, ["ONLY"]);
}

#[test]
fn problems_name_the_file_and_line_they_were_written_on() {
    let over = "services:\n  web:\n    deploy:\n      replicas: many\n";
    let errs = errors(
        &Folder::new(&[]),
        &[("compose.yaml", BASE), ("prod.yaml", over)],
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        (errs[0].file.as_str(), errs[0].line),
        ("prod.yaml", 4),
        "{}",
        errs[0]
    );
    assert!(
        errs[0].to_string().contains("(prod.yaml line 4)"),
        "{}",
        errs[0]
    );
    let errs = errors(
        &Folder::new(&[]),
        &[("compose.yaml", BASE), ("bad.yaml", "services: [\n")],
    );
    assert_eq!(errs[0].file, "bad.yaml");
}

#[test]
fn extends_in_the_same_file_and_another() {
    let common = "\
services:
  base:
    image: busybox
    environment:
      FROM: common
      LEVEL: base
    env_file: common.env
";
    let main = "\
services:
  worker:
    extends:
      file: common.yaml
      service: base
    environment:
      LEVEL: worker
  second:
    extends: worker
    command: [sh]
";
    let folder = Folder::new(&[
        ("app/common.yaml", common),
        ("app/common.env", "FROM_FILE=yes\n"),
    ]);
    let p = parsed(&folder, &[("compose.yaml", main)]);
    for name in ["worker", "second"] {
        let env = &p.app.services[name].environment;
        assert_eq!(
            env.get("FROM").map(String::as_str),
            Some("common"),
            "{name}"
        );
        assert_eq!(
            env.get("LEVEL").map(String::as_str),
            Some("worker"),
            "{name}"
        );
        assert_eq!(
            env.get("FROM_FILE").map(String::as_str),
            Some("yes"),
            "{name}"
        );
    }
    assert!(p.app.services["second"].container.command.is_some());
}

#[test]
fn extends_cycles_and_missing_services_are_named() {
    let text =
        "services:\n  a:\n    extends: b\n    image: x\n  b:\n    extends: a\n    image: y\n";
    let errs = errors(&Folder::new(&[]), &[("compose.yaml", text)]);
    assert!(
        errs.iter().any(|e| e.message.contains("cycle")),
        "{errs:#?}"
    );
    let text = "services:\n  a:\n    extends: nope\n";
    let errs = errors(&Folder::new(&[]), &[("compose.yaml", text)]);
    assert_eq!(
        (errs[0].path.as_str(), errs[0].line),
        ("services.a.extends", 3)
    );
    assert!(errs[0].message.contains("no service `nope`"), "{}", errs[0]);
    let text = "services:\n  a:\n    extends: {file: gone.yaml, service: x}\n";
    let errs = errors(&Folder::new(&[]), &[("compose.yaml", text)]);
    assert!(
        errs[0].message.contains("cannot read gone.yaml"),
        "{}",
        errs[0]
    );
}

#[test]
fn include_adds_services_and_refuses_a_clash() {
    let db = "services:\n  db:\n    image: postgres:${TAG}\n    env_file: db.env\n";
    let folder = Folder::new(&[
        ("app/db/compose.yaml", db),
        ("app/db/db.env", "POSTGRES_DB=shop\n"),
    ]);
    let main = "include:\n  - db/compose.yaml\nservices:\n  web:\n    image: nginx\n";
    let p = parsed(&folder, &[("compose.yaml", main)]);
    let db = &p.app.services["db"];
    assert!(matches!(&db.artifact, crate::spec::Artifact::Image(i) if i == "postgres:1.2"));
    assert_eq!(
        db.environment.get("POSTGRES_DB").map(String::as_str),
        Some("shop")
    );
    let clash = "include:\n  - db/compose.yaml\nservices:\n  db:\n    image: nginx\n";
    let errs = errors(&folder, &[("compose.yaml", clash)]);
    assert!(
        errs[0]
            .message
            .contains("defined both here and in the included"),
        "{errs:#?}"
    );
    let looped = Folder::new(&[("app/self.yaml", "include: [self.yaml]\nservices: {}\n")]);
    let errs = errors(
        &looped,
        &[(
            "compose.yaml",
            "include: [self.yaml]\nservices:\n  a:\n    image: x\n",
        )],
    );
    assert!(errs.iter().any(|e| e.message.contains("deep")), "{errs:#?}");
}

#[test]
fn an_include_env_file_gives_the_included_files_variables() {
    let db = "services:\n  db:\n    image: postgres:${PG:-16}\n    environment: {TAG: $TAG}\n";
    let folder = Folder::new(&[
        ("app/db/compose.yaml", db),
        ("app/db.env", "PG=17\nTAG=from-the-env-file\n"),
    ]);
    let main = "include:\n  - path: db/compose.yaml\n    env_file: db.env\nservices:\n  web:\n    image: nginx:${PG:-1}\n";
    let p = parsed(&folder, &[("compose.yaml", main)]);
    let db = &p.app.services["db"];
    assert!(matches!(&db.artifact, crate::spec::Artifact::Image(i) if i == "postgres:17"));
    assert_eq!(env_of(db), [("TAG", "from-the-env-file")]);
    // Only the included files: the including one's $PG is unset.
    assert!(
        matches!(&p.app.services["web"].artifact, crate::spec::Artifact::Image(i) if i == "nginx:1")
    );
    let missing = "include:\n  - path: db/compose.yaml\n    env_file: [nope.env]\nservices: {}\n";
    let errs = errors(&folder, &[("compose.yaml", missing)]);
    assert!(
        errs[0].message.contains("env_file: cannot read nope.env"),
        "{errs:#?}"
    );
}

#[test]
fn env_file_loses_to_environment_and_may_be_optional() {
    let text = "\
services:
  web:
    image: nginx
    env_file:
      - one.env
      - path: two.env
      - path: absent.env
        required: false
    environment:
      WINS: environment
";
    let folder = Folder::new(&[
        ("app/one.env", "A=1\nWINS=file\nB=one\n"),
        ("app/two.env", "B=two\nCOST=${PORT}$$\n"),
    ]);
    let p = parsed(&folder, &[("compose.yaml", text)]);
    assert_eq!(
        env_of(&p.app.services["web"]),
        [
            ("A", "1"),
            ("B", "two"),
            ("COST", "8080$"),
            ("WINS", "environment")
        ]
    );
    let required = "services:\n  web:\n    image: nginx\n    env_file: absent.env\n";
    let errs = errors(&folder, &[("compose.yaml", required)]);
    assert_eq!(
        (errs[0].path.as_str(), errs[0].line),
        ("services.web.env_file", 4)
    );
}

#[test]
fn unknown_tags_are_refused_where_written() {
    let text = "services:\n  web:\n    image: !custom nginx\n";
    let over = "services:\n  web:\n    ports: !reset\n";
    let errs = errors(
        &Folder::new(&[]),
        &[("compose.yaml", text), ("b.yaml", over)],
    );
    assert_eq!(
        (errs[0].file.as_str(), errs[0].line),
        ("compose.yaml", 3),
        "{errs:#?}"
    );
}

#[test]
fn emitted_yaml_reads_back_the_same() {
    let strings = [
        "nginx:1.27",
        "1.10",
        "8080:80",
        "true",
        "No",
        "null",
        "~",
        "",
        "a: b",
        "a #b",
        "$HOME",
        "$$",
        "x:",
        "-x",
        "/run/secrets/a",
        "line\nbreak",
        "tab\there",
        "é",
        "\"q\"",
        "back\\slash",
    ];
    let value = serde_json::json!({
        "strings": strings,
        "numbers": [1, -2, 1.5, 0],
        "flags": [true, false, null],
        "nested": [{"a": [], "b": {}}, [["deep"]]],
        "weird keys": {"1": "one", "a b": "c", "a:b": "merge"},
    });
    let text = super::to_yaml(&value);
    let doc = crate::spec::yaml::load(&text).unwrap().unwrap();
    let mut ctx = crate::spec::ctx::Ctx::new(&text);
    let back = super::tree::from_node(&mut ctx, 0, "", &doc);
    assert!(ctx.errors.is_empty(), "{:?}\n{text}", ctx.errors);
    let again = super::emit::emit(&back, false).text;
    assert_eq!(again, text);
    let items = back.map().and_then(|m| m.get("strings")).map(|s| &s.value);
    let Some(super::tree::Value::Seq(items)) = items else {
        panic!("{text}")
    };
    let read: Vec<(&str, bool)> = items
        .iter()
        .map(|i| {
            (
                i.text().unwrap_or("?"),
                matches!(i.value, super::tree::Value::Str(_)),
            )
        })
        .collect();
    let expected: Vec<(&str, bool)> = strings.iter().map(|s| (*s, true)).collect();
    assert_eq!(read, expected, "{text}");
}

const SHIPPED: &str = "\
services:
  web:
    image: nginx
    volumes:
      - cache:/var/cache/nginx
      - ./nginx.conf:/etc/nginx/nginx.conf:ro
      - type: bind
        source: ./html
        target: /usr/share/nginx/html/
    configs: [site]
  other:
    image: nginx
    volumes: [\"./html/index.html:/www/index.html\"]
volumes:
  cache: {}
configs:
  site:
    content: hello
";

#[test]
fn project_files_are_shipped_as_read_only_configs_named_by_content() {
    let folder = Folder::new(&[
        ("app/nginx.conf", "events {}"),
        ("app/html/index.html", "<h1>hi</h1>"),
        ("app/html/run.sh", "#!/bin/sh"),
    ]);
    let p = project(&folder, &[("compose.yaml", SHIPPED)]).expect("load");
    assert!(p.built);
    // One value per content: index.html is shipped once for both services.
    assert_eq!(p.bundle.len(), 3, "{:?}", p.bundle.keys());
    assert!(
        p.bundle
            .keys()
            .all(|k| k.starts_with("bind-") && k.len() == 17)
    );
    let parsed = p.parse("demo", &vars, &[]).expect("parse");
    let web = &parsed.app.services["web"];
    assert_eq!(web.volumes.len(), 1, "the named volume stays");
    let mounts: Vec<(&str, u32)> = (web.files.iter())
        .map(|f| (f.target.as_str(), f.mode))
        .collect();
    assert_eq!(
        mounts,
        [
            ("/site", 0o444),
            ("/etc/nginx/nginx.conf", 0o444),
            ("/usr/share/nginx/html/index.html", 0o444),
            ("/usr/share/nginx/html/run.sh", 0o555),
        ]
    );
    let other = &parsed.app.services["other"];
    assert_eq!(other.files[0].name, web.files[2].name, "{:?}", other.files);
    assert_eq!(parsed.configs.len(), 4, "{:?}", parsed.configs);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
}

#[test]
fn a_missing_or_oversized_project_file_is_an_error_at_its_line() {
    let text = "services:\n  web:\n    image: nginx\n    volumes:\n      - ./data:/var/lib/data\n      - ./big.bin:/big:rw\n";
    let big = "x".repeat(super::MAX_BUNDLE_FILE + 1);
    let folder = Folder::new(&[("app/big.bin", big.as_str())]);
    let errs = errors(&folder, &[("compose.yaml", text)]);
    let got: Vec<(&str, usize)> = errs.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [
            ("services.web.volumes[0]", 5),
            ("services.web.volumes[1]", 6)
        ]
    );
    assert!(
        errs[0].message.contains("cannot ship ./data"),
        "{}",
        errs[0]
    );
    assert!(errs[0].message.contains("named volume"), "{}", errs[0]);
    assert!(
        errs[1].message.contains("./big.bin is 513 KiB"),
        "{}",
        errs[1]
    );
    assert_eq!(errs[0].file, "compose.yaml");
}

#[test]
fn a_host_path_is_still_refused() {
    let text = "services:\n  web:\n    image: nginx\n    volumes: [\"/srv/x:/x\"]\n";
    let errs = errors(&Folder::new(&[]), &[("compose.yaml", text)]);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0]
            .message
            .starts_with("bind mounts of host paths are refused")
    );
}

#[test]
fn a_service_left_out_by_its_profile_ships_nothing() {
    let text = "services:\n  web:\n    image: nginx\n  dev:\n    image: nginx\n    profiles: [dev]\n    volumes: [\"./src:/src\"]\n";
    let p = project(&Folder::new(&[]), &[("compose.yaml", text)]).expect("no file read");
    assert!(p.bundle.is_empty());
    let parsed = p.parse("demo", &vars, &[]).expect("parse");
    assert!(!parsed.app.services.contains_key("dev"));
}
