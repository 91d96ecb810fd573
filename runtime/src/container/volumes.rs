//! A container's volumes: named ones, kept per app on the host
//! (`<data>/volumes/<app>/<name>`) and shared by the app's containers
//! there; anonymous ones, the instance's own, in its bundle
//! (`volumes/<n>`, removed with it); and one for each path the image
//! declares in its `Volumes` that the service mounts nothing at.
//!
//! A volume is made once, filled from the image ([`copy_up`]) unless
//! `nocopy`, in a staging directory that is moved into place only when
//! complete: a crash leaves no half-filled volume, and two containers
//! making the same volume at once end up with one, untouched afterwards.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use atoll_sdk::cluster::InstanceSpec;

use super::copy_up;
use super::inside::resolve;

/// Where each volume of an instance comes from and goes.
pub(crate) struct Planned {
    /// The host directory.
    pub dir: PathBuf,
    /// Its path in the container.
    pub target: String,
    pub read_only: bool,
    /// Filled from the image when made.
    pub fill: bool,
}

/// The volumes of `spec` (in order: the service's, then the image's own
/// that nothing else is mounted at).
pub(crate) fn plan(
    volumes_root: &Path,
    bundle: &Path,
    spec: &InstanceSpec,
    image_volumes: &[String],
) -> Vec<Planned> {
    let mut out = Vec::new();
    for (i, v) in spec.volumes.iter().enumerate() {
        let dir = match &v.name {
            Some(name) => volumes_root.join(&spec.app).join(name),
            None => bundle.join("volumes").join(i.to_string()),
        };
        out.push(Planned {
            dir,
            target: v.target.clone(),
            read_only: v.read_only,
            fill: !v.nocopy,
        });
    }
    let taken = |t: &str| {
        spec.volumes.iter().any(|v| v.target == t)
            || spec.container.tmpfs.iter().any(|m| m.target == t)
    };
    for (i, raw) in image_volumes.iter().enumerate() {
        let target = normalize(raw);
        if target == "/" || taken(&target) {
            continue;
        }
        out.push(Planned {
            dir: bundle.join("volumes").join(format!("image-{i}")),
            target,
            read_only: false,
            fill: true,
        });
    }
    out
}

/// `/data/` → `/data`; a relative path is taken from the root, as Docker.
fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// Makes the volume's directory if it does not exist yet, filled from the
/// image root `image` at `target` when `fill` and the image has a
/// directory there. An existing volume is left as it is.
pub(crate) fn make(v: &Planned, image: &Path, instance: &str) -> io::Result<()> {
    if v.dir.exists() {
        return Ok(());
    }
    let parent = v.dir.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent)?;
    let name = v
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = parent.join(format!(".{name}.new-{instance}"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging)?;
    let source = resolve(image, &v.target).filter(|p| p.is_dir());
    let filled = match source {
        Some(src) if v.fill => copy_up::copy_into(&src, &staging),
        _ => Ok(()),
    };
    let moved = filled.and_then(|()| rename_no_replace(&staging, &v.dir));
    match moved {
        Ok(()) => Ok(()),
        // Another container made it first: theirs is the volume.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// `rename(2)` that fails with `EEXIST` rather than replace an (empty)
/// directory another container made meanwhile.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: two valid C paths relative to the working directory.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("atoll-volumes-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn planned(dir: &Path, target: &str, fill: bool) -> Planned {
        Planned {
            dir: dir.to_path_buf(),
            target: target.into(),
            read_only: false,
            fill,
        }
    }

    #[test]
    fn a_new_volume_is_filled_once_and_never_touched_again() {
        let base = temp("once");
        let image = base.join("image");
        // The image's /data is reached through a link, as images often do.
        std::fs::create_dir_all(image.join("srv/data")).expect("dirs");
        std::os::unix::fs::symlink("/srv/data", image.join("data")).expect("link");
        std::fs::write(image.join("srv/data/seed"), b"from the image").expect("seed");
        std::os::unix::fs::lchown(image.join("srv/data"), Some(999), Some(999)).expect("chown");
        let v = planned(&base.join("volumes/shop/db"), "/data", true);

        make(&v, &image, "i1").expect("make");
        assert_eq!(
            std::fs::read(v.dir.join("seed")).expect("seed"),
            b"from the image"
        );
        assert_eq!(std::fs::metadata(&v.dir).expect("dir").uid(), 999);

        // Data written since stays; the image's file is not put back.
        std::fs::remove_file(v.dir.join("seed")).expect("rm");
        std::fs::write(v.dir.join("mine"), b"kept").expect("write");
        make(&v, &image, "i2").expect("again");
        assert!(!v.dir.join("seed").exists());
        assert_eq!(std::fs::read(v.dir.join("mine")).expect("mine"), b"kept");
        let leftovers = std::fs::read_dir(v.dir.parent().expect("parent"))
            .expect("list")
            .count();
        assert_eq!(leftovers, 1, "no staging directory left behind");
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn nocopy_and_a_path_the_image_lacks_give_an_empty_volume() {
        let base = temp("empty");
        let image = base.join("image");
        std::fs::create_dir_all(image.join("data")).expect("dirs");
        std::fs::write(image.join("data/seed"), b"x").expect("seed");
        let nocopy = planned(&base.join("v1"), "/data", false);
        make(&nocopy, &image, "i1").expect("make");
        assert_eq!(std::fs::read_dir(&nocopy.dir).expect("list").count(), 0);
        let missing = planned(&base.join("v2"), "/nowhere", true);
        make(&missing, &image, "i1").expect("make");
        assert!(missing.dir.is_dir());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_volume_made_meanwhile_by_another_container_wins() {
        let base = temp("race");
        let image = base.join("image");
        std::fs::create_dir_all(&image).expect("image");
        let dir = base.join("v");
        std::fs::create_dir_all(base.join(".v.new-i1")).expect("staging");
        std::fs::create_dir(&dir).expect("theirs");
        let err = rename_no_replace(&base.join(".v.new-i1"), &dir).expect_err("no replace");
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn the_images_own_volumes_fill_in_where_the_service_mounts_nothing() {
        let spec: InstanceSpec = serde_json::from_value(serde_json::json!({
            "id": "web-1", "app": "shop", "service": "web", "revision": 1,
            "spec_hash": "h", "artifact": {"kind": "image", "ref": "r"},
            "env": {}, "ports": [], "limits": {"memory": null, "cpus_milli": null},
            "reservations": {"memory": null, "cpus_milli": null}, "timeout_ms": 1000,
            "volumes": [{"name": "db", "target": "/data", "read_only": false},
                        {"name": null, "target": "/cache", "read_only": false, "nocopy": true}],
            "container": {"tmpfs": [{"target": "/run"}]}
        }))
        .expect("spec");
        let images = [
            "/data".to_string(),
            "/logs/".into(),
            "/run".into(),
            "tmp".into(),
        ];
        let plan = plan(Path::new("/v"), Path::new("/b"), &spec, &images);
        let got: Vec<(String, String, bool)> = plan
            .iter()
            .map(|p| (p.dir.display().to_string(), p.target.clone(), p.fill))
            .collect();
        assert_eq!(
            got,
            [
                ("/v/shop/db".into(), "/data".into(), true),
                ("/b/volumes/1".into(), "/cache".into(), false),
                ("/b/volumes/image-1".into(), "/logs".into(), true),
                ("/b/volumes/image-3".into(), "/tmp".into(), true),
            ]
        );
    }
}
