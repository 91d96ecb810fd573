//! A real registry for the container tests: Debian's `docker-registry` on
//! a free loopback port, its storage in the test's directory, killed by
//! PID on drop.

use super::common::{Proc, free_port, http_get, wait_until};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Registry {
    /// `127.0.0.1:<port>`, as written in image references.
    pub host: String,
    dir: PathBuf,
    _proc: Proc,
}

impl Registry {
    pub fn start(dir: &Path) -> Registry {
        let bin = "/usr/bin/docker-registry";
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: run scripts/setup (it installs Debian's docker-registry)"
        );
        let dir = dir.join("registry");
        std::fs::create_dir_all(&dir).expect("registry dir");
        let host = format!("127.0.0.1:{}", free_port());
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
                dir.join("data").display()
            ),
        )
        .expect("registry config");
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg(&config);
        let proc = Proc::spawn("registry", &mut cmd, &dir);
        wait_until("the registry to answer", Duration::from_secs(15), || {
            http_get(&host, "/v2/").ok().filter(|(s, _)| *s == 200)
        });
        Registry {
            host,
            dir,
            _proc: proc,
        }
    }

    /// Where the registry keeps a blob (distribution's filesystem layout),
    /// for tests that corrupt it.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir.join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}
