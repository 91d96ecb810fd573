//! Layer unpacking (tar, gzip or not, one to three layers) into a root:
//! nothing lands outside it (a sentinel directory beside it keeps exactly
//! its one file, unlinked from anything inside), an unpack either finishes
//! or leaves nothing (no root, no partial directory), and a finished root
//! holds no device or fifo.
#![no_main]

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use atoll_fuzz::archive::{Entry, gzip, tar};
use atoll_runtime::oci::unpack::{Compression, Layer, Limits, unpack_layers};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    layers: Vec<(bool, LayerBytes)>,
}

#[derive(Arbitrary, Debug)]
enum LayerBytes {
    Entries(Vec<Entry>),
    /// Whatever bytes: a broken or truncated stream.
    Raw(Vec<u8>),
}

/// A scratch directory in memory, made once per process: `outside/` with
/// one file, and the root unpacked to beside it.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = atoll_fuzz::scratch_dir("atoll-fuzz-unpack-");
        std::fs::create_dir(dir.join("outside")).expect("outside");
        std::fs::write(dir.join("outside/sentinel"), b"untouched").expect("sentinel");
        dir
    })
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            f(&path, &meta);
            if meta.is_dir() {
                walk(&path, f);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // First byte 0: the rest is one tar layer as it comes (the seeds are
    // real layers), 1: one gzipped layer; else layers made from entries.
    let input = match data.split_first() {
        Some((0, raw)) => Input {
            layers: vec![(false, LayerBytes::Raw(raw.to_vec()))],
        },
        Some((1, raw)) => Input {
            layers: vec![(true, LayerBytes::Raw(raw.to_vec()))],
        },
        Some((_, rest)) => match Input::arbitrary_take_rest(arbitrary::Unstructured::new(rest)) {
            Ok(input) => input,
            Err(_) => return,
        },
        None => return,
    };
    let dir = scratch();
    let root = dir.join("root");
    let layers: Vec<Layer> = (input.layers.iter().take(3).enumerate())
        .map(|(i, (gz, bytes))| {
            let raw = match bytes {
                LayerBytes::Entries(entries) => tar(entries),
                LayerBytes::Raw(raw) => raw.clone(),
            };
            let (compression, data) = match (gz, bytes) {
                (true, LayerBytes::Raw(_)) => (Compression::Gzip, raw),
                (true, _) => (Compression::Gzip, gzip(&raw)),
                (false, _) => (Compression::None, raw),
            };
            Layer {
                name: format!("layer {i}"),
                compression,
                reader: Box::new(std::io::Cursor::new(data)),
            }
        })
        .collect();
    let limits = Limits {
        max_total_bytes: 1 << 20,
        max_entries: 1000,
        max_path_len: 4096,
    };
    let result = unpack_layers(layers, &root, &limits);

    // Outside: as it was.
    let outside: Vec<_> = std::fs::read_dir(dir.join("outside"))
        .expect("outside")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(outside, ["sentinel"], "something landed outside the root");
    let sentinel = std::fs::symlink_metadata(dir.join("outside/sentinel")).expect("sentinel");
    assert_eq!(sentinel.nlink(), 1, "the sentinel was linked from inside");
    assert_eq!(
        std::fs::read(dir.join("outside/sentinel")).expect("read"),
        b"untouched"
    );
    let top = atoll_fuzz::names_in(dir);
    match &result {
        Ok(stats) => {
            assert_eq!(top, ["outside", "root"], "left beside the root");
            assert!(stats.entries <= limits.max_entries);
            walk(&root, &mut |path, meta| {
                let t = meta.file_type();
                assert!(
                    !(t.is_block_device() || t.is_char_device() || t.is_fifo() || t.is_socket()),
                    "{path:?} is a device or fifo"
                );
            });
            let _ = std::fs::remove_dir_all(&root);
        }
        Err(_) => assert_eq!(top, ["outside"], "a failed unpack left something"),
    }
});
