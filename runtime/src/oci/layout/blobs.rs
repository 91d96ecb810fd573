//! Writing into the blob store from the loader's blocking thread. The tar
//! reader and the layout's files are synchronous, the store is async:
//! [`put`] streams a synchronous reader into the store through
//! `Handle::block_on`, and the store verifies the bytes against their
//! digest on the way in, so nothing unverified is ever stored.

use std::io::{self, Read};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::runtime::Handle;

use super::error::LayoutError;
use crate::oci::store::BlobStore;

/// Streams a reader into the store under `digest`, verifying it.
pub(super) fn put(
    handle: &Handle,
    store: &BlobStore,
    source: &Path,
    digest: &str,
    size: Option<u64>,
    reader: impl Read + Unpin,
) -> Result<(), LayoutError> {
    handle
        .block_on(store.put_stream(digest, size, BlockingRead(reader)))
        .map(|_| ())
        .map_err(|err| LayoutError::store(source, err))
}

/// A synchronous reader as an `AsyncRead`, for use under
/// `Handle::block_on` on a blocking thread only: each poll reads (and may
/// block) right away.
struct BlockingRead<R>(R);

impl<R: Read + Unpin> AsyncRead for BlockingRead<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.0.read(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// A descriptor's size, refused when negative.
pub(super) fn descriptor_size(source: &Path, digest: &str, size: i64) -> Result<u64, LayoutError> {
    u64::try_from(size).map_err(|_| {
        LayoutError::bad_file(
            source,
            format!("the descriptor of {digest}"),
            "negative size",
        )
    })
}
