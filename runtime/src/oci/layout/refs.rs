//! The store's local reference index: which manifest a reference names on
//! this host without asking a registry, for images loaded from archives
//! (and, in a second index, for images pulled, as a fallback for when the
//! registry is out of reach).
//!
//! One small JSON file per reference, `<store>/refs/<sha256 hex of the
//! normalized reference>`, holding `{reference, manifest_digest}`. Files
//! appear by an atomic rename from the store's `tmp/`, so a reader sees a
//! whole entry or none, and loading the same reference again replaces it.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use oci_client::Reference;
use serde::{Deserialize, Serialize};

use crate::oci::store::{BlobStore, sha256_digest};

/// The manifest a reference resolves to locally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefEntry {
    /// Normalized: `docker.io/library/app:1`, as [`normalize_reference`]
    /// makes it.
    pub reference: String,
    pub manifest_digest: String,
}

/// The reference index of one blob store.
#[derive(Clone, Debug)]
pub struct RefIndex {
    dir: PathBuf,
    tmp: PathBuf,
}

/// The normalized form of an image reference: registry, repository and tag
/// spelled out (`app` → `docker.io/library/app:latest`), so that the names
/// a user writes and the names an archive carries meet.
pub fn normalize_reference(reference: &str) -> Result<String, oci_client::ParseError> {
    let parsed: Reference = reference.parse()?;
    Ok(parsed.whole())
}

impl RefIndex {
    pub fn new(store: &BlobStore) -> Self {
        Self {
            dir: store.root().join("refs"),
            tmp: store.root().join("tmp"),
        }
    }

    /// What registry pulls last resolved each reference to
    /// (`<store>/pulled`): not consulted before a registry, as loaded
    /// images are, but when the registry cannot be reached.
    pub fn pulled(store: &BlobStore) -> Self {
        Self {
            dir: store.root().join("pulled"),
            tmp: store.root().join("tmp"),
        }
    }

    /// `<store>/refs`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, normalized: &str) -> PathBuf {
        let digest = sha256_digest(normalized.as_bytes());
        let hex = digest.strip_prefix("sha256:").unwrap_or(&digest);
        self.dir.join(hex)
    }

    /// The entry for a normalized reference, if one was recorded.
    pub async fn get(&self, normalized: &str) -> io::Result<Option<RefEntry>> {
        let bytes = match tokio::fs::read(self.path(normalized)).await {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let entry: RefEntry = serde_json::from_slice(&bytes)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        Ok(Some(entry).filter(|entry| entry.reference == normalized))
    }

    /// Records (or replaces) an entry; `entry.reference` must be
    /// normalized.
    pub fn set(&self, entry: &RefEntry) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::create_dir_all(&self.tmp)?;
        let dest = self.path(&entry.reference);
        let temp = self.tmp.join(format!(
            "ref.{}.{:016x}",
            dest.file_name().and_then(|n| n.to_str()).unwrap_or("x"),
            rand::random::<u64>()
        ));
        let write = || -> io::Result<()> {
            let mut file = std::fs::File::create_new(&temp)?;
            file.write_all(&serde_json::to_vec_pretty(entry)?)?;
            file.sync_all()?;
            std::fs::rename(&temp, &dest)
        };
        let result = write();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    /// Every entry, sorted by reference. Unreadable entries are skipped.
    pub fn list(&self) -> io::Result<Vec<RefEntry>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let parsed = std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<RefEntry>(&bytes).ok());
            match parsed {
                Some(parsed) if self.path(&parsed.reference) == path => out.push(parsed),
                _ => {
                    tracing::warn!(path = %path.display(), "ignoring an unreadable reference entry")
                }
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }
}
