//! The response body handed to the gateway: the guest's body as it
//! streams, plus a final error if the guest failed after sending headers.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::BodyError;

/// The guest stopped (trap, deadline, memory limit) while its response body
/// was still open: what was sent so far is all there is.
#[derive(Debug, thiserror::Error)]
#[error("component failed while sending its response body: {reason}")]
pub struct GuestBodyError {
    /// Why the guest stopped.
    pub reason: String,
}

/// Wraps the body wasi-http streams out of the guest. When the store is
/// dropped after a failure the guest's body just ends, which a client
/// would take for a complete (chunked) response; instead this yields a
/// last [`GuestBodyError`], so hyper aborts the message and the client
/// sees the truncation.
pub(crate) struct GuestBody {
    inner: HyperOutgoingBody,
    /// Filled by the guest's task, before the store (and with it the body
    /// stream) is dropped, when the guest failed.
    failure: Option<oneshot::Receiver<String>>,
}

impl GuestBody {
    pub(crate) fn new(inner: HyperOutgoingBody, failure: oneshot::Receiver<String>) -> Self {
        Self {
            inner,
            failure: Some(failure),
        }
    }
}

impl Body for GuestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                // The guest finished its body, or its store is gone. In the
                // second case a failure, if any, was sent before the drop,
                // so it is already here: no need to wait.
                let failure = self.failure.take().and_then(|mut rx| rx.try_recv().ok());
                Poll::Ready(failure.map(|reason| Err(GuestBodyError { reason }.into())))
            }
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
