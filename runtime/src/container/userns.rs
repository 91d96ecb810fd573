//! User namespaces for containers (`atoll host --userns`): root in the
//! container is an unprivileged range of host ids (`BASE..BASE+65536`).
//!
//! youki enters a new user namespace before it joins the network
//! namespace by path, and a network namespace owned by the host's user
//! namespace cannot be joined from inside a child one. So atoll makes the
//! pair itself — a user namespace with its mapping, and a network
//! namespace owned by it — and pins both with bind mounts (the network
//! one where `ip netns` looks), and youki joins both by path.
//!
//! The image's unpacked layers stay shared and owned as in the image: a
//! container sees them through an idmapped bind mount (the overlay's lower
//! layer), and its volumes likewise, so the files on disk keep the
//! container's view of owners and work with and without a user namespace.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::rootfs;

/// Ids a container's user namespace maps, as Docker's userns-remap.
pub(crate) const SIZE: u32 = 65536;

/// The default first host id of the range.
pub const DEFAULT_BASE: u32 = 100_000;

/// Makes a user namespace mapping `0..SIZE` to `base..base+SIZE` and a
/// network namespace it owns, pinned at `userns_pin` and `netns_pin`
/// (files made here). Blocking: call from a blocking task.
pub(crate) fn make_pair(userns_pin: &Path, netns_pin: &Path, base: u32) -> io::Result<()> {
    for pin in [userns_pin, netns_pin] {
        if let Some(dir) = pin.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::File::create(pin)?;
    }
    // A child that unshares both (the user namespace first, so it owns
    // the network one) and waits on its stdin while the host writes its
    // mappings and pins its namespaces.
    let mut cmd = Command::new("cat");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: unshare is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let done = (|| {
        let map = format!("0 {base} {SIZE}\n");
        std::fs::write(format!("/proc/{pid}/uid_map"), &map)?;
        std::fs::write(format!("/proc/{pid}/gid_map"), &map)?;
        bind(Path::new(&format!("/proc/{pid}/ns/user")), userns_pin)?;
        bind(Path::new(&format!("/proc/{pid}/ns/net")), netns_pin)
    })();
    drop(child.stdin.take());
    let _ = child.wait();
    if done.is_err() {
        remove_pin(userns_pin);
        remove_pin(netns_pin);
    }
    done
}

fn bind(source: &Path, target: &Path) -> io::Result<()> {
    rootfs::mount(&source.to_string_lossy(), target, "none", libc::MS_BIND, "")
        .map_err(io::Error::other)
}

/// Unmounts and removes a pin (a missing one is fine).
pub(crate) fn remove_pin(pin: &Path) {
    if rootfs::is_mountpoint(pin) {
        rootfs::umount(pin);
    }
    let _ = std::fs::remove_file(pin);
}

/// Whether this machine gives containers user namespaces: a pair is made
/// and a scratch dir mounted idmapped through it. `Some(base)` if so; else
/// a warning, and containers share the host's (with the other defaults).
pub(crate) async fn probe(data_dir: &Path, base: u32) -> Option<u32> {
    let dir = data_dir.join("userns-probe");
    let tried = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || try_once(&dir, base)).await
    };
    let _ = std::fs::remove_dir_all(&dir);
    match tried {
        Ok(Ok(())) => {
            tracing::info!(base, size = SIZE, "containers run in user namespaces");
            Some(base)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "user namespaces unavailable: containers share the host's (root inside is root on the host)");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "user namespace probe failed");
            None
        }
    }
}

fn try_once(dir: &Path, base: u32) -> io::Result<()> {
    std::fs::create_dir_all(dir.join("scratch"))?;
    let (user, net) = (dir.join("user"), dir.join("net"));
    let mounted = dir.join("mapped");
    let result = make_pair(&user, &net, base)
        .and_then(|()| idmapped_bind(&dir.join("scratch"), &mounted, &user));
    if rootfs::is_mountpoint(&mounted) {
        rootfs::umount(&mounted);
    }
    remove_pin(&user);
    remove_pin(&net);
    result
}

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Mounts directory `source` at `target` (made here) with its owners
/// shifted through the user namespace pinned at `userns_pin`: a file owned
/// by uid N on disk is owned by N inside the container.
pub(crate) fn idmapped_bind(source: &Path, target: &Path, userns_pin: &Path) -> io::Result<()> {
    std::fs::create_dir_all(target)?;
    if rootfs::is_mountpoint(target) {
        return Ok(());
    }
    let userns = std::fs::File::open(userns_pin)?;
    let src = cstr(source)?;
    let empty = CString::default();
    // SAFETY: valid NUL-terminated path; the result is checked.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            src.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(io::Error::last_os_error());
    }
    let tree = i32::try_from(tree).map_err(io::Error::other)?;
    // SAFETY: a new descriptor the kernel just returned, owned here.
    let tree = unsafe { OwnedFd::from_raw_fd(tree) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: the descriptors are open, `attr` outlives the call and its
    // size is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let tgt = cstr(target)?;
    // SAFETY: as above.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            tgt.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
