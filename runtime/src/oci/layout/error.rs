//! The one error type of image loading. Every variant names the source
//! (the directory or archive being read) and, where there is one, the
//! blob or file at fault, so `atoll image load` can say which part of a
//! handed-over disk is bad. Store errors about a blob's content are
//! turned into this module's own digest and size variants: for a load,
//! the blob is the archive's fault, not the store's.

use std::io;
use std::path::{Path, PathBuf};

use super::{CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION};
use crate::oci::kind::KindError;
use crate::oci::platform::PlatformError;
use crate::oci::store::StoreError;

/// Why a layout or archive could not be read or imported. Each names the
/// source, and the blob or file at fault.
#[derive(thiserror::Error, Debug)]
pub enum LayoutError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{}: neither an OCI image layout (no index.json) nor a docker save archive (no manifest.json)",
        path.display()
    )]
    NotAnImage { path: PathBuf },
    #[error(
        "{}: not a readable tar archive ({source}); expected an OCI image layout (directory or tar, gzipped or not) or a docker save archive",
        path.display()
    )]
    NotAnArchive { path: PathBuf, source: io::Error },
    #[error("{}: {file} is not valid: {message}", path.display())]
    BadFile {
        path: PathBuf,
        file: String,
        message: String,
    },
    #[error("{}: refusing {name:?}: it points outside the archive", path.display())]
    UnsafePath { path: PathBuf, name: String },
    #[error("{}: {what} is missing", path.display())]
    Missing { path: PathBuf, what: String },
    #[error("{}: blob {digest} failed verification: its content hashes to {actual}", path.display())]
    DigestMismatch {
        path: PathBuf,
        digest: String,
        actual: String,
    },
    #[error("{}: blob {digest} is {actual} bytes, but {expected} are expected", path.display())]
    SizeMismatch {
        path: PathBuf,
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{}: layer {file} hashes to {actual}, but the image config lists {expected}",
        path.display()
    )]
    DiffIdMismatch {
        path: PathBuf,
        file: String,
        actual: String,
        expected: String,
    },
    #[error("{}: the blob store failed: {source}", path.display())]
    Store { path: PathBuf, source: StoreError },
    #[error("{}: invalid image reference {reference:?}: {message}", path.display())]
    BadReference {
        path: PathBuf,
        reference: String,
        message: String,
    },
    #[error(
        "{}: image {digest} has no name (no {CONTAINERD_NAME_ANNOTATION} or full {REF_NAME_ANNOTATION} annotation, no RepoTags); give one with --tag",
        path.display()
    )]
    Unnamed { path: PathBuf, digest: String },
    #[error("{}: --tag names one image, but this holds {count}", path.display())]
    TagNeedsOneImage { path: PathBuf, count: usize },
    #[error("{}: {message}", path.display())]
    Unsupported { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Platform {
        path: PathBuf,
        source: Box<PlatformError>,
    },
    #[error("{}: image {digest} cannot be run: {source}", path.display())]
    Kind {
        path: PathBuf,
        digest: String,
        source: KindError,
    },
}

impl LayoutError {
    pub(super) fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(super) fn bad_file(path: &Path, file: impl Into<String>, message: impl ToString) -> Self {
        Self::BadFile {
            path: path.to_owned(),
            file: file.into(),
            message: message.to_string(),
        }
    }

    pub(super) fn missing(path: &Path, what: impl Into<String>) -> Self {
        Self::Missing {
            path: path.to_owned(),
            what: what.into(),
        }
    }

    pub(super) fn unsafe_path(path: &Path, name: impl Into<String>) -> Self {
        Self::UnsafePath {
            path: path.to_owned(),
            name: name.into(),
        }
    }

    pub(super) fn store(path: &Path, err: StoreError) -> Self {
        let path = path.to_owned();
        match err {
            StoreError::DigestMismatch { expected, actual } => Self::DigestMismatch {
                path,
                digest: expected,
                actual,
            },
            StoreError::SizeMismatch {
                digest,
                expected,
                actual,
            } => Self::SizeMismatch {
                path,
                digest,
                expected,
                actual,
            },
            source => Self::Store { path, source },
        }
    }
}
