//! The terminal of an interactive exec (`atoll exec -t`): a
//! pseudo-terminal the host opens. The OCI runtime gets its "slave" end
//! as standard input, output and error, in a session of its own with the
//! terminal as the controlling one, and passes them to the command it
//! starts in the container; the host keeps the "master" end to read the
//! command's output from, write its input to and set its size on (the
//! command gets SIGWINCH). The runtime's own console socket is not used:
//! with it, the runtime detaches and the command's exit status is lost.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A new terminal of `rows` × `cols`: (master, slave).
pub fn open(rows: u16, cols: u16) -> io::Result<(std::fs::File, OwnedFd)> {
    let (mut master, mut slave) = (-1, -1);
    let size = winsize(rows, cols);
    // SAFETY: openpty(3) fills two descriptors on success; no name buffer,
    // default terminal settings, the given size.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and ours alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [&master, &slave] {
        // SAFETY: fcntl on an open descriptor: not inherited past exec
        // (the runtime gets the slave as its stdio, which exec keeps).
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok((std::fs::File::from(master), slave))
}

/// Makes the caller a session leader with its standard input (the
/// terminal's slave) as controlling terminal. Meant for `pre_exec`: only
/// async-signal-safe calls.
pub fn take_as_controlling() -> io::Result<()> {
    // SAFETY: setsid(2) and ioctl(2) are async-signal-safe.
    unsafe {
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn winsize(rows: u16, cols: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// Sets the terminal's size (the command gets SIGWINCH).
pub fn resize(terminal: &std::fs::File, rows: u16, cols: u16) {
    let size = winsize(rows, cols);
    // SAFETY: TIOCSWINSZ with a valid winsize on an open descriptor; an
    // error (not a terminal) changes nothing.
    unsafe {
        libc::ioctl(terminal.as_raw_fd(), libc::TIOCSWINSZ, &size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn what_is_written_to_one_end_is_read_from_the_other_with_its_size() {
        let (mut master, slave) = open(33, 101).expect("a terminal");
        let mut slave = std::fs::File::from(slave);
        slave.write_all(b"out\n").expect("write");
        let mut buf = [0u8; 16];
        let n = master.read(&mut buf).expect("read");
        assert_eq!(&buf[..n], b"out\r\n", "a terminal turns \\n into \\r\\n");
        let mut ws = winsize(0, 0);
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!((ws.ws_row, ws.ws_col), (33, 101));
        resize(&master, 40, 120);
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!((ws.ws_row, ws.ws_col), (40, 120));
    }
}
