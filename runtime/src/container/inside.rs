//! Paths inside a container's root, resolved as the container would see
//! them: every symbolic link followed within the root, never out of it (an
//! absolute link target starts again at the root, `..` stops there).

use std::path::{Component, Path, PathBuf};

/// The host path of `inside` (absolute, in the container's view) with
/// every symlink resolved within `rootfs`; `None` if it does not exist.
pub(crate) fn resolve(rootfs: &Path, inside: &str) -> Option<PathBuf> {
    let mut pending: Vec<String> = components(inside).into_iter().rev().collect();
    let mut current: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            current.pop();
            continue;
        }
        let host = rootfs.join(current.iter().chain([&part]).collect::<PathBuf>());
        let meta = std::fs::symlink_metadata(&host).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&host).ok()?;
            let target = target.to_string_lossy();
            if target.starts_with('/') {
                current.clear();
            }
            pending.extend(components(&target).into_iter().rev());
        } else {
            current.push(part);
        }
    }
    Some(rootfs.join(current.iter().collect::<PathBuf>()))
}

fn components(p: &str) -> Vec<String> {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}
