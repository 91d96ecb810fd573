//! A local `nats-server` with JetStream, run as a child of `atoll up` when
//! no NATS answers at the requested address.

use anyhow::{Context, bail};
use atoll_sdk::nats::ServerAddr;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsChild {
    child: Child,
}

/// The socket address of a NATS URL.
pub fn socket_addr(url: &ServerAddr) -> anyhow::Result<SocketAddr> {
    (url.host(), url.port())
        .to_socket_addrs()
        .with_context(|| format!("--nats {}: not a host:port", url.as_url_str()))?
        .next()
        .with_context(|| format!("--nats {}: no address", url.as_url_str()))
}

/// Whether a NATS server answers at `addr`: it greets every client with
/// `INFO`. (A bare connection is not proof: a socket polling a free port in
/// the ephemeral range can connect to itself.)
pub fn answers(addr: SocketAddr) -> bool {
    use std::io::Read;
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    let mut greeting = [0u8; 4];
    s.set_read_timeout(Some(Duration::from_millis(500))).is_ok()
        && s.read_exact(&mut greeting).is_ok()
        && &greeting == b"INFO"
}

impl NatsChild {
    /// Starts nats-server on `addr` with its JetStream data under `dir`, and
    /// waits (bounded) until it accepts connections.
    pub fn start(
        addr: SocketAddr,
        dir: &Path,
        log: &Path,
        config: Option<&Path>,
    ) -> anyhow::Result<NatsChild> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = Command::new("nats-server");
        // SAFETY: prctl is async-signal-safe and touches only the child.
        // It dies with this process (kill -9 included) instead of being
        // left running, holding the port and the store.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .args([
                "-js",
                "-a",
                &addr.ip().to_string(),
                "-p",
                &addr.port().to_string(),
                "-sd",
            ])
            .arg(dir)
            .args(
                config
                    .map(|c| ["-c".as_ref(), c.as_os_str()])
                    .into_iter()
                    .flatten(),
            )
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "no NATS answers at {addr} and nats-server is not installed: install it (Debian/Ubuntu: `apt-get install nats-server`, or run scripts/setup) or pass --nats URL"
            ),
            Err(e) => bail!("cannot start nats-server: {e}"),
        };
        let mut me = NatsChild { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers(addr) {
            if let Ok(Some(status)) = me.child.try_wait() {
                bail!("nats-server exited ({status}); see {}", log.display());
            }
            if Instant::now() > deadline {
                bail!(
                    "nats-server did not accept connections within 10s; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(me)
    }

    /// SIGTERM, then SIGKILL if it lingers.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
