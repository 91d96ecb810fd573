//! Filling a new volume from the image, as Docker does: the files,
//! directories and symbolic links under the image's path are copied with
//! their owners, modes, extended attributes and times, and the volume's
//! own directory takes the owner and mode of the image's (even when that
//! is empty: an image declaring `/data` owned by `redis` gets a volume
//! `redis` can write).
//!
//! Symbolic links are copied as links, never followed; hard links become
//! separate files; device files, FIFOs and sockets are left out (a volume
//! is data). The source is an unpacked image that the host made itself.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Deepest directory nesting copied (an image deeper than this is
/// refused rather than risking the stack).
const MAX_DEPTH: usize = 256;

/// Copies what is in directory `src` into `dst` (an empty directory), and
/// gives `dst` the owner, mode and times of `src`.
pub(crate) fn copy_into(src: &Path, dst: &Path) -> io::Result<()> {
    copy_children(src, dst, 0)?;
    let meta = fs::symlink_metadata(src)?;
    copy_attributes(src, dst, &meta)
}

fn copy_children(src: &Path, dst: &Path, depth: usize) -> io::Result<()> {
    if depth > MAX_DEPTH {
        let m = format!(
            "{} is nested more than {MAX_DEPTH} levels deep",
            src.display()
        );
        return Err(io::Error::other(m));
    }
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(src)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let meta = fs::symlink_metadata(&from)?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if kind.is_dir() {
            fs::create_dir(&to)?;
            copy_children(&from, &to, depth + 1)?;
        } else if kind.is_file() {
            fs::copy(&from, &to)?;
        } else {
            continue;
        }
        copy_attributes(&from, &to, &meta)?;
    }
    Ok(())
}

/// Owner, then mode (a change of owner clears set-id bits), extended
/// attributes and times; for a link, its owner and times only.
fn copy_attributes(from: &Path, to: &Path, meta: &fs::Metadata) -> io::Result<()> {
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    copy_xattrs(from, to)?;
    set_times(to, meta)
}

fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Copies every extended attribute the filesystems let through; one the
/// target's filesystem does not support is skipped (as `cp -a` does).
fn copy_xattrs(from: &Path, to: &Path) -> io::Result<()> {
    let (src, dst) = (c_path(from)?, c_path(to)?);
    // SAFETY: a null buffer of length 0 asks for the size only.
    let size = unsafe { libc::llistxattr(src.as_ptr(), std::ptr::null_mut(), 0) };
    if size <= 0 {
        return Ok(());
    }
    let mut names = vec![0u8; size as usize];
    // SAFETY: `names` has room for `size` bytes.
    let got = unsafe { libc::llistxattr(src.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if got < 0 {
        return Ok(());
    }
    for name in names[..got as usize]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
    {
        let name = CString::new(name).map_err(io::Error::other)?;
        let mut value = vec![0u8; 64 * 1024];
        // SAFETY: `value` has room for its length.
        let len = unsafe {
            libc::lgetxattr(
                src.as_ptr(),
                name.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if len < 0 {
            continue;
        }
        // SAFETY: `value` holds `len` bytes.
        let rc = unsafe {
            libc::lsetxattr(
                dst.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                len as usize,
                0,
            )
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOTSUP) && e.raw_os_error() != Some(libc::EPERM) {
                return Err(e);
            }
        }
    }
    Ok(())
}

fn set_times(to: &Path, meta: &fs::Metadata) -> io::Result<()> {
    let path = c_path(to)?;
    let times = [
        libc::timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        libc::timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    ];
    // SAFETY: a path and two timespecs, not following a final link.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            path.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("atoll-copyup-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn files_links_owners_modes_and_the_roots_owner_are_copied() {
        let base = temp("tree");
        let (src, dst) = (base.join("image-data"), base.join("volume"));
        fs::create_dir_all(src.join("sub")).expect("dirs");
        fs::write(src.join("sub/file"), b"hello").expect("file");
        std::os::unix::fs::symlink("sub/file", src.join("link")).expect("link");
        std::os::unix::fs::symlink("/etc/passwd", src.join("outside")).expect("link");
        std::os::unix::fs::lchown(&src, Some(999), Some(998)).expect("chown root");
        fs::set_permissions(&src, fs::Permissions::from_mode(0o750)).expect("chmod");
        std::os::unix::fs::lchown(src.join("sub/file"), Some(999), Some(999)).expect("chown");
        fs::set_permissions(src.join("sub/file"), fs::Permissions::from_mode(0o640))
            .expect("chmod");
        // An extended attribute, where this filesystem keeps them.
        let (file, name) = (c_path(&src.join("sub/file")).expect("c"), c"user.atoll");
        // SAFETY: a valid path, name and 2-byte value.
        let with_xattr =
            unsafe { libc::lsetxattr(file.as_ptr(), name.as_ptr(), b"ok".as_ptr().cast(), 2, 0) }
                == 0;
        fs::create_dir(&dst).expect("volume dir");

        copy_into(&src, &dst).expect("copy");

        let root = fs::metadata(&dst).expect("volume");
        assert_eq!(
            (root.uid(), root.gid(), root.mode() & 0o7777),
            (999, 998, 0o750)
        );
        let f = fs::metadata(dst.join("sub/file")).expect("file");
        assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777), (999, 999, 0o640));
        assert_eq!(fs::read(dst.join("sub/file")).expect("read"), b"hello");
        assert_eq!(
            fs::read_link(dst.join("link")).expect("link"),
            Path::new("sub/file")
        );
        assert_eq!(
            fs::read_link(dst.join("outside")).expect("link"),
            Path::new("/etc/passwd"),
            "a link is copied as a link, not followed"
        );
        if with_xattr {
            let copied = c_path(&dst.join("sub/file")).expect("c");
            let mut buf = [0u8; 8];
            // SAFETY: `buf` has room for its length.
            let n = unsafe {
                libc::lgetxattr(
                    copied.as_ptr(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            assert_eq!(&buf[..n.max(0) as usize], b"ok");
        }
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn an_empty_image_directory_still_gives_its_owner_and_mode() {
        let base = temp("empty");
        let (src, dst) = (base.join("data"), base.join("volume"));
        fs::create_dir_all(&src).expect("dir");
        fs::create_dir_all(&dst).expect("dir");
        std::os::unix::fs::lchown(&src, Some(999), Some(999)).expect("chown");
        fs::set_permissions(&src, fs::Permissions::from_mode(0o700)).expect("chmod");
        copy_into(&src, &dst).expect("copy");
        let m = fs::metadata(&dst).expect("volume");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (999, 999, 0o700));
        assert_eq!(fs::read_dir(&dst).expect("list").count(), 0);
        let _ = fs::remove_dir_all(&base);
    }
}
