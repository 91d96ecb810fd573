//! A content-addressed blob store: `<root>/blobs/sha256/<hex>`, the layout
//! of an OCI image layout's blob directory.
//!
//! Layers, configs and manifests all go here, keyed by digest, and the store
//! is shared by every instance on the host (and by concurrent pulls, even
//! from several processes). That works without locks because a blob only
//! appears by an atomic rename of a fully written, hashed and fsynced temp
//! file from `<root>/tmp/` (same filesystem): readers see a complete blob or
//! none, and two writers of one digest write the same bytes. A temp file is
//! removed on every failure, including the write future being dropped (a
//! timeout), by a guard.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Largest blob stored unless configured otherwise.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 2 << 30;

/// Temp files older than this are left over from a crashed writer.
const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 3600);

/// Why a blob could not be stored or read.
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        digest: String,
        reason: &'static str,
    },
    #[error("blob {expected} failed verification: its content hashes to {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("blob {digest} is larger than the limit of {limit} bytes")]
    TooLarge { digest: String, limit: u64 },
    #[error("blob {digest} should be {expected} bytes but is {actual}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        /// Bytes read; when too many, reading stopped at the first chunk
        /// past `expected`.
        actual: u64,
    },
    #[error("blob {digest}: reading its content failed: {source}")]
    Read { digest: String, source: io::Error },
    #[error("blob {digest} is not in the store")]
    Missing { digest: String },
    #[error("blob store {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The store rooted at one directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
    max_blob_bytes: u64,
}

impl BlobStore {
    /// Opens (creating if needed) the store under `root`, and removes temp
    /// files that a crashed writer left more than a day ago.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        for dir in [root.join("blobs").join("sha256"), root.join("tmp")] {
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        let store = Self {
            root,
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
        };
        store.remove_stale_temps();
        Ok(store)
    }

    /// Sets the largest blob accepted.
    pub fn with_max_blob_bytes(mut self, limit: u64) -> Self {
        self.max_blob_bytes = limit;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn max_blob_bytes(&self) -> u64 {
        self.max_blob_bytes
    }

    /// Where the blob `digest` is (or would be) stored. The digest is
    /// checked first: it comes from manifests, and must not name a path.
    pub fn path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        let hex = sha256_hex(digest)?;
        Ok(self.root.join("blobs").join("sha256").join(hex))
    }

    /// Whether the blob is stored. Blobs are verified when written, so
    /// presence is enough; an invalid digest is never stored.
    pub fn has(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|path| path.is_file())
    }

    /// Reads a stored blob whole, refusing one above `max_bytes` (used for
    /// manifests and configs, which are small).
    pub async fn read(&self, digest: &str, max_bytes: u64) -> Result<Vec<u8>, StoreError> {
        let path = self.path(digest)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::Missing {
                    digest: digest.to_owned(),
                });
            }
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let mut bytes = Vec::new();
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .await
            .map_err(io_err(&path))?;
        if bytes.len() as u64 > max_bytes {
            return Err(StoreError::TooLarge {
                digest: digest.to_owned(),
                limit: max_bytes,
            });
        }
        Ok(bytes)
    }

    /// Stores bytes held in memory under `digest`, verifying it.
    pub async fn put_bytes(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        self.put_stream(digest, Some(bytes.len() as u64), bytes)
            .await
    }

    /// Streams a blob into the store, hashing as it writes, and returns its
    /// path. Fails, leaving nothing behind, when the content does not hash
    /// to `digest`, is not `expected_size` bytes (when given), exceeds the
    /// store's limit, or the reader fails. If the blob is already stored the
    /// reader is not read at all.
    pub async fn put_stream<R: AsyncRead + Unpin>(
        &self,
        digest: &str,
        expected_size: Option<u64>,
        mut reader: R,
    ) -> Result<PathBuf, StoreError> {
        let dest = self.path(digest)?;
        if dest.is_file() {
            return Ok(dest);
        }
        let too_large = || StoreError::TooLarge {
            digest: digest.to_owned(),
            limit: self.max_blob_bytes,
        };
        if expected_size.is_some_and(|size| size > self.max_blob_bytes) {
            return Err(too_large());
        }
        let temp = TempFile::new(self.root.join("tmp").join(format!(
            "{}.{:016x}",
            sha256_hex(digest)?,
            rand::random::<u64>()
        )));
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp.path)
            .await
            .map_err(io_err(&temp.path))?;

        let mut hasher = Sha256::new();
        let mut written: u64 = 0;
        // Stop at the first chunk past the limit, so that a hostile registry
        // cannot fill the disk before the digest check would catch it.
        let limit = expected_size.unwrap_or(self.max_blob_bytes);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|source| StoreError::Read {
                    digest: digest.to_owned(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > limit {
                return Err(match expected_size {
                    Some(expected) => StoreError::SizeMismatch {
                        digest: digest.to_owned(),
                        expected,
                        actual: written,
                    },
                    None => too_large(),
                });
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .await
                .map_err(io_err(&temp.path))?;
        }
        if let Some(expected) = expected_size.filter(|expected| *expected != written) {
            return Err(StoreError::SizeMismatch {
                digest: digest.to_owned(),
                expected,
                actual: written,
            });
        }
        let actual = format!("sha256:{}", hex(&hasher.finalize()));
        if actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.to_owned(),
                actual,
            });
        }
        // Read-only: a stored blob is immutable, and the unpacker and the
        // Wasm loader only ever read it.
        file.set_permissions(std::fs::Permissions::from_mode(0o444))
            .await
            .map_err(io_err(&temp.path))?;
        // fsync before the rename, so that after a crash a blob under its
        // digest never has content other than what hashed to it.
        file.sync_all().await.map_err(io_err(&temp.path))?;
        drop(file);
        tokio::fs::rename(&temp.path, &dest)
            .await
            .map_err(io_err(&dest))?;
        temp.keep();
        if let Some(dir) = dest.parent() {
            // Best effort: makes the rename itself durable.
            if let Ok(dir) = tokio::fs::File::open(dir).await {
                let _ = dir.sync_all().await;
            }
        }
        Ok(dest)
    }

    fn remove_stale_temps(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let modified = entry.metadata().and_then(|meta| meta.modified());
            let stale = modified
                .ok()
                .and_then(|time| now.duration_since(time).ok())
                .is_some_and(|age| age > STALE_TEMP_AGE);
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// The hex part of a `sha256:<64 lowercase hex>` digest, the only form
/// stored: it is what registries use, and it is safe as a file name.
pub fn sha256_hex(digest: &str) -> Result<&str, StoreError> {
    let invalid = |reason| StoreError::InvalidDigest {
        digest: digest.to_owned(),
        reason,
    };
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(invalid("expected algorithm:hex"));
    };
    if algorithm != "sha256" {
        return Err(invalid("only sha256 digests are supported"));
    }
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid("a sha256 digest is 64 lowercase hex digits"));
    }
    Ok(hex)
}

/// The `sha256:<hex>` digest of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Removes its file when dropped unless kept: covers early returns and a
/// cancelled future alike.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    fn new(path: PathBuf) -> Self {
        Self { path, keep: false }
    }

    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests;
