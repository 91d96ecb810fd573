//! An in-memory mirror of a KV bucket, kept current by a watch.
//!
//! Readers (the controller, the API, the gateways) read the mirror instead
//! of asking NATS, so no request path waits on a NATS round trip. The
//! mirror loads every key and follows the updates through one watch from
//! the stream's start (see [`sync_and_watch`]); every entry carries its
//! revision, so an update seen twice is applied once.
//! When the watch breaks (NATS restarted), it reloads from scratch after a
//! bounded, jittered backoff.

use async_nats::jetstream::kv::{self, Operation};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// One decoded value and the KV revision it was written at.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub revision: u64,
}

type Map<T> = BTreeMap<String, Versioned<T>>;

/// Keeps a map of a bucket's keys to decoded values.
pub struct Mirror<T> {
    map: Arc<RwLock<Map<T>>>,
    changes: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

/// A cheap, clonable read handle on a [`Mirror`].
pub struct MirrorView<T> {
    map: Arc<RwLock<Map<T>>>,
    changes: watch::Receiver<u64>,
}

impl<T> Clone for MirrorView<T> {
    fn clone(&self) -> Self {
        MirrorView {
            map: self.map.clone(),
            changes: self.changes.clone(),
        }
    }
}

impl<T: DeserializeOwned + Clone + Send + Sync + 'static> Mirror<T> {
    /// Starts mirroring `store`; returns once the first full load is done
    /// (or failed: then the mirror starts empty and keeps retrying).
    pub async fn start(store: kv::Store) -> Mirror<T> {
        let map: Arc<RwLock<Map<T>>> = Arc::default();
        let (tx, changes) = watch::channel(0u64);
        let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run(store, map.clone(), tx, Some(loaded_tx)));
        let _ = tokio::time::timeout(Duration::from_secs(10), loaded_rx).await;
        Mirror { map, changes, task }
    }

    pub fn view(&self) -> MirrorView<T> {
        MirrorView {
            map: self.map.clone(),
            changes: self.changes.clone(),
        }
    }
}

impl<T> Drop for Mirror<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T: Clone> MirrorView<T> {
    pub fn get(&self, key: &str) -> Option<Versioned<T>> {
        read(&self.map).get(key).cloned()
    }

    pub fn all(&self) -> Map<T> {
        read(&self.map).clone()
    }

    /// Whether the first full load is done. Until then an empty mirror
    /// means "not known yet", not "no keys": decisions must wait.
    pub fn loaded(&self) -> bool {
        // The counter first moves when a full load has replaced the map.
        *self.changes.borrow() > 0
    }

    /// A receiver that changes whenever the mirror does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }
}

fn read<T>(map: &RwLock<Map<T>>) -> std::sync::RwLockReadGuard<'_, Map<T>> {
    // A writer never panics while holding the lock, so poisoning cannot
    // happen; recover the guard anyway rather than propagate a panic.
    map.read().unwrap_or_else(|e| e.into_inner())
}

async fn run<T: DeserializeOwned>(
    store: kv::Store,
    map: Arc<RwLock<Map<T>>>,
    tx: watch::Sender<u64>,
    mut loaded: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match sync_and_watch(&store, &map, &tx, &mut loaded).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(bucket = %store.name, error = %e, "KV mirror lost its watch; reloading");
            }
        }
        if let Some(l) = loaded.take() {
            let _ = l.send(());
        }
        let jitter = Duration::from_millis(rand_jitter(backoff.as_millis() as u64 / 2));
        tokio::time::sleep(backoff + jitter).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Why a mirror's load or watch stopped (it then reloads).
#[derive(Debug, thiserror::Error)]
enum MirrorError {
    #[error("reading the bucket's stream info: {0}")]
    Info(#[source] async_nats::jetstream::stream::InfoError),
    #[error("watching from revision {revision}: {source}")]
    Watch {
        revision: u64,
        source: kv::WatchError,
    },
    #[error("reading the watch: {0}")]
    Watched(#[source] kv::WatcherError),
    #[error("watch ended")]
    Ended,
    #[error("the watch stalled at revision {applied}; the bucket is at {last}")]
    Stalled { applied: u64, last: u64 },
    #[error("the bucket went back from revision {applied} to {last}: it was made anew")]
    WentBack { applied: u64, last: u64 },
}

fn rand_jitter(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    if max == 0 { 0 } else { nanos % max }
}

/// How often a watch is checked against its stream's last revision.
const STALL_CHECK: Duration = Duration::from_secs(2);

/// How long a load waits for the next key before it looks again: the
/// stream's messages may have expired between its info and the watch.
const LOAD_STALL: Duration = Duration::from_secs(5);

/// Loads the bucket and follows it through one watch — an ordered
/// consumer on the stream's leader, from its first message — so that the
/// load and the updates come from one consistent source. (Reading the keys
/// one by one would use direct gets, which a replica that is behind may
/// answer in a NATS cluster: a value older than the watch's start would
/// then stay in the mirror for good.) The load is done at the entry with
/// nothing pending after it.
async fn sync_and_watch<T: DeserializeOwned>(
    store: &kv::Store,
    map: &RwLock<Map<T>>,
    tx: &watch::Sender<u64>,
    loaded: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), MirrorError> {
    let info = store.stream.get_info().await.map_err(MirrorError::Info)?;
    let mut watch =
        (store.watch_all_from_revision(1).await).map_err(|source| MirrorError::Watch {
            revision: 1,
            source,
        })?;
    let (fresh, applied) = load(store, &mut watch, info.state.messages).await?;
    publish(map, fresh, tx, loaded);
    follow(store, &mut watch, map, tx, applied).await
}

/// The watch's backlog — the bucket as it is — and the highest revision
/// in it; done at the entry with nothing pending after it.
async fn load<T: DeserializeOwned>(
    store: &kv::Store,
    watch: &mut kv::Watch,
    messages: u64,
) -> Result<(Map<T>, u64), MirrorError> {
    let mut fresh = BTreeMap::new();
    let mut applied = 0;
    if messages == 0 {
        return Ok((fresh, applied));
    }
    loop {
        let Ok(next) = tokio::time::timeout(LOAD_STALL, watch.next()).await else {
            // Never a partial load in place of the last whole one (readers
            // would act on keys that merely did not arrive yet): done
            // only when the stream is empty by now.
            let info = store.stream.get_info().await.map_err(MirrorError::Info)?;
            if info.state.messages > 0 {
                let last = info.state.last_sequence;
                return Err(MirrorError::Stalled { applied, last });
            }
            return Ok((fresh, applied));
        };
        let entry = next
            .ok_or(MirrorError::Ended)?
            .map_err(MirrorError::Watched)?;
        applied = applied.max(entry.revision);
        let done = entry.delta == 0;
        apply_to(&mut fresh, entry);
        if done {
            return Ok((fresh, applied));
        }
    }
}

/// Applies the watch's updates from `applied` on, until it breaks, its
/// stream is ahead of it at two checks in a row at the same point (its
/// consumer was on a NATS node that died), or its stream went back (made
/// anew).
async fn follow<T: DeserializeOwned>(
    store: &kv::Store,
    watch: &mut kv::Watch,
    map: &RwLock<Map<T>>,
    tx: &watch::Sender<u64>,
    mut applied: u64,
) -> Result<(), MirrorError> {
    let mut behind_at: Option<u64> = None;
    let mut check = tokio::time::interval(STALL_CHECK);
    check.tick().await;
    loop {
        let next = tokio::select! {
            next = watch.next() => next,
            _ = check.tick() => {
                let Ok(info) = store.stream.get_info().await else { continue };
                let last = info.state.last_sequence;
                // A stream made anew under the watch: its values are not
                // the ones mirrored, whatever the watch does next.
                if last < applied {
                    return Err(MirrorError::WentBack { applied, last });
                }
                if last > applied && behind_at == Some(applied) {
                    return Err(MirrorError::Stalled { applied, last });
                }
                behind_at = (last > applied).then_some(applied);
                continue;
            }
        };
        let entry = next
            .ok_or(MirrorError::Ended)?
            .map_err(MirrorError::Watched)?;
        applied = applied.max(entry.revision);
        apply(map, entry);
        tx.send_modify(|n| *n += 1);
    }
}

/// Makes `fresh` the mirror's content and says the load is done.
fn publish<T>(
    map: &RwLock<Map<T>>,
    fresh: Map<T>,
    tx: &watch::Sender<u64>,
    loaded: &mut Option<tokio::sync::oneshot::Sender<()>>,
) {
    *map.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    tx.send_modify(|n| *n += 1);
    if let Some(l) = loaded.take() {
        let _ = l.send(());
    }
}

fn decode<T: DeserializeOwned>(entry: &kv::Entry) -> Option<Versioned<T>> {
    if entry.operation != Operation::Put {
        return None;
    }
    match serde_json::from_slice(&entry.value) {
        Ok(value) => Some(Versioned {
            value,
            revision: entry.revision,
        }),
        Err(e) => {
            tracing::warn!(key = %entry.key, error = %e, "ignoring an undecodable KV entry");
            None
        }
    }
}

fn apply<T: DeserializeOwned>(map: &RwLock<Map<T>>, entry: kv::Entry) {
    apply_to(&mut map.write().unwrap_or_else(|e| e.into_inner()), entry);
}

/// Applies `entry` unless the map has the key at a later revision (an
/// ordered consumer re-created after a reconnect may replay).
fn apply_to<T: DeserializeOwned>(map: &mut Map<T>, entry: kv::Entry) {
    if map
        .get(&entry.key)
        .is_some_and(|v| v.revision >= entry.revision)
    {
        return;
    }
    match decode(&entry) {
        Some(v) => {
            map.insert(entry.key, v);
        }
        None => {
            map.remove(&entry.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nats::testing::{TestNats, wait_until};
    use async_nats::jetstream;

    /// Bound of every wait for the mirror to catch up.
    const WAIT: Duration = Duration::from_secs(15);

    async fn bucket(nats: &TestNats) -> kv::Store {
        let client = (crate::nats::connect(&nats.url(), "mirror-test").await).expect("connect");
        let cfg = kv::Config {
            bucket: "mirror_test".into(),
            history: 1,
            ..Default::default()
        };
        (crate::nats::open_kv(&jetstream::new(client), cfg).await).expect("bucket")
    }

    async fn put(kv: &kv::Store, key: &str, value: u32) -> u64 {
        let bytes = serde_json::to_vec(&value).expect("json");
        kv.put(key, bytes.into()).await.expect("put")
    }

    fn values(view: &MirrorView<u32>) -> Vec<(String, u32)> {
        (view.all().into_iter())
            .map(|(k, v)| (k, v.value))
            .collect()
    }

    fn pairs(expected: &[(&str, u32)]) -> Vec<(String, u32)> {
        (expected.iter())
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }

    #[tokio::test]
    async fn the_first_load_has_every_key_with_its_revision() {
        let nats = TestNats::start();
        let kv = bucket(&nats).await;
        put(&kv, "a", 1).await;
        let b = put(&kv, "b", 2).await;
        kv.put("junk", "not json".into()).await.expect("put");
        let deleted = put(&kv, "gone", 3).await;
        kv.delete("gone").await.expect("delete");
        let mirror: Mirror<u32> = Mirror::start(kv.clone()).await;
        let view = mirror.view();
        assert!(view.loaded(), "loaded once start returns");
        assert_eq!(
            values(&view),
            pairs(&[("a", 1), ("b", 2)]),
            "undecodable and deleted keys are left out"
        );
        assert_eq!(view.get("b").map(|v| v.revision), Some(b));
        assert!(deleted > b);
    }

    #[tokio::test]
    async fn an_empty_bucket_loads_as_known_and_empty() {
        let nats = TestNats::start();
        let mirror: Mirror<u32> = Mirror::start(bucket(&nats).await).await;
        let view = mirror.view();
        assert!(view.loaded());
        assert!(view.all().is_empty());
    }

    #[tokio::test]
    async fn updates_and_deletes_follow_and_wake_the_watchers() {
        let nats = TestNats::start();
        let kv = bucket(&nats).await;
        put(&kv, "a", 1).await;
        put(&kv, "b", 2).await;
        let mirror: Mirror<u32> = Mirror::start(kv.clone()).await;
        let view = mirror.view();
        let mut changes = view.changes();
        changes.mark_unchanged();
        let a2 = put(&kv, "a", 10).await;
        kv.delete("b").await.expect("delete");
        put(&kv, "c", 3).await;
        wait_until("the mirror to follow", WAIT, || {
            values(&view) == pairs(&[("a", 10), ("c", 3)])
        })
        .await;
        assert_eq!(view.get("a").map(|v| v.revision), Some(a2));
        let woken = tokio::time::timeout(WAIT, changes.changed()).await;
        assert!(matches!(woken, Ok(Ok(()))), "a change wakes its watchers");
        // A purge (as the bucket's max age would) removes the key too.
        kv.purge("c").await.expect("purge");
        wait_until("the purge", WAIT, || view.get("c").is_none()).await;
    }

    #[tokio::test]
    async fn the_mirror_catches_up_after_nats_restarts() {
        let mut nats = TestNats::start();
        let kv = bucket(&nats).await;
        put(&kv, "a", 1).await;
        let mirror: Mirror<u32> = Mirror::start(kv.clone()).await;
        let view = mirror.view();
        assert_eq!(values(&view), pairs(&[("a", 1)]));
        nats.stop();
        nats.resume();
        // The client reconnects on its own; writes fail until it has.
        let bytes = || serde_json::to_vec(&2u32).expect("json");
        let started = std::time::Instant::now();
        while kv.put("a", bytes().into()).await.is_err() {
            assert!(started.elapsed() < WAIT, "no reconnect within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        put(&kv, "b", 5).await;
        wait_until("the mirror after the restart", WAIT, || {
            values(&view) == pairs(&[("a", 2), ("b", 5)])
        })
        .await;
        assert!(view.loaded());
    }
}
