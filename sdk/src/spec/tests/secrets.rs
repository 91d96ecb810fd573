//! Secrets and configs: declarations, mounts and their defaults.

use super::{errors, ok};
use crate::spec::FileSource;

const FILE: &str = "name: shop
services:
  db:
    image: postgres
    secrets:
      - db_password
      - source: api_key
        target: key.txt
        uid: '70'
        mode: 0440
    configs:
      - nginx
      - source: settings
        target: /etc/app/settings.json
secrets:
  db_password:
    file: ./db_password.txt
  api_key:
    environment: API_KEY
configs:
  nginx:
    file: ./nginx.conf
  settings:
    content: '{\"debug\": false}'
";

#[test]
fn declarations_and_mounts_with_compose_defaults() {
    let parsed = ok(FILE);
    assert_eq!(
        parsed.secrets["db_password"],
        FileSource::File("./db_password.txt".into())
    );
    assert_eq!(
        parsed.secrets["api_key"],
        FileSource::Environment("API_KEY".into())
    );
    assert_eq!(
        parsed.configs["settings"],
        FileSource::Content("{\"debug\": false}".into())
    );
    let files = &parsed.app.services["db"].files;
    let targets: Vec<(&str, u32, Option<u32>)> = files
        .iter()
        .map(|f| (f.target.as_str(), f.mode, f.uid))
        .collect();
    assert_eq!(
        targets,
        [
            ("/run/secrets/db_password", 0o400, None),
            ("/run/secrets/key.txt", 0o440, Some(70)),
            ("/nginx", 0o444, None),
            ("/etc/app/settings.json", 0o444, None),
        ]
    );
    assert!(
        files.iter().all(|f| f.digest.is_empty()),
        "the server fills digests in"
    );
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
}

#[test]
fn undeclared_names_bad_sources_and_targets_are_errors_with_lines() {
    let text = "name: a
services:
  web:
    image: nginx
    secrets:
      - nope
      - source: pw
        target: ../../etc/shadow
secrets:
  pw:
    file: ./pw
  both:
    file: ./x
    environment: X
  none: {}
  outside:
    external: true
configs:
  c:
    content: x
";
    let errs: Vec<String> = errors(text).iter().map(|e| e.to_string()).collect();
    let errs = errs.join("\n");
    for want in [
        "services.web.secrets[0]: secret \"nope\" is not declared under the top-level `secrets:` (line 6)",
        "invalid target \"../../etc/shadow\"",
        "secrets.both: give one source",
        "secrets.none: needs `file:` or `environment:`",
        "secrets.outside.external: external secrets are not supported",
    ] {
        assert!(errs.contains(want), "missing {want:?} in:\n{errs}");
    }
}

#[test]
fn content_is_for_configs_only() {
    let text = "name: a\nservices:\n  web:\n    image: nginx\nsecrets:\n  s:\n    content: x\n";
    let errs: Vec<String> = errors(text).iter().map(|e| e.to_string()).collect();
    assert!(
        errs.iter().any(|e| e.contains("secrets.s.content")),
        "{errs:?}"
    );
}
