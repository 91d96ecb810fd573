//! A host's data dir: one host at a time (a lock whose file names the
//! holder), and the assignment it last received, cached so that a host
//! that restarts while the control plane is unreachable goes on running
//! what it last knew.

use std::path::Path;

use atoll_sdk::cluster::Assignment;

use super::HostError;

/// Holds an exclusive lock on `<data>/host.lock` for as long as the
/// returned file lives; the file says which process holds it.
pub(super) fn lock(dir: &Path) -> Result<std::fs::File, HostError> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    let path = dir.join("host.lock");
    let io_err = |source| HostError::DataDir {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err)?;
    // SAFETY: flock on a descriptor this function owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        return Err(HostError::Locked {
            path: dir.to_path_buf(),
            holder: text.trim().parse().ok(),
        });
    }
    file.set_len(0).map_err(io_err)?;
    file.rewind().map_err(io_err)?;
    write!(file, "{}", std::process::id()).map_err(io_err)?;
    Ok(file)
}

pub(super) fn load_cached(path: &Path) -> Option<Assignment> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes)
        .map_err(|e| tracing::warn!(path = %path.display(), error = %e, "ignoring a corrupt cached assignment"))
        .ok()
}

pub(super) fn save_cached(path: &Path, a: &Assignment) {
    let tmp = path.with_extension("json.part");
    let result = serde_json::to_vec(a)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "cannot cache the assignment");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::cluster::InstanceSpec;
    use std::path::PathBuf;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("atoll-agent-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn a_second_host_on_a_data_dir_is_refused_while_the_first_holds_it() {
        let dir = temp_dir("lock");
        let first = lock(&dir).expect("first");
        match lock(&dir) {
            Err(HostError::Locked { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id()), "names the holder")
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        assert!(lock(&dir).is_ok(), "free again once the first is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_cached_assignment_round_trips_and_a_corrupt_one_is_ignored() {
        let dir = temp_dir("cache");
        let path = dir.join("assignment.json");
        assert!(load_cached(&path).is_none(), "nothing cached yet");
        let spec: InstanceSpec = serde_json::from_value(serde_json::json!({
            "id": "web-1", "app": "shop", "service": "web", "revision": 3,
            "spec_hash": "h", "artifact": {"kind": "image", "ref": "registry.local/web:1"},
            "env": {}, "ports": [], "limits": {"memory": null, "cpus_milli": null},
            "reservations": {"memory": null, "cpus_milli": null}, "timeout_ms": 1000
        }))
        .expect("spec");
        let a = Assignment {
            host: "h1".into(),
            instances: vec![spec],
        };
        save_cached(&path, &a);
        let back = load_cached(&path).expect("cached");
        assert_eq!(back.instances.len(), 1);
        assert_eq!(back.instances[0].id, "web-1");
        assert!(
            !dir.join("assignment.json.part").exists(),
            "written through a temporary file"
        );

        std::fs::write(&path, b"{not json").expect("write");
        assert!(
            load_cached(&path).is_none(),
            "a corrupt cache is ignored, not fatal"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
