//! Tests of the layer unpacker: `hostile` feeds crafted archives that try to
//! escape the root or exhaust limits, `layering` checks changeset semantics
//! on well-formed images. Archives are built in memory; names are written
//! into the raw header bytes because the `tar` crate's setters refuse `..`
//! and absolute paths.

mod hostile;
mod layering;

use std::fs;
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tar::{EntryType, Header};

use super::{Compression, Layer, Limits, UnpackError, UnpackStats, unpack_layers};

/// A temp dir per test: dest is `store/rootfs` (its partial dir lands in
/// `store/` too) and `outside/` is where escapes would land. Two levels of
/// nesting keep `../..` tricks from reaching the shared temp dir.
struct Sandbox {
    top: PathBuf,
}

impl Sandbox {
    fn new(test: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let unique = format!(
            "atoll-unpack-{test}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let top = std::env::temp_dir().join(unique);
        let _ = fs::remove_dir_all(&top);
        fs::create_dir_all(top.join("store")).unwrap();
        fs::create_dir_all(top.join("outside")).unwrap();
        Self { top }
    }

    fn dest(&self) -> PathBuf {
        self.top.join("store/rootfs")
    }

    fn outside(&self) -> PathBuf {
        self.top.join("outside")
    }

    fn run(&self, layers: Vec<Layer<'_>>) -> Result<UnpackStats, UnpackError> {
        self.run_with(layers, &Limits::default())
    }

    fn run_with(
        &self,
        layers: Vec<Layer<'_>>,
        limits: &Limits,
    ) -> Result<UnpackStats, UnpackError> {
        unpack_layers(layers, &self.dest(), limits)
    }

    /// Every path under the sandbox, relative and sorted.
    fn listing(&self) -> Vec<String> {
        fn walk(dir: &Path, top: &Path, out: &mut Vec<String>) {
            for child in fs::read_dir(dir).unwrap() {
                let path = child.unwrap().path();
                out.push(path.strip_prefix(top).unwrap().display().to_string());
                if fs::symlink_metadata(&path).unwrap().is_dir() {
                    walk(&path, top, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.top, &self.top, &mut out);
        out.sort();
        out
    }

    /// After a failed unpack: no dest, no partial dir, nothing escaped
    /// (`outside/` holds only what the test put there).
    fn assert_untouched(&self, outside: &[&str]) {
        assert!(fs::symlink_metadata(self.dest()).is_err(), "dest exists");
        let mut expected = vec!["outside".to_owned(), "store".to_owned()];
        expected.extend(outside.iter().map(|name| format!("outside/{name}")));
        expected.sort();
        assert_eq!(self.listing(), expected);
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.dest().join(rel)).unwrap()
    }

    fn mode(&self, rel: &str) -> u32 {
        fs::symlink_metadata(self.dest().join(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.dest().join(rel)).is_ok()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Tests may leave read-only directories behind; reopen them first.
        fn open_up(dir: &Path) {
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
            for child in fs::read_dir(dir).into_iter().flatten().flatten() {
                if child.file_type().is_ok_and(|t| t.is_dir()) {
                    open_up(&child.path());
                }
            }
        }
        open_up(&self.top);
        let _ = fs::remove_dir_all(&self.top);
    }
}

/// An archive under construction.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    /// Appends an entry with `name` and `link` copied verbatim into the
    /// header, bypassing the `tar` crate's path checks.
    fn raw(mut self, kind: EntryType, name: &[u8], link: &[u8], data: &[u8], mode: u32) -> Self {
        let mut header = Header::new_gnu();
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name);
        gnu.linkname[..link.len()].copy_from_slice(link);
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    fn file(self, name: &str, data: &str) -> Self {
        self.raw(
            EntryType::Regular,
            name.as_bytes(),
            b"",
            data.as_bytes(),
            0o644,
        )
    }

    fn dir(self, name: &str) -> Self {
        self.raw(EntryType::Directory, name.as_bytes(), b"", b"", 0o755)
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.raw(
            EntryType::Symlink,
            name.as_bytes(),
            target.as_bytes(),
            b"",
            0o777,
        )
    }

    fn hardlink(self, name: &str, target: &str) -> Self {
        self.raw(
            EntryType::Link,
            name.as_bytes(),
            target.as_bytes(),
            b"",
            0o644,
        )
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }

    fn layer(self, name: &str) -> Layer<'static> {
        blob(name, Compression::None, self.bytes())
    }

    fn gzip_layer(self, name: &str) -> Layer<'static> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&self.bytes()).unwrap();
        blob(name, Compression::Gzip, encoder.finish().unwrap())
    }
}

fn blob(name: &str, compression: Compression, bytes: Vec<u8>) -> Layer<'static> {
    Layer {
        name: name.to_owned(),
        compression,
        reader: Box::new(Cursor::new(bytes)),
    }
}

/// A blob whose reads fail after `ok` bytes, like a dropped download.
struct FailingReader {
    inner: Cursor<Vec<u8>>,
    ok: u64,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.inner.position() >= self.ok {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "blob read failed",
            ));
        }
        let room = (self.ok - self.inner.position()) as usize;
        let len = room.min(buf.len());
        self.inner.read(&mut buf[..len])
    }
}
