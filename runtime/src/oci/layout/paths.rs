//! Names and files the loader may touch. An archive is untrusted: every
//! entry name, link target and path named in `manifest.json` goes through
//! [`safe_name`] or [`join_inside`], which refuse anything that would
//! leave the archive, and metadata files are read with a size bound so a
//! hostile `index.json` cannot exhaust memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// An archive path made relative and clean (`./a//b` → `a/b`), or `None`
/// when it is absolute or has a `..` component.
pub(super) fn safe_name(raw: &str) -> Option<String> {
    if raw.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// A symbolic link's target from directory `dir`, or `None` when it
/// leaves the archive.
pub(super) fn join_inside(dir: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// A whole file, or `FileTooLarge` if it holds more than `limit` bytes.
pub(super) fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}
