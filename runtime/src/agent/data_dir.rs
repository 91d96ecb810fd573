//! A host's data dir: one host at a time (a lock whose file names the
//! holder), and the assignment it last received, cached so that a host
//! that restarts while the control plane is unreachable goes on running
//! what it last knew.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use atoll_sdk::cluster::Assignment;
use serde::{Deserialize, Serialize};

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

/// The assignment as cached: with the KV revision it was written at, so
/// that a host never goes back to an older one (caches written before
/// revisions were kept read as revision 0).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Cached {
    #[serde(default)]
    pub revision: u64,
    /// When the assignments bucket the revision counts in was made: a
    /// bucket made anew (NATS restored from nothing) counts from 1 again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(flatten)]
    pub assignment: Assignment,
}

pub(super) fn load_cached(path: &Path) -> Option<Cached> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes)
        .map_err(|e| tracing::warn!(path = %path.display(), error = %e, "ignoring a corrupt cached assignment"))
        .ok()
}

/// Makes the data dir the owner's only: it holds assignments, container
/// specs with their environment, images and the host's identity. With
/// user namespaces (`userns`), others may pass through it (0711, not
/// list it): a container's root is another host user that must reach its
/// bundle; what is inside keeps its own modes.
pub(super) fn restrict(dir: &Path, userns: bool) {
    let mode = if userns { 0o711 } else { 0o700 };
    if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot make the data dir owner-only");
    }
}

/// Replaces the cache atomically and durably: a power cut leaves the old
/// assignment or the new one, never a torn or empty file (the data is
/// synced before the rename, the directory after it).
pub(super) fn save_cached(path: &Path, cached: &Cached) {
    if let Err(e) = write_durably(path, cached) {
        tracing::warn!(path = %path.display(), error = %e, "cannot cache the assignment");
    }
}

fn write_durably(path: &Path, cached: &Cached) -> std::io::Result<()> {
    let tmp = path.with_extension("json.part");
    let bytes = serde_json::to_vec(cached).map_err(std::io::Error::other)?;
    // Assignments carry every instance's environment: owner only.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    std::fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
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
        let a = Cached {
            revision: 42,
            bucket: Some("1700000000000000000".into()),
            assignment: Assignment {
                host: "h1".into(),
                instances: vec![spec.clone()],
                epoch: 0,
            },
        };
        save_cached(&path, &a);
        let back = load_cached(&path).expect("cached");
        assert_eq!(back, a, "with its revision");
        assert_eq!(back.assignment.instances[0].id, "web-1");
        assert!(
            !dir.join("assignment.json.part").exists(),
            "written through a temporary file"
        );

        // A cache written before revisions were kept is the assignment
        // alone: it reads as revision 0.
        let old = Assignment {
            host: "h1".into(),
            instances: vec![spec],
            epoch: 0,
        };
        std::fs::write(&path, serde_json::to_vec(&old).expect("json")).expect("write");
        let back = load_cached(&path).expect("old cache");
        assert_eq!((back.revision, back.assignment), (0, old));

        std::fs::write(&path, b"{not json").expect("write");
        assert!(
            load_cached(&path).is_none(),
            "a corrupt cache is ignored, not fatal"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
