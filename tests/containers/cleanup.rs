//! Hosts' data dirs outside the cluster's temp dir, cleaned up through
//! `atoll host --cleanup` when the test ends (passed or failed): the hosts
//! are killed with -9 by then, so their containers, namespaces, overlays
//! and bridges would otherwise outlive the test.

use super::common::{atoll_bin, tempdir};
use std::path::PathBuf;
use std::process::Command;

pub struct HostDirs {
    dir: tempdir::Dir,
    names: Vec<String>,
}

impl HostDirs {
    pub fn new() -> HostDirs {
        HostDirs {
            dir: tempdir::Dir::new(),
            names: Vec::new(),
        }
    }

    pub fn data(&mut self, host: &str) -> PathBuf {
        self.names.push(host.to_string());
        self.dir.path().join(host)
    }
}

impl Drop for HostDirs {
    fn drop(&mut self) {
        for name in &self.names {
            let data = self.dir.path().join(name);
            let out = Command::new(atoll_bin())
                .args(["host", "--cleanup", "--data-dir"])
                .arg(&data)
                .output();
            if let Ok(o) = out
                && !o.status.success()
            {
                eprintln!(
                    "cleanup of host {name} failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
    }
}
