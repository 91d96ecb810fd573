//! A container's secrets and configs as files: written on a small tmpfs of
//! its own in its bundle (`<bundle>/secrets`, never on disk, unmounted with
//! the bundle) and bind-mounted read-only at each target. Each file takes
//! the mount's mode and owner (the container's user unless `uid`/`gid`).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::file_values::Mounted;

use super::ContainerError;
use super::rootfs::{is_mountpoint, mount, secrets_dir};

/// The tmpfs's size: the values with room to spare, at least 64 KiB.
fn size(files: &[Mounted]) -> usize {
    let total: usize = files.iter().map(|(_, v)| v.len() + 4096).sum();
    total.max(64 << 10)
}

/// Writes the files (again: a restart of the instance in a new bundle
/// gets them fresh), owned by `owner` (or the mount's `uid`/`gid`) plus
/// `shift`; `(source, target, read_only)` bind mounts.
pub(crate) fn write(
    bundle: &Path,
    files: &[Mounted],
    owner: (u32, u32),
    shift: u32,
) -> Result<Vec<(PathBuf, String, bool)>, ContainerError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let io = |what: String| move |source| ContainerError::Io { what, source };
    let dir = secrets_dir(bundle);
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    if !is_mountpoint(&dir) {
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        // In a user namespace the runtime mounts the files as the
        // container's root: it must pass through (not list) the dir.
        let data = match shift {
            0 => format!("size={},mode=0700", size(files)),
            base => format!("size={},mode=0711,uid={base},gid={base}", size(files)),
        };
        mount("tmpfs", &dir, "tmpfs", flags, &data)?;
    }
    let mut mounts = Vec::new();
    for (i, (m, value)) in files.iter().enumerate() {
        let path = dir.join(i.to_string());
        let what = || format!("writing the {} {}", m.kind.noun(), m.name);
        let _ = std::fs::remove_file(&path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(what()))?;
        f.write_all(value).map_err(io(what()))?;
        // The host's id of the owner inside (`shift`: the base of the
        // container's user namespace).
        let uid = m.uid.unwrap_or(owner.0).saturating_add(shift);
        let gid = m.gid.unwrap_or(owner.1).saturating_add(shift);
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(io(what()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m.mode))
            .map_err(io(what()))?;
        mounts.push((path, m.target.clone(), true));
    }
    Ok(mounts)
}
