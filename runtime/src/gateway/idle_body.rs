//! A request body that fails once its client has sent nothing for a
//! while: a client trickling a body (or stopping half way) holds a
//! connection and an instance only that long. nginx's
//! `client_body_timeout` is the same bound (between two reads, 60 s).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::wasm::BodyError;

/// `inner`, failing after `idle` without a frame.
pub struct IdleBounded<B> {
    inner: Pin<Box<B>>,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<B> IdleBounded<B> {
    pub fn new(inner: B, idle: Duration) -> Self {
        IdleBounded {
            inner: Box::pin(inner),
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

/// What a body that went quiet ends with.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no part of the request body for {0:?}")]
pub struct BodyStalled(pub Duration);

impl<B> Body for IdleBounded<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BodyError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.inner.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = Instant::now() + self.idle;
                self.timer.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyStalled(self.idle))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn stream_of(parts: Vec<(u64, &'static str)>) -> impl Body<Data = Bytes, Error = BodyError> {
        let s = futures::stream::unfold(parts.into_iter(), |mut it| async move {
            let (wait, text) = it.next()?;
            tokio::time::sleep(Duration::from_secs(wait)).await;
            Some((Ok::<_, BodyError>(Frame::data(Bytes::from(text))), it))
        });
        StreamBody::new(s)
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_keeps_coming_is_read_whole() {
        let body = stream_of(vec![(4, "a"), (4, "b"), (4, "c")]);
        let got = IdleBounded::new(body, Duration::from_secs(5))
            .collect()
            .await;
        assert_eq!(got.expect("read").to_bytes(), "abc");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_goes_quiet_fails_naming_the_wait() {
        let body = stream_of(vec![(1, "a"), (9, "b")]);
        let err = IdleBounded::new(body, Duration::from_secs(5))
            .collect()
            .await
            .expect_err("stalled");
        assert!(err.to_string().contains("for 5s"), "{err}");
    }
}
