//! Reading an archive (a tar, gzipped or not) as a stream, never unpacked
//! to disk. [`scan_archive`] is the first pass: it copies every
//! `blobs/sha256/<hex>` entry into the store (its name is its digest, so
//! it is verified on the way), keeps the small JSON files in memory, hashes
//! every other file and notes every link, refusing any name or link target
//! that leaves the archive. [`copy_files`] is the second pass, only needed
//! for the layer files of a classic `docker save` archive, which no digest
//! names: it copies them, verified against the first pass's hash.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use sha2::{Digest as _, Sha256};
use tokio::runtime::Handle;

use super::blobs::put;
use super::error::LayoutError;
use super::paths::{join_inside, safe_name};
use super::{MAX_LINK_HOPS, MAX_METADATA_BYTES, OCI_LAYOUT};
use crate::oci::store::{BlobStore, sha256_hex};

/// How a gzip stream starts: layers and archives may be either.
pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What the first pass over an archive found.
#[derive(Default)]
pub(super) struct Scan {
    /// Small files (`*.json`, `oci-layout`, `repositories`), by name.
    pub(super) small: BTreeMap<String, Vec<u8>>,
    /// Regular files outside `blobs/sha256/`, hashed: by name.
    pub(super) files: BTreeMap<String, Hashed>,
    /// `blobs/sha256/<hex>` entries, now in the store: name → digest.
    pub(super) blobs: BTreeMap<String, String>,
    /// Symbolic and hard links: name → target, both archive paths.
    pub(super) links: BTreeMap<String, String>,
}

/// A file of the archive as the first pass hashed it.
#[derive(Clone, Debug)]
pub(super) struct Hashed {
    pub(super) digest: String,
    pub(super) size: u64,
    pub(super) gzip: bool,
}

impl Scan {
    /// Follows links from an archive path to a file's name.
    pub(super) fn resolve(&self, source: &Path, name: &str) -> Result<String, LayoutError> {
        let mut current = name.to_owned();
        for _ in 0..MAX_LINK_HOPS {
            match self.links.get(&current) {
                Some(target) => current = target.clone(),
                None => return Ok(current),
            }
        }
        Err(LayoutError::Unsupported {
            path: source.to_owned(),
            message: format!("{name}: too many levels of links"),
        })
    }
}

/// Opens an archive, gunzipping it if it starts like gzip.
fn open_archive(source: &Path) -> Result<tar::Archive<Box<dyn Read>>, LayoutError> {
    let mut file = BufReader::new(File::open(source).map_err(LayoutError::io(source))?);
    let head = std::io::BufRead::fill_buf(&mut file).map_err(LayoutError::io(source))?;
    let reader: Box<dyn Read> = if head.starts_with(&GZIP_MAGIC) {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(tar::Archive::new(reader))
}

/// A tar reader failing on headers: the file is no (or a truncated) tar.
fn not_an_archive(source: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |err| LayoutError::NotAnArchive {
        path: source.to_owned(),
        source: err,
    }
}

/// The first pass; see the module docs.
pub(super) fn scan_archive(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
) -> Result<Scan, LayoutError> {
    let mut scan = Scan::default();
    let mut archive = open_archive(source)?;
    let entries = archive.entries().map_err(not_an_archive(source))?;
    for entry in entries {
        let mut entry = entry.map_err(not_an_archive(source))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = safe_name(&raw).ok_or_else(|| LayoutError::unsafe_path(source, &raw))?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = link_target(source, &raw, &name, &entry)?;
            scan.links.insert(name, target);
            continue;
        }
        if !kind.is_file() || name.is_empty() {
            continue;
        }
        let size = entry.size();
        if let Some(hex) = name.strip_prefix("blobs/sha256/")
            && sha256_hex(&format!("sha256:{hex}")).is_ok()
        {
            let digest = format!("sha256:{hex}");
            put(handle, store, source, &digest, Some(size), &mut entry)?;
            scan.blobs.insert(name, digest);
            continue;
        }
        let small = name.ends_with(".json") || name == OCI_LAYOUT || name == "repositories";
        if small && size <= MAX_METADATA_BYTES {
            let mut bytes = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut bytes)
                .map_err(LayoutError::io(source))?;
            scan.small.insert(name, bytes);
            continue;
        }
        let hashed = hash_reader(&mut entry).map_err(LayoutError::io(source))?;
        scan.files.insert(name, hashed);
    }
    Ok(scan)
}

/// Where a link entry points, as an archive path. Symbolic links are
/// relative to their directory; hard links name another entry of the
/// archive.
fn link_target(
    source: &Path,
    raw: &str,
    name: &str,
    entry: &tar::Entry<'_, Box<dyn Read>>,
) -> Result<String, LayoutError> {
    let kind = entry.header().entry_type();
    let target = entry
        .link_name_bytes()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let resolved = if kind.is_symlink() {
        let dir = name.rsplit_once('/').map_or("", |(dir, _)| dir);
        join_inside(dir, &target)
    } else {
        safe_name(&target)
    };
    resolved.ok_or_else(|| LayoutError::unsafe_path(source, format!("{raw} -> {target}")))
}

/// The second pass of a classic `docker save` archive: copies the layer
/// files it needs into the store, verified against the first pass's hash.
pub(super) fn copy_files(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    needed: &BTreeMap<String, Hashed>,
) -> Result<(), LayoutError> {
    let mut archive = open_archive(source)?;
    let entries = archive.entries().map_err(not_an_archive(source))?;
    for entry in entries {
        let mut entry = entry.map_err(not_an_archive(source))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(hashed) = safe_name(&raw).and_then(|name| needed.get(&name)) else {
            continue;
        };
        put(
            handle,
            store,
            source,
            &hashed.digest,
            Some(hashed.size),
            &mut entry,
        )?;
    }
    for (name, hashed) in needed {
        if !store.has(&hashed.digest) {
            return Err(LayoutError::missing(
                source,
                format!("{name} (changed while loading?)"),
            ));
        }
    }
    Ok(())
}

/// Hashes a file, noting whether it starts like gzip.
fn hash_reader(reader: &mut impl Read) -> io::Result<Hashed> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut head = Vec::with_capacity(2);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 2 {
            let take = (2 - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Hashed {
        digest: format!("sha256:{hex}"),
        size,
        gzip: head == GZIP_MAGIC,
    })
}
