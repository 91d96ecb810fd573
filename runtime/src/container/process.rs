//! Waiting for a container's init process from outside the runtime.
//!
//! The host makes itself a child subreaper: when the runtime's `create`
//! exits, the container's init is re-parented to the host, which can then
//! collect its exit status. A container adopted after a host restart is
//! not the host's child; its exit is still seen (through a pidfd), its
//! status is not.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

pub(crate) use crate::driver::Exit;

/// Makes this process the reaper of its orphaned descendants.
pub(crate) fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `pid` exists (a zombie counts: it has not been reaped).
pub(crate) fn exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: a plain syscall; the returned fd is owned by the caller.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until `pid` ends and reaps it if it is our child.
pub(crate) async fn wait(pid: i32) -> std::io::Result<Exit> {
    let fd = match pidfd_open(pid) {
        Ok(fd) => fd,
        // Already gone (and reaped by someone): nothing to wait for.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(Exit::Unknown),
        Err(e) => return Err(e),
    };
    // SAFETY: the OwnedFd moves into the AsyncFd, so the descriptor stays
    // open and names this pidfd for as long as it is registered.
    let afd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }?;
    // A pidfd becomes readable when the process ends.
    let _ready = afd.readable().await?;
    Ok(reap(afd.get_ref().as_raw_fd()))
}

fn reap(pidfd: i32) -> Exit {
    // SAFETY: `info` is a plain C struct the kernel fills.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::waitid(libc::P_PIDFD, pidfd as libc::id_t, &mut info, libc::WEXITED) };
    if rc != 0 {
        return Exit::Unknown;
    }
    // SAFETY: filled by a successful waitid with WEXITED.
    let (code, status) = unsafe { (info.si_code, info.si_status()) };
    match code {
        libc::CLD_EXITED => Exit::Code(status),
        libc::CLD_KILLED | libc::CLD_DUMPED => Exit::Signal(status),
        _ => Exit::Unknown,
    }
}
