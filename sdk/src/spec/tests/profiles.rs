//! `profiles`: services naming profiles run only when one is active; the
//! others are left out unchecked, with a warning.

use super::super::parse_with;

const FILE: &str = "services:
  web:
    image: nginx
    ports: [\"8080:80\"]
  debug:
    image: busybox
    ports: [\"8080:80\"]
    cap_add: [SYS_ADMIN]
    profiles: [debug, ops]
";

fn active(names: &[&str], text: &str) -> Result<super::Parsed, super::super::SpecErrors> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    parse_with(text, "demo", &|_| None, &names)
}

#[test]
fn a_service_with_profiles_is_left_out_unless_one_is_active() {
    let parsed = active(&[], FILE).expect("valid");
    assert_eq!(parsed.app.services.keys().collect::<Vec<_>>(), ["web"]);
    assert!(
        parsed.privileges.is_empty(),
        "a left-out service asks for nothing"
    );
    assert_eq!(
        parsed.warnings,
        [
            "services.debug: left out: its profiles (debug, ops) are not active (atoll deploy --profile debug) (line 5)"
        ]
    );
    // Active, it counts: its port clashes with web's.
    let errs = active(&["ops"], FILE).expect_err("a port clash");
    assert!(errs.to_string().contains("8080"), "{errs}");
}

#[test]
fn an_active_profile_runs_its_services() {
    let text = FILE.replace("    ports: [\"8080:80\"]\n    cap_add", "    cap_add");
    for profiles in [&["debug"][..], &["*"][..]] {
        let parsed = active(profiles, &text).expect("valid");
        assert_eq!(
            parsed.app.services.keys().collect::<Vec<_>>(),
            ["debug", "web"]
        );
        assert_eq!(parsed.privileges.len(), 1, "SYS_ADMIN counts now");
    }
}

#[test]
fn no_service_at_all_and_bad_names_are_errors() {
    let only = "services:\n  debug:\n    image: busybox\n    profiles: [debug]\n";
    let errs = active(&[], only).expect_err("nothing runs");
    assert!(errs.to_string().contains("no service runs"), "{errs}");
    let bad = "services:\n  web:\n    image: nginx\n    profiles: [\"-x\"]\n";
    let errs = active(&[], bad).expect_err("bad name");
    let e = &errs.0[0];
    assert_eq!(
        (e.path.as_str(), e.line),
        ("services.web.profiles[0]", 4),
        "{e}"
    );
}
