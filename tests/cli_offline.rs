//! The command line's own verbs and contracts, without a cluster: shell
//! completion, manual pages, the client version, and the exit codes
//! `atoll --help` lists.

mod common;

use std::process::{Command, Output};

fn atoll(args: &[&str]) -> Output {
    Command::new(common::atoll_bin())
        .args(args)
        .env_remove("ATOLL_SERVER")
        .output()
        .expect("atoll runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn completion_scripts_name_every_verb() {
    for shell in ["bash", "zsh", "fish"] {
        let out = atoll(&["completion", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for verb in ["deploy", "config", "exec", "hosts", "logs"] {
            assert!(script.contains(verb), "{shell} completion lacks {verb}");
        }
    }
    let bash = text(&atoll(&["completion", "bash"]).stdout);
    let check = Command::new("bash")
        .args(["-n", "-c", &bash])
        .output()
        .expect("bash");
    assert!(
        check.status.success(),
        "the bash script parses: {}",
        text(&check.stderr)
    );
    assert_eq!(atoll(&["completion", "tcsh"]).status.code(), Some(2));
}

#[test]
fn manual_pages_are_written_for_every_verb() {
    let dir = tempfile_dir();
    let out = atoll(&["man", "--dir", &dir.to_string_lossy()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for page in [
        "atoll.1",
        "atoll-deploy.1",
        "atoll-exec.1",
        "atoll-token-create.1",
    ] {
        let body =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            body.starts_with(".ie") || body.contains(".TH"),
            "{page} is a man page"
        );
    }
    let deploy = std::fs::read_to_string(dir.join("atoll-deploy.1")).unwrap_or_default();
    assert!(deploy.contains("env\\-file"), "flags are documented");
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("atoll-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn exit_codes_say_what_kind_of_failure() {
    let out = atoll(&["version", "--client"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("client: {}\n", env!("CARGO_PKG_VERSION"))
    );
    // 2: usage.
    assert_eq!(atoll(&["deploy", "--no-such-flag"]).status.code(), Some(2));
    // 4: the server cannot be reached (a port nothing listens on).
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [vec!["ls"], vec!["version"], vec!["ps", "-q"]] {
        let mut all = args.clone();
        all.extend(["--server", &url]);
        let out = atoll(&all);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // 3: an invalid Compose file, before any server is asked.
    let out = Command::new(common::atoll_bin())
        .args(["deploy", "-f", "-", "--server", &url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(b"services:\n  web:\n    image: Bad Image\n")?;
            }
            child.wait_with_output()
        })
        .expect("atoll deploy");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("services.web.image"),
        "{}",
        text(&out.stderr)
    );
    // The list is in the help.
    assert!(text(&atoll(&["--help"]).stdout).contains("3 invalid Compose file"));
}
