//! Images built from Debian's own packages by `tests/images/build-image`
//! (a recipe per image under `tests/images/`), cached between runs under
//! `target/test-images/`.

use super::common::repo;
use std::path::PathBuf;
use std::process::Command;

/// The layout of image `name` (`tests/images/<name>.json`), built or taken
/// from the cache.
pub fn build(name: &str) -> PathBuf {
    let root = repo();
    let recipe = root.join("tests/images").join(format!("{name}.json"));
    let cache = root.join("target/test-images");
    let out = Command::new(root.join("tests/images/build-image"))
        .arg(&recipe)
        .arg(&cache)
        .output()
        .expect("tests/images/build-image runs (python3)");
    assert!(
        out.status.success(),
        "building image {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let layout = stdout.lines().last().unwrap_or_default().trim();
    assert!(!layout.is_empty(), "build-image printed no layout path");
    PathBuf::from(layout)
}
