//! Variables in values, as `docker compose` substitutes them: the value
//! is checked after substitution, unset variables warn once, `:?` and a
//! malformed `$` are errors naming the key and line, keys are left alone.

use std::collections::BTreeMap;

use super::super::{Artifact, parse, parse_with};

fn with(vars: &[(&str, &str)], text: &str) -> Result<super::Parsed, super::super::SpecErrors> {
    let map: BTreeMap<String, String> = (vars.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    parse_with(text, "demo", &|name| map.get(name).cloned(), &[])
}

const FILE: &str = "services:
  web:
    image: \"registry.local/web:${TAG:-1}\"
    ports: [\"${PORT:-8080}:80\"]
    deploy:
      replicas: ${REPLICAS}
    environment:
      DB: \"postgres://${DB_USER}@db:5432/app\"
      PRICE: \"5$$\"
    command: [\"sh\", \"-c\", \"echo $$HOME\"]
";

#[test]
fn values_are_checked_after_substitution() {
    let parsed = with(
        &[("TAG", "2.1"), ("REPLICAS", "3"), ("DB_USER", "shop")],
        FILE,
    )
    .expect("valid");
    let web = &parsed.app.services["web"];
    assert_eq!(
        web.artifact,
        Artifact::Image("registry.local/web:2.1".into())
    );
    assert_eq!(web.ports[0].published, 8080);
    assert_eq!(web.deploy.replicas, 3);
    assert_eq!(web.environment["DB"], "postgres://shop@db:5432/app");
    assert_eq!(web.environment["PRICE"], "5$");
    let command = web.container.command.as_ref().expect("command");
    assert_eq!(command[2], "echo $HOME");
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
}

#[test]
fn an_unset_variable_is_empty_with_one_warning_naming_it() {
    let text = "services:
  web:
    image: nginx
    environment:
      A: \"${NOPE}\"
      B: \"x${NOPE}y\"
";
    let parsed = with(&[], text).expect("valid");
    let env = &parsed.app.services["web"].environment;
    assert_eq!((env["A"].as_str(), env["B"].as_str()), ("", "xy"));
    assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
    let w = &parsed.warnings[0];
    assert!(
        w.starts_with("services.web.environment.A: variable NOPE is not set")
            && w.ends_with("(line 5)"),
        "{w}"
    );
}

#[test]
fn a_required_variable_fails_naming_the_key_line_and_message() {
    let text = "services:
  web:
    image: \"web:${TAG:?set TAG to the release}\"
";
    let errs = with(&[], text).expect_err("required");
    assert_eq!(errs.0.len(), 1, "{errs}");
    let e = &errs.0[0];
    assert_eq!((e.path.as_str(), e.line), ("services.web.image", 3));
    assert!(
        e.message
            .contains("TAG is missing a value: set TAG to the release"),
        "{e}"
    );
    assert!(with(&[("TAG", "1")], text).is_ok());
}

#[test]
fn a_malformed_dollar_names_the_key() {
    let text = "services:
  web:
    image: nginx
    command: [\"echo\", \"costs $5\"]
";
    let errs = parse(text, "demo").expect_err("invalid");
    let e = &errs.0[0];
    assert_eq!((e.path.as_str(), e.line), ("services.web.command[1]", 4));
    assert!(e.message.contains("$$"), "{e}");
}

#[test]
fn keys_are_not_substituted() {
    let text = "services:
  web:
    image: nginx
    environment:
      ${KEY}: v
";
    let parsed = with(&[("KEY", "K")], text).expect("valid");
    assert!(
        parsed.app.services["web"]
            .environment
            .contains_key("${KEY}")
    );
}
