//! The lease's decisions against a fake store (whose key expires when the
//! test says so), and its NATS store against a real nats-server with a
//! short max age.

use super::*;
use std::sync::Mutex;

/// A store whose key lives until [`Fake::expire`]: compare-and-set as in
/// the bucket, revisions counted across the key's lives.
#[derive(Default)]
struct Fake {
    key: Mutex<Option<(bytes::Bytes, u64)>>,
    last: Mutex<u64>,
    /// The next update lands, but its answer is lost.
    lose_answer: Mutex<bool>,
}

#[derive(Debug, thiserror::Error)]
#[error("wrong revision, or no answer")]
struct Refused;

impl Fake {
    fn write(&self, value: bytes::Bytes, expected: Option<u64>) -> Result<u64, Refused> {
        let mut key = self.key.lock().expect("lock");
        if key.as_ref().map(|(_, rev)| *rev) != expected {
            return Err(Refused);
        }
        let mut last = self.last.lock().expect("lock");
        *last += 1;
        *key = Some((value, *last));
        Ok(*last)
    }

    /// The holder stopped renewing for the bucket's max age.
    fn expire(&self) {
        *self.key.lock().expect("lock") = None;
    }

    fn now(&self) -> Option<Held> {
        let key = self.key.lock().expect("lock");
        key.as_ref().map(|(v, rev)| read(v, *rev))
    }

    fn holder(&self) -> Option<String> {
        self.now().and_then(|h| h.holder)
    }
}

impl LeaseStore for &Fake {
    type Error = Refused;

    async fn create(&self, value: bytes::Bytes) -> Result<u64, Refused> {
        self.write(value, None)
    }

    async fn update(&self, value: bytes::Bytes, revision: u64) -> Result<u64, Refused> {
        let written = self.write(value, Some(revision));
        if std::mem::take(&mut *self.lose_answer.lock().expect("lock")) {
            return Err(Refused);
        }
        written
    }

    async fn held(&self) -> Option<Held> {
        self.now()
    }
}

fn leads(h: Hold) -> bool {
    matches!(h, Hold::Leading { .. })
}

fn epoch(h: Hold) -> u64 {
    match h {
        Hold::Leading { epoch, .. } => epoch,
        Hold::Following => panic!("not leading"),
    }
}

#[tokio::test]
async fn the_first_server_takes_the_lease_and_keeps_it_by_renewing() {
    let store = Fake::default();
    let mut a = Lease::new(&store, "a");
    let mut b = Lease::new(&store, "b");
    let e = epoch(a.hold().await);
    assert!(!leads(b.hold().await), "held by a");
    for _ in 0..3 {
        assert_eq!(
            a.hold().await,
            Hold::Leading {
                epoch: e,
                renewed: true
            },
            "a renews, same epoch"
        );
        assert!(!leads(b.hold().await));
    }
    assert_eq!(store.holder().as_deref(), Some("a"));
}

#[tokio::test]
async fn a_lease_whose_holder_stopped_renewing_goes_to_another_in_a_later_epoch() {
    let store = Fake::default();
    let mut a = Lease::new(&store, "a");
    let mut b = Lease::new(&store, "b");
    let first = epoch(a.hold().await);
    assert!(!leads(b.hold().await));
    store.expire();
    let second = epoch(b.hold().await);
    assert!(second > first, "each tenure has a later epoch");
    assert_eq!(
        a.hold().await,
        Hold::Following,
        "a's renewal fails: a follower now"
    );
    assert!(!leads(a.hold().await), "and stays one while b renews");
    assert!(leads(b.hold().await));
    store.expire();
    assert!(
        epoch(a.hold().await) > second,
        "a can take it again once it is free"
    );
}

#[tokio::test]
async fn a_follower_takes_over_a_lease_not_renewed_for_its_ttl_before_it_expires() {
    const TTL: Duration = Duration::from_secs(4);
    let store = Fake::default();
    let t0 = Instant::now();
    let mut a = Lease::new(&store, "a").observing(TTL);
    let mut b = Lease::new(&store, "b").observing(TTL);
    let first = epoch(a.hold_at(t0).await);
    assert!(!leads(b.hold_at(t0).await), "b's first try sees a lead");
    // a renews every second: b never judges it stale.
    for s in 1..=8 {
        let now = t0 + Duration::from_secs(s);
        assert!(leads(a.hold_at(now).await));
        assert!(!leads(b.hold_at(now).await), "a renews: at {s} s");
    }
    // a stops (paused or dead); the key has not expired.
    let stopped = t0 + Duration::from_secs(8);
    assert!(!leads(b.hold_at(stopped + Duration::from_secs(3)).await));
    let second = epoch(b.hold_at(stopped + TTL).await);
    assert!(second > first, "a later epoch: {second} > {first}");
    assert_eq!(store.holder().as_deref(), Some("b"));
    assert_eq!(
        a.hold_at(stopped + Duration::from_secs(5)).await,
        Hold::Following,
        "a, resumed, finds its renewal refused"
    );
}

#[tokio::test]
async fn a_renewal_whose_answer_was_lost_keeps_the_lease() {
    let store = Fake::default();
    let mut a = Lease::new(&store, "a");
    let e = epoch(a.hold().await);
    *store.lose_answer.lock().expect("lock") = true;
    assert_eq!(
        a.hold().await,
        Hold::Leading {
            epoch: e,
            renewed: true
        },
        "the write landed: the key names a, one revision on"
    );
    assert_eq!(
        a.hold().await,
        Hold::Leading {
            epoch: e,
            renewed: true
        },
        "and renews from there"
    );
}

#[tokio::test]
async fn a_server_restarted_under_its_name_takes_its_lease_back_in_a_new_epoch() {
    let store = Fake::default();
    let mut before = Lease::new(&store, "a");
    let old = epoch(before.hold().await);
    let mut after = Lease::new(&store, "a");
    let new = epoch(after.hold().await);
    assert!(
        new > old,
        "no wait for the old lease to expire, and a new epoch"
    );
    assert!(
        !leads(before.hold().await),
        "the old life, if still around, lost it"
    );
    assert!(leads(after.hold().await));
}

#[tokio::test]
async fn only_a_server_that_just_started_takes_a_lease_under_its_name() {
    let store = Fake::default();
    let mut b = Lease::new(&store, "b");
    assert!(leads(b.hold().await));
    let mut a = Lease::new(&store, "a");
    assert!(!leads(a.hold().await), "held by b");
    // b expires; a duplicate also named "a" takes the lease.
    store.expire();
    let mut twin = Lease::new(&store, "a");
    assert!(leads(twin.hold().await));
    assert!(
        !leads(a.hold().await),
        "a is past its first hold: no stealing"
    );
    assert_eq!(store.holder().as_deref(), Some("a"));
    assert!(leads(twin.hold().await), "the twin keeps renewing");
}

#[test]
fn taking_back_needs_a_first_hold_and_the_same_name() {
    let held = |holder: Option<&str>| Held {
        holder: holder.map(str::to_string),
        epoch: 7,
        revision: 7,
    };
    assert!(may_take_back(true, &held(Some("a")), "a"));
    assert!(!may_take_back(false, &held(Some("a")), "a"));
    assert!(!may_take_back(true, &held(Some("b")), "a"));
    assert!(!may_take_back(true, &held(None), "a"));
}

#[test]
fn values_of_older_servers_and_new_ones_read_alike() {
    assert_eq!(read(b"s1", 4).holder.as_deref(), Some("s1"));
    assert_eq!(read(b"s1", 4).epoch, 4);
    let v = encode("s2", Some(9));
    assert_eq!(
        read(&v, 12),
        Held {
            holder: Some("s2".into()),
            epoch: 9,
            revision: 12
        }
    );
    assert_eq!(
        read(&encode("s3", None), 5).epoch,
        5,
        "a created key: its revision"
    );
}

mod on_nats {
    use super::super::*;
    use super::leads;
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
        assert!(leads(a.hold().await));
        assert!(leads(a.hold().await), "renewed");
        assert!(!leads(b.hold().await), "held by a");
        let held = (kv.held().await).expect("a holds the key");
        assert_eq!(held.holder.as_deref(), Some("a"));
        // a stops renewing: within a few max ages, b takes over.
        let started = Instant::now();
        while !leads(b.hold().await) {
            assert!(started.elapsed() < TTL * 10, "b never took the lease");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(started.elapsed() >= TTL / 2, "not before a's lease aged");
        assert!(!leads(a.hold().await), "a lost it");
        let mut b_restarted = Lease::new(kv.clone(), "b");
        assert!(
            leads(b_restarted.hold().await),
            "b restarted takes it back at once"
        );
    }
}
