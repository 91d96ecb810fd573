//! Root filesystems: each image is unpacked once per host (by manifest
//! digest) and shared read-only; each container gets an overlay on top of
//! it, so replicas start without copying and write only to their own layer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::oci::pull::PulledImage;
use crate::oci::store::{BlobStore, sha256_hex};
use crate::oci::unpack::{self, Layer, Limits};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("image {reference}: {source}")]
    Unpack {
        reference: String,
        source: unpack::UnpackError,
    },
    #[error("image {reference}: layer {digest} is missing from the blob store")]
    MissingLayer { reference: String, digest: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("mounting the container's root filesystem: {0}")]
    Mount(String),
}

/// Unpacked images under `<data>/images/<manifest hex>/rootfs`.
#[derive(Clone)]
pub struct Images {
    dir: PathBuf,
    store: BlobStore,
    /// One lock per image: concurrent replicas unpack it once.
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Images {
    pub fn new(dir: PathBuf, store: BlobStore) -> Images {
        Images {
            dir,
            store,
            locks: Arc::default(),
        }
    }

    /// The unpacked root of `image`, unpacking it first if needed.
    pub async fn rootfs(&self, image: &PulledImage) -> Result<PathBuf, RootfsError> {
        let hex = sha256_hex(&image.manifest_digest)
            .map_err(|e| RootfsError::Mount(e.to_string()))?
            .to_string();
        let dest = self.dir.join(&hex).join("rootfs");
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(hex.clone()).or_default().clone()
        };
        let _held = lock.lock().await;
        if dest.is_dir() {
            return Ok(dest);
        }
        let parent = self.dir.join(&hex);
        std::fs::create_dir_all(&parent).map_err(|source| RootfsError::Io {
            what: format!("creating {}", parent.display()),
            source,
        })?;
        let mut paths = Vec::new();
        for (digest, media_type) in &image.layers {
            let path = self
                .store
                .path(digest)
                .ok()
                .filter(|p| p.is_file())
                .ok_or_else(|| RootfsError::MissingLayer {
                    reference: image.reference.clone(),
                    digest: digest.clone(),
                })?;
            paths.push((digest.clone(), media_type.clone(), path));
        }
        let reference = image.reference.clone();
        let target = dest.clone();
        // Unpacking is blocking file I/O: off the async threads.
        tokio::task::spawn_blocking(move || {
            let mut layers = Vec::new();
            for (digest, media_type, path) in paths {
                let compression = unpack::compression_for(&media_type)?;
                let file =
                    std::fs::File::open(&path).map_err(|source| unpack::UnpackError::Dest {
                        path: path.clone(),
                        source,
                    })?;
                layers.push(Layer {
                    name: digest,
                    compression,
                    reader: Box::new(std::io::BufReader::new(file)),
                });
            }
            unpack::unpack_layers(layers, &target, &Limits::default())
        })
        .await
        .map_err(|e| RootfsError::Mount(format!("unpack task failed: {e}")))?
        .map_err(|source| RootfsError::Unpack { reference, source })?;
        Ok(dest)
    }
}

/// Mounts an overlay of `lower` at `<bundle>/rootfs`, with the container's
/// writable layer in `<bundle>/upper`. Idempotent.
pub fn mount_overlay(lower: &Path, bundle: &Path) -> Result<PathBuf, RootfsError> {
    let (upper, work, merged) = (
        bundle.join("upper"),
        bundle.join("work"),
        bundle.join("rootfs"),
    );
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d).map_err(|source| RootfsError::Io {
            what: format!("creating {}", d.display()),
            source,
        })?;
    }
    if is_mountpoint(&merged) {
        return Ok(merged);
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    mount("overlay", &merged, "overlay", 0, &opts)?;
    Ok(merged)
}

/// Unmounts the container's root (lazily: a process still inside keeps
/// it alive until it exits) and removes the bundle directory.
pub fn remove_bundle(bundle: &Path) {
    // The overlay first, then what it and the container were made of:
    // the idmapped image and volumes of a user namespace, the secrets.
    let maps = (std::fs::read_dir(bundle.join("maps"))
        .into_iter()
        .flatten()
        .flatten())
    .map(|e| e.path());
    let mounted = [bundle.join("rootfs"), bundle.join("lower")]
        .into_iter()
        .chain(maps)
        .chain([secrets_dir(bundle)]);
    for m in mounted {
        if is_mountpoint(&m) {
            umount(&m);
        }
    }
    if let Err(e) = std::fs::remove_dir_all(bundle)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(bundle = %bundle.display(), error = %e, "could not remove container bundle");
    }
}

/// Where a container's secrets and configs live: a tmpfs of its own in
/// its bundle (`secret_files.rs`), unmounted with the bundle.
pub(crate) fn secrets_dir(bundle: &Path) -> PathBuf {
    bundle.join("secrets")
}

/// Whether `path` is a mount point (per /proc/self/mountinfo).
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(canon) = path.canonicalize() else {
        return false;
    };
    let wanted = canon.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|info| {
        info.lines()
            .filter_map(|l| l.split(' ').nth(4))
            .any(|mp| unescape_mountinfo(mp) == wanted)
    })
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

pub(crate) fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<(), RootfsError> {
    use std::ffi::CString;
    let c = |s: &str| CString::new(s).map_err(|e| RootfsError::Mount(e.to_string()));
    let (src, tgt, fs, dat) = (
        c(source)?,
        c(&target.to_string_lossy())?,
        c(fstype)?,
        c(data)?,
    );
    // SAFETY: all four are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fs.as_ptr(),
            flags,
            dat.as_ptr().cast(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(RootfsError::Mount(format!(
            "{fstype} on {}: {err}",
            target.display()
        )));
    }
    Ok(())
}

pub(crate) fn umount(target: &Path) {
    let Ok(tgt) = std::ffi::CString::new(target.to_string_lossy().as_bytes()) else {
        return;
    };
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::umount2(tgt.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        tracing::warn!(target = %target.display(), error = %err, "unmount failed");
    }
}
