//! The lease's decisions against a fake store (whose key expires when the
//! test says so), and its NATS store against a real nats-server with a
//! short max age.

use super::*;
use std::sync::Mutex;

/// A store whose key lives until [`Fake::expire`]: compare-and-set as in
/// the bucket, revisions counted across the key's lives.
#[derive(Default)]
struct Fake {
    key: Mutex<Option<(String, u64)>>,
    last: Mutex<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("wrong revision")]
struct Refused;

impl Fake {
    fn write(&self, holder: &str, expected: Option<u64>) -> Result<u64, Refused> {
        let mut key = self.key.lock().expect("lock");
        if key.as_ref().map(|(_, rev)| *rev) != expected {
            return Err(Refused);
        }
        let mut last = self.last.lock().expect("lock");
        *last += 1;
        *key = Some((holder.to_string(), *last));
        Ok(*last)
    }

    /// The holder stopped renewing for the bucket's max age.
    fn expire(&self) {
        *self.key.lock().expect("lock") = None;
    }

    fn holder(&self) -> Option<String> {
        self.key
            .lock()
            .expect("lock")
            .as_ref()
            .map(|(h, _)| h.clone())
    }
}

impl LeaseStore for &Fake {
    type Error = Refused;

    async fn create(&self, holder: &str) -> Result<u64, Refused> {
        self.write(holder, None)
    }

    async fn update(&self, holder: &str, revision: u64) -> Result<u64, Refused> {
        self.write(holder, Some(revision))
    }

    async fn held(&self) -> Option<Held> {
        let key = self.key.lock().expect("lock");
        key.as_ref().map(|(h, revision)| Held {
            holder: Some(h.clone()),
            revision: *revision,
        })
    }
}

#[tokio::test]
async fn the_first_server_takes_the_lease_and_keeps_it_by_renewing() {
    let store = Fake::default();
    let mut a = Lease::new(&store, "a");
    let mut b = Lease::new(&store, "b");
    assert!(a.hold().await);
    assert!(!b.hold().await, "held by a");
    for _ in 0..3 {
        assert!(a.hold().await, "a renews");
        assert!(!b.hold().await);
    }
    assert_eq!(store.holder().as_deref(), Some("a"));
}

#[tokio::test]
async fn a_lease_whose_holder_stopped_renewing_goes_to_another_once_it_expires() {
    let store = Fake::default();
    let mut a = Lease::new(&store, "a");
    let mut b = Lease::new(&store, "b");
    assert!(a.hold().await);
    assert!(!b.hold().await);
    store.expire();
    assert!(b.hold().await, "b takes the expired lease");
    assert!(!a.hold().await, "a's renewal fails: it is a follower now");
    assert!(!a.hold().await, "and stays one while b renews");
    assert!(b.hold().await);
    store.expire();
    assert!(a.hold().await, "a can take it again once it is free");
}

#[tokio::test]
async fn a_server_restarted_under_its_name_takes_its_lease_back_at_once() {
    let store = Fake::default();
    let mut before = Lease::new(&store, "a");
    assert!(before.hold().await);
    let mut after = Lease::new(&store, "a");
    assert!(after.hold().await, "no wait for the old lease to expire");
    assert!(
        !before.hold().await,
        "the old life, if still around, lost it"
    );
    assert!(after.hold().await);
}

#[tokio::test]
async fn only_a_server_that_just_started_takes_a_lease_under_its_name() {
    let store = Fake::default();
    let mut b = Lease::new(&store, "b");
    assert!(b.hold().await);
    let mut a = Lease::new(&store, "a");
    assert!(!a.hold().await, "held by b");
    // b expires; a duplicate also named "a" takes the lease.
    store.expire();
    let mut twin = Lease::new(&store, "a");
    assert!(twin.hold().await);
    assert!(!a.hold().await, "a is past its first hold: no stealing");
    assert_eq!(store.holder().as_deref(), Some("a"));
    assert!(twin.hold().await, "the twin keeps renewing");
}

#[test]
fn taking_back_needs_a_first_hold_and_the_same_name() {
    let held = |holder: Option<&str>| Held {
        holder: holder.map(str::to_string),
        revision: 7,
    };
    assert!(may_take_back(true, &held(Some("a")), "a"));
    assert!(!may_take_back(false, &held(Some("a")), "a"));
    assert!(!may_take_back(true, &held(Some("b")), "a"));
    assert!(!may_take_back(true, &held(None), "a"));
}

mod on_nats {
    use super::super::*;
    use async_nats::jetstream;
    use atoll_sdk::nats::testing::TestNats;
    use std::time::{Duration, Instant};

    /// The lease bucket's max age here: short, so expiry is quick to see.
    const TTL: Duration = Duration::from_secs(1);

    async fn bucket(nats: &TestNats) -> kv::Store {
        let client = (atoll_sdk::nats::connect(&nats.url(), "lease-test").await).expect("connect");
        let cfg = kv::Config {
            bucket: "lease_test".into(),
            history: 1,
            max_age: TTL,
            ..Default::default()
        };
        (atoll_sdk::nats::open_kv(&jetstream::new(client), cfg).await).expect("bucket")
    }

    #[tokio::test]
    async fn the_bucket_hands_the_lease_over_when_its_holder_stops() {
        let nats = TestNats::start();
        let kv = bucket(&nats).await;
        let mut a = Lease::new(kv.clone(), "a");
        let mut b = Lease::new(kv.clone(), "b");
        assert!(a.hold().await);
        assert!(a.hold().await, "renewed");
        assert!(!b.hold().await, "held by a");
        let held = (kv.held().await).expect("a holds the key");
        assert_eq!(held.holder.as_deref(), Some("a"));
        // a stops renewing: within a few max ages, b takes over.
        let started = Instant::now();
        while !b.hold().await {
            assert!(started.elapsed() < TTL * 10, "b never took the lease");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(started.elapsed() >= TTL / 2, "not before a's lease aged");
        assert!(!a.hold().await, "a lost it");
        let mut b_restarted = Lease::new(kv.clone(), "b");
        assert!(
            b_restarted.hold().await,
            "b restarted takes it back at once"
        );
    }
}
