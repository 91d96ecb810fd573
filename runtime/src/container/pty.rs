//! The terminal of an interactive exec (`atoll exec -t`): a
//! pseudo-terminal the host opens. The OCI runtime gets its "slave" end
//! as standard input, output and error and passes them to the command it
//! starts in the container; the host keeps the "master" end to read the
//! command's output from, write its input to and set its size on (the
//! command gets SIGWINCH). The runtime's own console socket is not used:
//! with it, the runtime detaches and the command's exit status is lost.
//! The command is no terminal's session (the runtime's init starts it in
//! a session of its own), so the host plays that part of the terminal:
//! ^C and ^\ typed while the terminal has signals on send SIGINT and
//! SIGQUIT to the command's process group ([`Master::signals_in`]).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

/// A new terminal of `rows` × `cols`: (master, slave). Both ends are
/// close-on-exec from the start (other threads start processes at any
/// time); the runtime gets the slave as its stdio, which exec keeps.
pub fn open(rows: u16, cols: u16) -> io::Result<(std::fs::File, OwnedFd)> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: posix_openpt(3) returns a new descriptor or -1.
    let master = unsafe { libc::posix_openpt(flags) };
    if master < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is new and ours alone.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: grantpt/unlockpt/ptsname_r on the master just opened, with
    // a buffer of the length given.
    unsafe {
        if libc::grantpt(master.as_raw_fd()) != 0
            || libc::unlockpt(master.as_raw_fd()) != 0
            || libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: ptsname_r wrote a NUL-terminated path into `name`.
    let slave = unsafe { libc::open(name.as_ptr(), flags) };
    if slave < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is new and ours alone.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    let master = std::fs::File::from(master);
    resize(&master, rows, cols);
    Ok((master, slave))
}

/// The master end, read and written without blocking a thread: dropping
/// it ends whatever waits on it.
pub struct Master(AsyncFd<std::fs::File>);

impl Master {
    pub fn new(file: std::fs::File) -> io::Result<Master> {
        // SAFETY: fcntl on an open descriptor we own.
        unsafe {
            let fl = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
            if fl < 0 || libc::fcntl(file.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: a File owns its descriptor, which stays open and the
        // same for as long as the AsyncFd holds it.
        let fd = unsafe { AsyncFd::register(file) }.map_err(|e| e.into_parts().1)?;
        Ok(Master(fd))
    }

    /// What the command wrote; an error (EIO) once nothing holds the
    /// terminal any more.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.0.readable().await?;
            if let Ok(result) = ready.try_io(|f| f.get_ref().read(buf)) {
                return result;
            }
        }
    }

    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut ready = self.0.writable().await?;
            if let Ok(result) = ready.try_io(|f| f.get_ref().write(data)) {
                data = &data[result?..];
            }
        }
        Ok(())
    }

    pub fn resize(&self, rows: u16, cols: u16) {
        resize(self.0.get_ref(), rows, cols);
    }

    /// The signals `input` asks for, as a terminal's line discipline would
    /// send them to its foreground process group: SIGINT for its interrupt
    /// character (^C), SIGQUIT for its quit character (^\), while the
    /// terminal has signals on (a program in raw mode turns them off and
    /// reads the characters itself).
    pub fn signals_in(&self, input: &[u8]) -> Vec<i32> {
        // SAFETY: a zeroed termios is filled by tcgetattr before use.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr(3) on our open master with a valid termios.
        if unsafe { libc::tcgetattr(self.0.get_ref().as_raw_fd(), &mut t) } != 0
            || t.c_lflag & libc::ISIG == 0
        {
            return Vec::new();
        }
        let (intr, quit) = (t.c_cc[libc::VINTR], t.c_cc[libc::VQUIT]);
        (input.iter())
            .filter_map(|&b| match b {
                _ if b == intr => Some(libc::SIGINT),
                _ if b == quit => Some(libc::SIGQUIT),
                _ => None,
            })
            .collect()
    }
}

/// Makes the caller a session and group leader, so that the runtime and
/// its helpers can be killed at once (see `Interactive::kill`). Meant for
/// `pre_exec`: only async-signal-safe calls.
pub fn new_session() -> io::Result<()> {
    // SAFETY: setsid(2) is async-signal-safe.
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::last_os_error());
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

    #[tokio::test]
    async fn what_is_written_to_one_end_is_read_from_the_other_with_its_size() {
        let (master, slave) = open(33, 101).expect("a terminal");
        let master = Master::new(master).expect("async");
        let mut slave = std::fs::File::from(slave);
        slave.write_all(b"out\n").expect("write");
        let mut buf = [0u8; 16];
        let n = master.read(&mut buf).await.expect("read");
        assert_eq!(&buf[..n], b"out\r\n", "a terminal turns \\n into \\r\\n");
        master.write_all(b"in\n").await.expect("write");
        let n = slave.read(&mut buf).expect("read");
        assert_eq!(&buf[..n], b"in\n");
        let mut ws = winsize(0, 0);
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!((ws.ws_row, ws.ws_col), (33, 101));
        master.resize(40, 120);
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!((ws.ws_row, ws.ws_col), (40, 120));
        // ^C and ^\ while signals are on (the default); none in raw mode.
        assert_eq!(
            master.signals_in(b"a\x03b\x1c"),
            [libc::SIGINT, libc::SIGQUIT]
        );
        let mut raw: libc::termios = unsafe { std::mem::zeroed() };
        unsafe {
            libc::tcgetattr(slave.as_raw_fd(), &mut raw);
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &raw);
        }
        assert!(master.signals_in(b"\x03").is_empty());
    }
}
