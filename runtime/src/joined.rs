//! Handles that exist only once the host has reached NATS.
//!
//! A host starts from its cached assignment before NATS answers (edge
//! autonomy), so the parts that need NATS — the artifact store, the
//! components' key-value state — are built before there is a connection
//! and given a [`Joined`] to read it from when it comes.

use std::time::Duration;
use tokio::sync::watch;

/// A value set once the host joined; cheap to clone.
pub(crate) struct Joined<T> {
    rx: watch::Receiver<Option<T>>,
}

impl<T> Clone for Joined<T> {
    fn clone(&self) -> Self {
        Joined {
            rx: self.rx.clone(),
        }
    }
}

/// Sets what the [`Joined`] handles of its channel read.
pub(crate) struct Join<T> {
    tx: watch::Sender<Option<T>>,
}

impl<T> Join<T> {
    pub(crate) fn set(&self, value: T) {
        self.tx.send_replace(Some(value));
    }
}

impl<T: Clone> Joined<T> {
    pub(crate) fn channel() -> (Join<T>, Joined<T>) {
        let (tx, rx) = watch::channel(None);
        (Join { tx }, Joined { rx })
    }

    /// The value, if the host has joined.
    pub(crate) fn now(&self) -> Option<T> {
        self.rx.borrow().clone()
    }

    /// The value, waiting at most `limit` for the host to join.
    pub(crate) async fn within(&self, limit: Duration) -> Option<T> {
        let mut rx = self.rx.clone();
        let waited = tokio::time::timeout(limit, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(value)) => value.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn empty_until_set_and_waiters_see_the_value() {
        let (join, joined) = Joined::<u32>::channel();
        assert_eq!(joined.now(), None);
        assert_eq!(joined.within(Duration::from_millis(10)).await, None);
        let waiter = tokio::spawn({
            let joined = joined.clone();
            async move { joined.within(Duration::from_secs(5)).await }
        });
        join.set(7);
        assert_eq!(waiter.await.ok().flatten(), Some(7));
        assert_eq!(joined.now(), Some(7));
    }
}
