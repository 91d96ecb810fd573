//! Running the CLI as a user of a secure cluster would: with only a CLI
//! context (no server or token from the environment) and what the test
//! adds.

use std::path::Path;
use std::process::{Command, Output};

/// The CLI with only the context at `ctx` and `env` besides.
pub fn cli(ctx: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(super::atoll_bin());
    cmd.args(args)
        .env("ATOLL_CONTEXT", ctx)
        .env_remove("ATOLL_SERVER")
        .env_remove("ATOLL_TOKEN")
        .env_remove("ATOLL_CA");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run atoll")
}

/// What it printed, stdout and stderr.
pub fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Expects success; its stdout.
pub fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", said(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Expects failure naming `words`.
pub fn refused(out: Output, words: &str) {
    assert!(!out.status.success(), "succeeded: {}", said(&out));
    assert!(
        said(&out).contains(words),
        "{words:?} not in: {}",
        said(&out)
    );
}
