//! `docs/compose.md` must match the key catalogue: one row per key, under
//! the heading of its section, with the status the code gives it.

use super::super::keys::{ALL, Status};

/// The rows of the table under the heading named `section`: `(key, status)`.
fn rows<'d>(doc: &'d str, section: &str) -> Option<Vec<(&'d str, &'d str)>> {
    let mut lines = doc.lines().skip_while(|l| {
        let heading = l.trim_start_matches('#');
        !(l.starts_with('#')
            && heading
                .trim()
                .replace('`', "")
                .eq_ignore_ascii_case(section))
    });
    lines.next()?;
    let rows = lines
        .take_while(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut cells = l.strip_prefix('|')?.split('|').map(str::trim);
            let key = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((key, cells.next()?))
        })
        .collect();
    Some(rows)
}

#[test]
fn compose_md_lists_every_key_with_its_status() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/compose.md");
    let doc = std::fs::read_to_string(path).expect("docs/compose.md");
    for section in ALL {
        let rows =
            rows(&doc, section.name).unwrap_or_else(|| panic!("no heading for `{}`", section.name));
        for (key, status) in section.keys {
            let row = rows.iter().find(|(k, _)| k == key);
            let Some((_, documented)) = row else {
                panic!("{}: no row for `{key}`", section.name);
            };
            let expected = match status {
                Status::Supported | Status::Cli => "supported",
                Status::Warn(_) => "warning",
            };
            assert!(
                documented.starts_with(expected),
                "{}: `{key}` is {expected} in the code, documented as {documented:?}",
                section.name
            );
        }
        // Rows for anything else (`x-*`, …) must not claim support.
        for (key, documented) in &rows {
            if !section.keys.iter().any(|(k, _)| k == key) {
                assert!(
                    documented.starts_with("ignored") || documented.starts_with("error"),
                    "{}: `{key}` is not in the catalogue but documented as {documented:?}",
                    section.name
                );
            }
        }
    }
}

/// `schema/x-atoll.schema.json`, the schema editors complete `x-atoll`
/// with, must name exactly the keys of each `x-atoll` section.
#[test]
fn the_x_atoll_schema_has_the_catalogues_keys() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/x-atoll.schema.json");
    let text = std::fs::read_to_string(path).expect("schema/x-atoll.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let keys_at = |pointer: &str| -> Vec<String> {
        let props = schema.pointer(pointer).and_then(|p| p.as_object());
        let mut keys: Vec<String> = props
            .unwrap_or_else(|| panic!("no {pointer} in the schema"))
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let sections = [
        ("services.<name>.x-atoll", "/properties"),
        ("services.<name>.x-atoll.health", "/$defs/health/properties"),
        (
            "services.<name>.x-atoll.health.liveness",
            "/$defs/liveness/properties",
        ),
        (
            "services.<name>.x-atoll.autoscale",
            "/$defs/autoscale/properties",
        ),
        (
            "services.<name>.x-atoll.autoscale.target",
            "/$defs/autoscale_target/properties",
        ),
        ("services.<name>.x-atoll.canary", "/$defs/canary/properties"),
        (
            "services.<name>.x-atoll.disconnect",
            "/$defs/disconnect/properties",
        ),
    ];
    for (name, pointer) in sections {
        let section = (ALL.iter())
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no section {name}"));
        let mut expected: Vec<String> = section.keys.iter().map(|(k, _)| k.to_string()).collect();
        expected.sort();
        assert_eq!(keys_at(pointer), expected, "{name}");
    }
    // Every x-atoll section of the catalogue is covered.
    let covered = (ALL.iter()).filter(|s| s.name.contains("x-atoll")).count();
    assert_eq!(covered, sections.len());
}
