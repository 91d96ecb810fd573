//! Reads what a bind mount of the project folder ships
//! (`./nginx.conf:/etc/nginx/nginx.conf`, `./html:/usr/share/nginx/html`):
//! the file, or every regular file under the folder, in name order. Reads
//! stop a little past the limits (`spec::MAX_BUNDLE…`), so the checks
//! that name the file over them see it without this holding more.

use atoll_sdk::spec::{self, ProjectFile};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Folders nested deeper than this are not followed (a symbolic link to
/// a parent would never end).
const MAX_DEPTH: usize = 16;

/// The file at `path`, or the files under it.
pub fn list(path: &Path) -> Result<Vec<ProjectFile>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    if meta.is_dir() {
        let mut budget = Budget::default();
        walk(path, "", 0, &mut out, &mut budget)?;
        if out.is_empty() {
            return Err("the folder holds no file".into());
        }
    } else {
        out.push(read(path, String::new(), &meta)?);
    }
    Ok(out)
}

/// How much was read: reading stops once past the project's limits.
#[derive(Default)]
struct Budget {
    files: usize,
    bytes: usize,
}

impl Budget {
    fn exhausted(&self) -> bool {
        self.files > spec::MAX_BUNDLE_FILES || self.bytes > spec::MAX_BUNDLE
    }
}

fn walk(
    dir: &Path,
    prefix: &str,
    depth: usize,
    out: &mut Vec<ProjectFile>,
    budget: &mut Budget,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "folders nested deeper than {MAX_DEPTH} at {prefix}"
        ));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names: Vec<String> = (entries.flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        if budget.exhausted() {
            return Ok(());
        }
        let path = dir.join(&name);
        let rel = match prefix {
            "" => name,
            p => format!("{p}/{name}"),
        };
        // Follows symbolic links, as a bind mount shows their targets.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, &rel, depth + 1, out, budget)?;
        } else if meta.is_file() {
            let file = read(&path, rel, &meta)?;
            budget.files += 1;
            budget.bytes += file.value.len();
            out.push(file);
        }
    }
    Ok(())
}

/// One file, read up to one byte past the largest that may be shipped.
fn read(path: &Path, rel: String, meta: &std::fs::Metadata) -> Result<ProjectFile, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut value = Vec::new();
    (file.take(spec::MAX_BUNDLE_FILE as u64 + 1))
        .read_to_end(&mut value)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(ProjectFile {
        rel,
        mode: meta.permissions().mode() & 0o777,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder of this test's own, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let p = std::env::temp_dir().join(format!("atoll-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_folder_lists_its_files_in_name_order_with_their_modes() {
        let dir = Scratch::new("project-files-list");
        let root = dir.0.as_path();
        std::fs::create_dir_all(root.join("html/css")).unwrap();
        std::fs::write(root.join("html/index.html"), "hi").unwrap();
        std::fs::write(root.join("html/css/site.css"), "body{}").unwrap();
        std::fs::write(root.join("run.sh"), "#!/bin/sh").unwrap();
        let mut perms = std::fs::metadata(root.join("run.sh"))
            .unwrap()
            .permissions();
        perms.set_mode(0o750);
        std::fs::set_permissions(root.join("run.sh"), perms).unwrap();
        let files = list(&root.join("html")).unwrap();
        let rels: Vec<&str> = files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, ["css/site.css", "index.html"]);
        let one = list(&root.join("run.sh")).unwrap();
        assert_eq!((one[0].rel.as_str(), one[0].mode), ("", 0o750));
        assert!(
            list(&root.join("nope"))
                .unwrap_err()
                .contains("No such file")
        );
        std::fs::create_dir(root.join("empty")).unwrap();
        assert!(list(&root.join("empty")).unwrap_err().contains("no file"));
    }

    #[test]
    fn a_large_file_is_read_only_past_the_limit() {
        let dir = Scratch::new("project-files-big");
        let big = dir.0.join("big");
        std::fs::write(&big, vec![0u8; spec::MAX_BUNDLE_FILE * 3]).unwrap();
        let files = list(&big).unwrap();
        assert_eq!(files[0].value.len(), spec::MAX_BUNDLE_FILE + 1);
    }
}
