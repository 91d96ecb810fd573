//! Entry names and the filesystem walk that keeps writes inside the root.
//!
//! Policy: an entry is only written if every parent component that already
//! exists is a real directory. A parent that is a symlink is refused rather
//! than resolved inside the root: resolving (like `securejoin`) is more
//! permissive but easy to get subtly wrong, and layer tools record files
//! under their real paths, so images that need it are rare.
//!
//! The walk uses `symlink_metadata` path by path. That is race-free only
//! because nobody else writes into the fresh partial directory we unpack
//! into; the host side is trusted.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

/// Why an entry name was refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NameProblem {
    /// Absolute, or has a `..` component.
    Escape,
    Invalid(&'static str),
}

/// Turns a raw tar name into a path relative to the root.
///
/// `.` and empty components are dropped (so `./a//b/` is `a/b`); the result
/// is empty when the name designates the root itself (`./`).
pub(super) fn normalize(raw: &[u8], max_len: usize) -> Result<PathBuf, NameProblem> {
    if raw.is_empty() {
        return Err(NameProblem::Invalid("empty name"));
    }
    if raw.len() > max_len {
        return Err(NameProblem::Invalid("name longer than the limit"));
    }
    if raw.contains(&0) {
        return Err(NameProblem::Invalid("name contains a NUL byte"));
    }
    if raw[0] == b'/' {
        return Err(NameProblem::Escape);
    }
    let mut rel = PathBuf::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(NameProblem::Escape),
            _ => rel.push(OsStr::from_bytes(part)),
        }
    }
    Ok(rel)
}

/// Shows raw bytes as a path, losslessly, for error messages.
pub(super) fn shown(raw: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(raw))
}

/// What stopped the walk over an entry's parents.
#[derive(Debug)]
pub(super) enum ParentProblem {
    /// This existing parent (relative to the root) is a symlink.
    Symlink(PathBuf),
    /// This existing parent is neither a directory nor a symlink.
    NotDir(PathBuf),
    Io(io::Error),
}

/// Checks the parents of `rel` inside `root`, creating missing ones (mode
/// 0755, like `mkdir -p` in image builders) when `create` is set.
///
/// Returns whether all parents exist afterwards.
pub(super) fn walk_parents(root: &Path, rel: &Path, create: bool) -> Result<bool, ParentProblem> {
    let Some(parent) = rel.parent() else {
        return Ok(true);
    };
    let mut abs = root.to_path_buf();
    let mut sub = PathBuf::new();
    for part in parent.components() {
        // normalize() only produces normal components; be strict anyway.
        let Component::Normal(name) = part else {
            return Err(ParentProblem::NotDir(sub));
        };
        abs.push(name);
        sub.push(name);
        match fs::symlink_metadata(&abs) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => return Err(ParentProblem::Symlink(sub)),
            Ok(_) => return Err(ParentProblem::NotDir(sub)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                if !create {
                    return Ok(false);
                }
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&abs)
                    .map_err(ParentProblem::Io)?;
            }
            Err(err) => return Err(ParentProblem::Io(err)),
        }
    }
    Ok(true)
}

/// What [`clear`] found at a path.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Cleared {
    Nothing,
    /// A non-directory was unlinked (a symlink itself, never its target).
    File,
    /// A directory tree was removed.
    Dir,
    /// A directory was there and `keep_dir` was set.
    KeptDir,
}

/// Removes whatever is at `abs` so a new entry can be created there without
/// writing through an existing symlink. `remove_dir_all` does not follow
/// symlinks inside the tree (std fixed that in CVE-2022-21658).
pub(super) fn clear(abs: &Path, keep_dir: bool) -> io::Result<Cleared> {
    match fs::symlink_metadata(abs) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Cleared::Nothing),
        Err(err) => Err(err),
        Ok(meta) if meta.is_dir() && keep_dir => Ok(Cleared::KeptDir),
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(abs).map(|()| Cleared::Dir),
        Ok(_) => fs::remove_file(abs).map(|()| Cleared::File),
    }
}

/// Reads the effective uid from procfs: ownership from the headers is only
/// applied when running as root, as without it `lchown` would fail anyway.
pub(super) fn running_as_root() -> bool {
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_dots_and_refuses_escapes() {
        assert_eq!(normalize(b"./a//b/", 4096), Ok(PathBuf::from("a/b")));
        assert_eq!(normalize(b"./", 4096), Ok(PathBuf::new()));
        assert_eq!(normalize(b"a/../../x", 4096), Err(NameProblem::Escape));
        assert_eq!(normalize(b"/etc/x", 4096), Err(NameProblem::Escape));
        assert!(matches!(normalize(b"", 4096), Err(NameProblem::Invalid(_))));
        assert!(matches!(
            normalize(b"a\0b", 4096),
            Err(NameProblem::Invalid(_))
        ));
        assert!(matches!(
            normalize(b"abcdef", 5),
            Err(NameProblem::Invalid(_))
        ));
    }
}
