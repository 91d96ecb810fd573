//! The Compose corpus: files written the way real projects write them
//! (tests/compose/<case>/), each checked through `atoll config` against
//! the output expected of it.
//!
//! A case is a folder with the Compose files and:
//! - `command`: the command line, e.g. `atoll config -f base.yaml -f prod.yaml`;
//! - `env` (optional): `KEY=value` lines, the only environment the command sees;
//! - `stdin` (optional): fed to the command's standard input;
//! - `expected.stdout`, `expected.stderr`, `expected.status`.
//!
//! After a deliberate change of output, `ATOLL_BLESS=1 cargo test --test
//! compose_corpus` rewrites the expected files (review the diff).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs one case; `None` if it matched, else what differed.
fn run_case(dir: &Path, bless: bool) -> Option<String> {
    let command = read(&dir.join("command"));
    let mut words = command.split_whitespace();
    assert_eq!(
        words.next(),
        Some("atoll"),
        "{}: command must start with atoll",
        dir.display()
    );
    let mut cmd = Command::new(common::atoll_bin());
    cmd.args(words)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let env = dir.join("env");
    if env.exists() {
        for line in read(&env).lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line.split_once('=').unwrap_or((line, ""));
            cmd.env(k, v);
        }
    }
    let mut child = cmd.spawn().expect("atoll runs");
    let stdin = dir.join("stdin");
    let input = if stdin.exists() {
        read(&stdin)
    } else {
        String::new()
    };
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(input.as_bytes()).expect("stdin written");
    }
    let out = child.wait_with_output().expect("atoll ends");
    let got = [
        (
            "expected.stdout",
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        (
            "expected.stderr",
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        (
            "expected.status",
            format!("{}\n", out.status.code().unwrap_or(-1)),
        ),
    ];
    let mut diffs = Vec::new();
    for (file, text) in got {
        let path = dir.join(file);
        if bless {
            std::fs::write(&path, &text).expect("expected file written");
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if want != text {
            diffs.push(format!("--- {file} expected:\n{want}--- got:\n{text}"));
        }
    }
    (!diffs.is_empty()).then(|| format!("case {}:\n{}", dir.display(), diffs.join("\n")))
}

#[test]
fn every_case_gives_its_expected_output() {
    let root = common::repo().join("tests/compose");
    let bless = std::env::var_os("ATOLL_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .expect("tests/compose exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("command").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "the corpus has {} cases", cases.len());
    let failures: Vec<String> = cases.iter().filter_map(|c| run_case(c, bless)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
