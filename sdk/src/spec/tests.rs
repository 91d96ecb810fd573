//! Scenario tests of [`super::parse`], one file per theme. Each test feeds
//! a whole Compose file and checks the model, the warnings, or the exact
//! path and line of each error.

mod container;
mod disconnect;
mod docs;
mod errors;
mod garbage;
mod health;
mod kernel;
mod privileges;
mod profiles;
mod scale;
mod secrets;
mod valid;
mod values;
mod variables;
mod volumes;
mod warnings;

use super::{Parsed, SpecError, parse};

/// Parses `text` (app folder "demo") and expects success.
fn ok(text: &str) -> Parsed {
    match parse(text, "demo") {
        Ok(p) => p,
        Err(e) => panic!("expected success, got:\n{e}"),
    }
}

/// Parses `text` and expects errors.
fn errors(text: &str) -> Vec<SpecError> {
    match parse(text, "demo") {
        Ok(p) => panic!("expected errors, got {:#?}", p.app),
        Err(e) => e.0,
    }
}

/// The single error of `text`, checked for its path and line.
fn one_error(text: &str, path: &str, line: usize) -> SpecError {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    let e = errs.into_iter().next().unwrap();
    assert_eq!((e.path.as_str(), e.line), (path, line), "{e}");
    e
}

/// A one-service file with `body` indented under `services.web`.
fn web(body: &str) -> String {
    let mut text = String::from("services:\n  web:\n    image: nginx\n");
    for l in body.lines() {
        text.push_str("    ");
        text.push_str(l);
        text.push('\n');
    }
    text
}

/// A valid file using most features, as a seed for mutations.
fn valid_sample() -> &'static str {
    valid::FULL
}
