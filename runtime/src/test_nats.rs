//! A real `nats-server` with JetStream for unit tests: started on a free
//! port with its own store, killed when dropped. A missing binary is a
//! failure, not a skip (`scripts/setup` installs it).

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct TestNats {
    child: Child,
    dir: PathBuf,
    pub url: String,
}

impl TestNats {
    pub(crate) fn start(name: &str) -> TestNats {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("atoll-nats-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be installed (scripts/setup)");
        let nats = TestNats {
            child,
            dir,
            url: format!("nats://127.0.0.1:{port}"),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        // NATS greets every client with INFO: a greeting, not just a
        // connection, means it serves (a socket may connect to itself).
        while !greets(addr) {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nats
    }
}

fn greets(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut greeting = [0u8; 4];
    s.read_exact(&mut greeting).is_ok() && &greeting == b"INFO"
}

impl Drop for TestNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
