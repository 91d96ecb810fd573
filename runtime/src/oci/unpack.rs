//! Safe unpacking of OCI image layers into a root filesystem.
//!
//! Layers are applied in order following the image spec's "Applying
//! Changesets" (whiteouts, opaque directories, later layers replacing earlier
//! files), while treating every blob as hostile: no entry may write outside
//! the root, through a symlink, or past the size and entry limits, and
//! devices are refused. Work happens in a private `<dest>.partial-<random>`
//! directory that is renamed to `dest` only when every layer applied, so a
//! failure never leaves a half-written root behind.
//!
//! Spec: <https://github.com/opencontainers/image-spec/blob/main/layer.md>.
//! How parents are checked is explained in `paths`; how the tar stream is
//! bounded in `stream`.

mod apply;
mod paths;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Bounds on what one image may unpack to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Regular file data written, summed over all layers.
    pub max_total_bytes: u64,
    /// Tar entries read, summed over all layers (whiteouts included).
    pub max_entries: u64,
    /// Longest entry name or link target, in bytes.
    pub max_path_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_total_bytes: 4 << 30,
            max_entries: 200_000,
            max_path_len: 4096,
        }
    }
}

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

/// Maps a layer media type to its compression.
pub fn compression_for(media_type: &str) -> Result<Compression, UnpackError> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Ok(Compression::None),
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
        other if other.ends_with("+zstd") => Err(UnpackError::UnsupportedMediaType {
            media_type: other.to_owned(),
            reason: "zstd-compressed layers are not supported; push the image with gzip layers",
        }),
        other => Err(UnpackError::UnsupportedMediaType {
            media_type: other.to_owned(),
            reason: "not a known layer media type",
        }),
    }
}

/// One layer blob to apply.
pub struct Layer<'a> {
    /// Shown in errors: the layer's index or digest.
    pub name: String,
    pub compression: Compression,
    pub reader: Box<dyn Read + 'a>,
}

/// What an unpack wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries read, over all layers.
    pub entries: u64,
    /// Regular file bytes written, over all layers.
    pub bytes: u64,
}

/// Why an unpack failed. Layer errors name the layer and the entry path as
/// written in the archive.
#[derive(thiserror::Error, Debug)]
pub enum UnpackError {
    #[error("unsupported layer media type {media_type:?}: {reason}")]
    UnsupportedMediaType {
        media_type: String,
        reason: &'static str,
    },
    #[error("unpack destination {} already exists", dest.display())]
    DestExists { dest: PathBuf },
    #[error("unpack destination {}: {source}", path.display())]
    Dest { path: PathBuf, source: io::Error },
    #[error("layer {layer}: entry {} escapes the root (absolute or has ..)", path.display())]
    PathEscape { layer: String, path: PathBuf },
    #[error("layer {layer}: entry {}: {reason}", path.display())]
    InvalidPath {
        layer: String,
        path: PathBuf,
        reason: &'static str,
    },
    #[error("layer {layer}: entry {} goes through the symlink {} in the root", path.display(), via.display())]
    SymlinkEscape {
        layer: String,
        path: PathBuf,
        via: PathBuf,
    },
    #[error("layer {layer}: entry {} goes through {}, which is not a directory", path.display(), parent.display())]
    ParentNotDir {
        layer: String,
        path: PathBuf,
        parent: PathBuf,
    },
    #[error("layer {layer}: hard link {} must point at a regular file inside the root, not {}", path.display(), target.display())]
    HardlinkOutside {
        layer: String,
        path: PathBuf,
        target: PathBuf,
    },
    #[error("layer {layer}: entry {} takes the unpacked size past the limit of {limit} bytes", path.display())]
    TooLarge {
        layer: String,
        path: PathBuf,
        limit: u64,
    },
    #[error("layer {layer}: more than {limit} entries in the image")]
    TooManyEntries { layer: String, limit: u64 },
    #[error("layer {layer}: entry {}: {kind} entries are not supported", path.display())]
    Unsupported {
        layer: String,
        path: PathBuf,
        kind: String,
    },
    #[error("layer {layer}: entry {}: bad header: {message}", path.display())]
    BadHeader {
        layer: String,
        path: PathBuf,
        message: String,
    },
    #[error("layer {layer}: cannot decompress: {message}")]
    Compression { layer: String, message: String },
    #[error("layer {layer}: malformed tar after entry {}: {message}", after.display())]
    Malformed {
        layer: String,
        after: PathBuf,
        message: String,
    },
    #[error("layer {layer}: entry {}: {source}", path.display())]
    Io {
        layer: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{cause}; removing the partial directory {} failed too: {source}", partial.display())]
    Cleanup {
        cause: Box<UnpackError>,
        partial: PathBuf,
        source: io::Error,
    },
}

/// Unpacks `layers` (in order, each a readable blob with its name for errors
/// and its compression) into a fresh directory `dest` that must not exist
/// yet, and whose parent must. Everything is written under
/// `dest.with_extension("partial-<random>")`, renamed to `dest` only when all
/// layers succeeded; on any error the partial directory is removed.
///
/// Callers serialize unpacks of the same `dest` (the image store does, per
/// digest): a `dest` created by someone else between the check and the final
/// rename would be replaced if it is an empty directory.
pub fn unpack_layers(
    layers: Vec<Layer<'_>>,
    dest: &Path,
    limits: &Limits,
) -> Result<UnpackStats, UnpackError> {
    match fs::symlink_metadata(dest) {
        Ok(_) => {
            return Err(UnpackError::DestExists {
                dest: dest.to_owned(),
            });
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(UnpackError::Dest {
                path: dest.to_owned(),
                source,
            });
        }
    }
    let partial = dest.with_extension(format!("partial-{:016x}", rand::random::<u64>()));
    // 0700 until the end: other host users must not see or touch the tree
    // while it is incomplete.
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&partial)
        .map_err(|source| UnpackError::Dest {
            path: partial.clone(),
            source,
        })?;

    let result = unpack_into(layers, &partial, limits).and_then(|stats| {
        fs::rename(&partial, dest).map_err(|source| UnpackError::Dest {
            path: dest.to_owned(),
            source,
        })?;
        Ok(stats)
    });
    result.map_err(|cause| match fs::remove_dir_all(&partial) {
        Ok(()) => cause,
        Err(err) if err.kind() == io::ErrorKind::NotFound => cause,
        Err(source) => UnpackError::Cleanup {
            cause: Box::new(cause),
            partial,
            source,
        },
    })
}

fn unpack_into(
    layers: Vec<Layer<'_>>,
    root: &Path,
    limits: &Limits,
) -> Result<UnpackStats, UnpackError> {
    let mut applier = apply::Applier::new(root, limits, paths::running_as_root());
    for layer in layers {
        applier.apply_layer(layer)?;
    }
    let (stats, dir_modes) = applier.finish();
    set_dir_modes(root, dir_modes)?;
    Ok(stats)
}

/// Applies directory modes recorded during the unpack. They are deferred so
/// that a read-only directory in a lower layer does not stop a later layer
/// (or an unprivileged unpack) from writing into it, and applied deepest
/// first so that a parent losing its search bit does not hide its children.
fn set_dir_modes(root: &Path, modes: BTreeMap<PathBuf, u32>) -> Result<(), UnpackError> {
    let mut modes: Vec<(PathBuf, u32)> = modes.into_iter().collect();
    modes.sort_by_key(|(rel, _)| std::cmp::Reverse(rel.components().count()));
    let root_mode = match modes.last() {
        Some((rel, mode)) if rel.as_os_str().is_empty() => *mode,
        _ => 0o755,
    };
    for (rel, mode) in modes.iter().filter(|(rel, _)| !rel.as_os_str().is_empty()) {
        let abs = root.join(rel);
        // A recorded directory may have been replaced by a later layer.
        let is_dir = fs::symlink_metadata(&abs).is_ok_and(|meta| meta.is_dir());
        if is_dir {
            fs::set_permissions(&abs, fs::Permissions::from_mode(*mode))
                .map_err(|source| UnpackError::Dest { path: abs, source })?;
        }
    }
    fs::set_permissions(root, fs::Permissions::from_mode(root_mode)).map_err(|source| {
        UnpackError::Dest {
            path: root.to_owned(),
            source,
        }
    })
}
