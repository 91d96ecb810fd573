//! Tar archives from fuzz input, with names written as they come (`..`,
//! absolute, NUL and all: what a hostile image holds), for the unpack and
//! import targets.

use arbitrary::Arbitrary;
use std::io::Write;

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
    Fifo,
    CharDevice,
}

#[derive(Arbitrary, Debug)]
pub struct Entry {
    pub kind: Kind,
    /// One of a few names that matter (whiteouts, `..`, links) or any.
    pub name: Name,
    pub target: Name,
    pub mode: u16,
    pub data: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
pub enum Name {
    Known(u8),
    Any(String),
}

const KNOWN: &[&str] = &[
    "a",
    "a/b",
    "a/b/c",
    "d/",
    "../escape",
    "/abs",
    "a/../../x",
    "./a",
    "a/.wh.b",
    "a/.wh..wh..opq",
    ".wh.a",
    ".wh..wh.plnk",
    ".wh.",
    "a/.wh..",
    "link",
    "link/x",
    "a/link/../x",
    "etc/passwd",
    "",
];

impl Name {
    pub fn text(&self) -> &str {
        match self {
            Name::Known(i) => KNOWN[usize::from(*i) % KNOWN.len()],
            Name::Any(s) => s,
        }
    }
}

/// The entries as one tar stream.
pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_old();
        // Raw bytes in the name fields: no checks on the way in.
        let name = e.name.text().as_bytes();
        let old = h.as_old_mut();
        let n = name.len().min(old.name.len());
        old.name[..n].copy_from_slice(&name[..n]);
        let target = e.target.text().as_bytes();
        let t = target.len().min(old.linkname.len());
        old.linkname[..t].copy_from_slice(&target[..t]);
        h.set_entry_type(match e.kind {
            Kind::File => tar::EntryType::Regular,
            Kind::Dir => tar::EntryType::Directory,
            Kind::Symlink => tar::EntryType::Symlink,
            Kind::HardLink => tar::EntryType::Link,
            Kind::Fifo => tar::EntryType::Fifo,
            Kind::CharDevice => tar::EntryType::Char,
        });
        h.set_mode(u32::from(e.mode));
        let data: &[u8] = match e.kind {
            Kind::File => &e.data,
            _ => &[],
        };
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}
