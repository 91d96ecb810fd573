//! The instances this host serves right now, by id: what the gateway
//! dispatches local requests to. The supervisor adds an instance once it is
//! running, marks it ready or not as its health check says, and drains it
//! when it stops: it takes no new requests, and the ones in flight finish
//! (bounded by the stop grace period) before it is stopped.

use crate::driver::Reach;
use atoll_sdk::metrics::{LATENCY_BOUNDS_MS, bucket_of};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How often a drain looks at the in-flight count.
const DRAIN_POLL: Duration = Duration::from_millis(20);

struct Entry {
    /// The app and service it is an instance of.
    service: (String, String),
    reach: Reach,
    /// Takes requests (its health check passed, or it has none).
    ready: bool,
    stats: Arc<Stats>,
}

/// An instance's request counters, for the load metrics.
pub(crate) struct Stats {
    /// Times are µs since this instant.
    epoch: Instant,
    /// Kept together so that a reader sees them consistent: the busy time
    /// it computes never goes backwards.
    busy: std::sync::Mutex<Busy>,
    requests: AtomicU64,
    latency: [AtomicU64; LATENCY_BOUNDS_MS.len() + 1],
}

#[derive(Default)]
struct Busy {
    inflight: u64,
    /// Time of finished requests.
    finished_us: u64,
    /// Sum of the start times of the requests in flight: with their count
    /// it gives the time they have spent so far, so a long request adds to
    /// the busy time as it goes rather than all at once when it ends.
    started_sum_us: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            epoch: Instant::now(),
            busy: Default::default(),
            requests: AtomicU64::new(0),
            latency: Default::default(),
        }
    }
}

/// The counters of one instance, read at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Counters {
    pub inflight: u64,
    pub requests: u64,
    /// Time spent serving, requests in flight included.
    pub busy_us: u64,
    pub latency: Vec<u64>,
}

impl Stats {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn busy(&self) -> std::sync::MutexGuard<'_, Busy> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn inflight(&self) -> u64 {
        self.busy().inflight
    }

    fn start(&self) -> u64 {
        let now = self.now_us();
        let mut b = self.busy();
        b.inflight += 1;
        b.started_sum_us += now;
        now
    }

    fn read(&self) -> Counters {
        let (inflight, busy_us) = {
            let b = self.busy();
            let ongoing = (b.inflight * self.now_us()).saturating_sub(b.started_sum_us);
            (b.inflight, b.finished_us + ongoing)
        };
        Counters {
            inflight,
            requests: self.requests.load(Ordering::Relaxed),
            busy_us,
            latency: (self.latency.iter())
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

/// Counts one request (or TCP connection) in flight on an instance; when
/// it drops, the request is done and its time is counted.
pub(crate) struct InFlight {
    stats: Arc<Stats>,
    started_us: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let s = &self.stats;
        let took_us = {
            let mut b = s.busy();
            let took = s.now_us().saturating_sub(self.started_us);
            b.inflight = b.inflight.saturating_sub(1);
            b.started_sum_us = b.started_sum_us.saturating_sub(self.started_us);
            b.finished_us += took;
            took
        };
        s.requests.fetch_add(1, Ordering::Relaxed);
        // Bucket bounds are upper bounds: 1.2 ms is not within 1 ms.
        s.latency[bucket_of(took_us.div_ceil(1000))].fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Clone, Default)]
pub(crate) struct LocalInstances {
    map: Arc<RwLock<HashMap<String, Entry>>>,
}

impl LocalInstances {
    /// The instance, if it is here and ready, counted in flight until the
    /// guard drops.
    pub(crate) fn checkout(&self, id: &str) -> Option<(Reach, InFlight)> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let entry = map.get(id).filter(|e| e.ready)?;
        let guard = InFlight {
            stats: entry.stats.clone(),
            started_us: entry.stats.start(),
        };
        Some((entry.reach.clone(), guard))
    }

    /// The app and service instance `id` here is one of.
    pub(crate) fn service_of(&self, id: &str) -> Option<(String, String)> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(id).map(|e| e.service.clone())
    }

    /// Any ready instance of `app`'s `service` here, the least busy, for
    /// when every instance the routing table names is gone (a table that
    /// is behind, its NATS watch stalled): counted in flight as
    /// [`checkout`](Self::checkout) does.
    pub(crate) fn checkout_any(&self, app: &str, service: &str) -> Option<(Reach, InFlight)> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let entry = (map.values())
            .filter(|e| e.ready && e.service.0 == app && e.service.1 == service)
            .min_by_key(|e| e.stats.inflight())?;
        let guard = InFlight {
            stats: entry.stats.clone(),
            started_us: entry.stats.start(),
        };
        Some((entry.reach.clone(), guard))
    }

    /// The request counters of an instance served here.
    pub(crate) fn counters(&self, id: &str) -> Option<Counters> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(id).map(|e| e.stats.read())
    }

    /// Adds a running instance; `ready` false keeps it out of traffic
    /// until [`set_ready`](Self::set_ready).
    pub(crate) fn insert(&self, id: &str, service: (&str, &str), reach: Reach, ready: bool) {
        let entry = Entry {
            service: (service.0.to_string(), service.1.to_string()),
            reach,
            ready,
            stats: Arc::default(),
        };
        self.write().insert(id.to_string(), entry);
    }

    pub(crate) fn set_ready(&self, id: &str, ready: bool) {
        if let Some(e) = self.write().get_mut(id) {
            e.ready = ready;
        }
    }

    /// Apps with at least one instance on this host's bridge (they
    /// need their service addresses there).
    pub(crate) fn bridged_apps(&self) -> BTreeSet<String> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.values()
            .filter_map(|e| match &e.reach {
                Reach::Network { app, .. } => Some(app.clone()),
                Reach::InProcess(_) => None,
            })
            .collect()
    }

    /// Takes the instance out at once (it crashed: nothing to wait for).
    pub(crate) fn remove(&self, id: &str) {
        self.write().remove(id);
    }

    /// Takes the instance out, then waits until its requests in flight
    /// are done, or `grace` passed; whether they all finished.
    pub(crate) async fn drain(&self, id: &str, grace: Duration) -> bool {
        let Some(entry) = self.write().remove(id) else {
            return true;
        };
        let deadline = Instant::now() + grace;
        while entry.stats.inflight() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
        true
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Reach {
        Reach::Network {
            app: "a".into(),
            address: std::net::Ipv4Addr::LOCALHOST,
            ports: Vec::new(),
        }
    }

    #[test]
    fn an_instance_that_is_not_ready_takes_no_requests() {
        let l = LocalInstances::default();
        l.insert("i1", WEB, container(), false);
        assert!(l.checkout("i1").is_none());
        l.set_ready("i1", true);
        assert!(l.checkout("i1").is_some());
        assert_eq!(l.bridged_apps(), BTreeSet::from(["a".to_string()]));
    }

    const WEB: (&str, &str) = ("a", "web");

    #[test]
    fn any_ready_instance_of_a_service_the_least_busy() {
        let l = LocalInstances::default();
        l.insert("i1", WEB, container(), true);
        l.insert("i2", WEB, container(), true);
        l.insert("i3", WEB, container(), false);
        l.insert("db", ("a", "db"), container(), true);
        assert!(l.checkout_any("a", "api").is_none(), "no instance of api");
        assert!(l.checkout_any("b", "web").is_none(), "nor of another app");
        let (_, first) = l.checkout("i1").expect("ready");
        let (_, second) = l.checkout_any("a", "web").expect("i2 is idle");
        let busy = |id: &str| l.counters(id).map(|c| c.inflight);
        assert_eq!(
            (busy("i1"), busy("i2"), busy("i3")),
            (Some(1), Some(1), Some(0))
        );
        drop((first, second));
    }

    #[test]
    fn finished_requests_are_counted_with_their_time() {
        let l = LocalInstances::default();
        l.insert("i1", WEB, container(), true);
        let (_, a) = l.checkout("i1").expect("ready");
        let (_, b) = l.checkout("i1").expect("ready");
        let counters = l.counters("i1").map(|c| (c.inflight, c.requests));
        assert_eq!(counters, Some((2, 0)));
        std::thread::sleep(Duration::from_millis(5));
        let c = l.counters("i1").expect("here");
        assert!(
            c.busy_us >= 10_000,
            "time in flight counts before it ends: {c:?}"
        );
        drop(a);
        drop(b);
        let c = l.counters("i1").expect("here");
        assert_eq!((c.inflight, c.requests), (0, 2));
        assert_eq!(c.latency.iter().sum::<u64>(), 2);
    }

    #[tokio::test]
    async fn a_drain_waits_for_requests_in_flight_up_to_the_grace_period() {
        let l = LocalInstances::default();
        l.insert("i1", WEB, container(), true);
        let (_, guard) = l.checkout("i1").expect("ready");
        let l2 = l.clone();
        let done = tokio::spawn(async move { l2.drain("i1", Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(l.checkout("i1").is_none(), "no new requests while draining");
        assert!(!done.is_finished(), "waits for the request in flight");
        drop(guard);
        assert!(done.await.expect("drain"));

        assert!(l.counters("i1").is_none(), "gone once drained");

        l.insert("i2", WEB, container(), true);
        let (_, _stuck) = l.checkout("i2").expect("ready");
        assert!(!l.drain("i2", Duration::from_millis(50)).await, "bounded");
    }
}
