use super::*;
use crate::protocol::VERSION;
use crate::spec::{self, Artifact};

fn record(app: &str, revision: u64, env: &str) -> AppRecord {
    let text = format!(
        "name: {app}\nservices:\n  web:\n    image: registry.test/web:1\n    environment:\n      V: \"{env}\"\n"
    );
    let parsed = spec::parse(&text, app).expect("valid compose");
    AppRecord {
        v: VERSION,
        revision,
        spec: parsed.app,
        compose: text,
        deployed_at_ms: 1000 * revision,
        warnings: Vec::new(),
        rollback_of: None,
        cause: Some("deploy".into()),
        importing_since_ms: None,
        vips: Default::default(),
        stopped: false,
    }
}

fn file(apps: Vec<ExportedApp>) -> ExportFile {
    ExportFile {
        v: EXPORT_VERSION,
        cluster: "default".into(),
        exported_at_ms: 5,
        apps,
        scale: Vec::new(),
        removed_hosts: Vec::new(),
    }
}

fn shop() -> ExportedApp {
    ExportedApp {
        name: "shop".into(),
        current: 2,
        revisions: vec![record("shop", 1, "1"), record("shop", 2, "2")],
    }
}

fn bytes(f: &ExportFile) -> Vec<u8> {
    serde_json::to_vec(f).expect("json")
}

#[test]
fn an_export_reads_back_as_it_was_written() {
    let f = file(vec![shop()]);
    assert_eq!(parse(&bytes(&f)), Ok(f));
}

#[test]
fn not_json_another_version_or_another_shape_is_named() {
    let err = |text: &str| parse(text.as_bytes()).expect_err(text).to_string();
    assert!(err("hello").starts_with("not JSON: "), "{}", err("hello"));
    assert_eq!(
        err("[1]"),
        "not an atoll export: the file is not a JSON object"
    );
    assert_eq!(
        err("{\"apps\": []}"),
        "not an atoll export: no \"v\" (format version)"
    );
    assert_eq!(
        err("{\"v\": 7, \"apps\": []}"),
        "export format version 7 is not supported (this atoll reads version 1)"
    );
    assert_eq!(err("{\"v\": 1}"), "not an atoll export: no \"apps\" list");
}

#[test]
fn a_malformed_revision_is_named_by_app_and_revision() {
    let mut v = serde_json::to_value(file(vec![shop()])).expect("json");
    v["apps"][0]["revisions"][1]["spec"]["services"]["web"]["artifact"] = "oops".into();
    let e = parse(&serde_json::to_vec(&v).expect("json")).expect_err("bad spec");
    assert!(e.to_string().starts_with("app shop revision 2: "), "{e}");
    let mut v = serde_json::to_value(file(vec![shop()])).expect("json");
    v["apps"][0]["current"] = "two".into();
    let e = parse(&serde_json::to_vec(&v).expect("json")).expect_err("bad current");
    assert!(e.to_string().starts_with("app shop: invalid type"), "{e}");
}

#[test]
fn inconsistent_apps_are_refused() {
    let check = |app: ExportedApp| check_app(&app).expect_err("invalid").to_string();
    let mut a = shop();
    a.current = 3;
    assert_eq!(
        check(a),
        "app shop: the current revision 3 is not among its revisions"
    );
    let mut a = shop();
    a.revisions[1].revision = 1;
    assert_eq!(check(a), "app shop: revision 1 is listed twice");
    let mut a = shop();
    a.revisions = vec![record("blog", 1, "1")];
    a.current = 1;
    assert_eq!(check(a), "app shop: revision 1 is of app \"blog\"");
    let mut a = shop();
    if let Some(web) = a.revisions[0].spec.services.get_mut("web") {
        web.artifact = Artifact::Component("./web.wasm".into());
    }
    assert_eq!(
        check(a),
        "app shop: revision 1: service web refers to the local path ./web.wasm (not uploaded)"
    );
    let mut a = shop();
    a.revisions.clear();
    assert_eq!(check(a), "app shop: no revisions");
    let twice = file(vec![shop(), shop()]);
    assert_eq!(
        parse(&bytes(&twice)).expect_err("twice").to_string(),
        "app shop: appears twice"
    );
}

#[test]
fn an_import_holds_the_controller_back_for_a_bounded_time_only() {
    use crate::protocol::IMPORT_WAIT_MS;
    let mut r = record("shop", 1, "1");
    assert!(!r.is_importing(0), "an ordinary revision");
    r.importing_since_ms = Some(1_000);
    assert!(r.is_importing(1_000));
    assert!(r.is_importing(1_000 + IMPORT_WAIT_MS - 1));
    assert!(
        !r.is_importing(1_000 + IMPORT_WAIT_MS),
        "an import that died half-way stalls nothing for ever"
    );
}
