//! The reader stack under the tar parser: it tells apart who failed (the
//! blob reader, the decompressor, or the tar data itself) and bounds how much
//! tar metadata may be read between two entries.
//!
//! The bound matters because the `tar` crate reads GNU long names and PAX
//! headers into memory whole, and silently skips the data of entries nobody
//! reads (a directory may claim gigabytes of data). Both happen inside
//! `Entries::next`, so the only place to stop them is the reader below it.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;

use super::Compression;

/// Tar metadata allowed between the data of two entries: headers, padding,
/// long names and PAX records. Real layers need a few KiB at most.
pub(super) const METADATA_BUDGET: u64 = 1024 * 1024;

/// Which layer of the reader stack failed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    Source,
    Decode,
    Budget,
}

/// State shared between the readers and the code driving the tar parser.
#[derive(Debug, Default)]
pub(super) struct Stream {
    failed: Cell<Option<Stage>>,
    budget: Cell<u64>,
}

impl Stream {
    /// Called before asking the parser for the next entry.
    pub(super) fn reset_budget(&self) {
        self.budget.set(METADATA_BUDGET);
    }

    /// Called once an entry is known: its declared data may be read too.
    pub(super) fn allow(&self, bytes: u64) {
        self.budget.set(self.budget.get().saturating_add(bytes));
    }

    /// The stage that failed first, if any. A blob read error travels up
    /// through the decoder too, so only the first report is kept.
    pub(super) fn failed(&self) -> Option<Stage> {
        self.failed.get()
    }

    fn record(&self, stage: Stage) {
        if self.failed.get().is_none() {
            self.failed.set(Some(stage));
        }
    }
}

/// Builds the decompressed, budgeted stream for one layer blob.
pub(super) fn open<'a>(
    blob: Box<dyn Read + 'a>,
    compression: Compression,
) -> (Box<dyn Read + 'a>, Rc<Stream>) {
    let stream = Rc::new(Stream::default());
    stream.reset_budget();
    let source = Tap {
        inner: blob,
        stage: Stage::Source,
        stream: Rc::clone(&stream),
    };
    let decoded: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(source),
        // Multi-member: pigz and some registries concatenate gzip members.
        Compression::Gzip => Box::new(Tap {
            inner: MultiGzDecoder::new(source),
            stage: Stage::Decode,
            stream: Rc::clone(&stream),
        }),
    };
    let budgeted = Budget {
        inner: decoded,
        stream: Rc::clone(&stream),
    };
    (Box::new(budgeted), stream)
}

/// Records the first failure of the reader it wraps.
struct Tap<R> {
    inner: R,
    stage: Stage,
    stream: Rc<Stream>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        if let Err(err) = &result
            && err.kind() != io::ErrorKind::Interrupted
        {
            self.stream.record(self.stage);
        }
        result
    }
}

/// Fails once more bytes are read than the stream's current budget.
struct Budget<R> {
    inner: R,
    stream: Rc<Stream>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.stream.budget.get();
        if left == 0 && !buf.is_empty() {
            self.stream.record(Stage::Budget);
            return Err(io::Error::other("tar metadata budget exceeded"));
        }
        let cap = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..cap])?;
        self.stream.budget.set(left - n as u64);
        Ok(n)
    }
}
