//! Leader election through a KV lease: one key, created by whoever gets it
//! first, renewed with compare-and-set, expiring with the bucket's max age
//! when its holder stops renewing. Only the leader runs the controller.
//!
//! Leadership is fenced. Each tenure has an **epoch**: the KV revision at
//! which the key was created, which only grows, kept in the key's value
//! through renewals. The lease is renewed in a task of its own ([`run`]),
//! which publishes a [`Fence`]: the epoch and a deadline — when the last
//! renewal was *sent*, plus the TTL, less a margin, on the monotonic clock.
//! The controller checks the fence before every write and stamps what it
//! writes with the epoch; a leader that was paused past its deadline (the
//! key may have expired and gone to another) writes nothing when it wakes.
//!
//! A renewal whose answer was lost does not cost leadership when the key
//! still names this server in this epoch. The key is reached through
//! [`LeaseStore`]: the NATS bucket is one implementation, and the
//! decisions are tested against a fake.

pub(crate) mod fence;
mod stale;

pub(crate) use fence::Fence;

use crate::cas::CasError;
use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const KEY: &str = "controller";

/// The lease key as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    /// The server holding it (`None`: a value that is not a lease).
    pub holder: Option<String>,
    /// The tenure: the revision the key was created at.
    pub epoch: u64,
    pub revision: u64,
}

/// The key's value.
#[derive(Debug, Serialize, Deserialize)]
struct Value {
    holder: String,
    /// Absent in the value written when the key is created: the epoch is
    /// then the key's revision.
    #[serde(default)]
    epoch: Option<u64>,
}

/// Reads the lease key's value written at `revision`; a plain name is an
/// older server's.
pub(crate) fn read(bytes: &[u8], revision: u64) -> Held {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Held {
            holder: Some(v.holder),
            epoch: v.epoch.unwrap_or(revision),
            revision,
        },
        Err(_) => Held {
            holder: String::from_utf8(bytes.to_vec()).ok(),
            epoch: revision,
            revision,
        },
    }
}

fn encode(holder: &str, epoch: Option<u64>) -> bytes::Bytes {
    let v = Value {
        holder: holder.to_string(),
        epoch,
    };
    serde_json::to_vec(&v).unwrap_or_default().into()
}

/// The lease's key in its bucket: all the I/O the lease does.
pub(crate) trait LeaseStore {
    type Error: std::fmt::Display;

    /// Writes `value` unless the key exists; the new revision.
    async fn create(&self, value: bytes::Bytes) -> Result<u64, Self::Error>;

    /// Writes `value` if the key is still at `revision`; the new revision.
    async fn update(&self, value: bytes::Bytes, revision: u64) -> Result<u64, Self::Error>;

    /// The key, if someone holds it (and it could be read).
    async fn held(&self) -> Option<Held>;
}

impl LeaseStore for kv::Store {
    type Error = CasError;

    async fn create(&self, value: bytes::Bytes) -> Result<u64, CasError> {
        Ok(kv::Store::create(self, KEY, value).await?)
    }

    async fn update(&self, value: bytes::Bytes, revision: u64) -> Result<u64, CasError> {
        Ok(kv::Store::update(self, KEY, value, revision).await?)
    }

    async fn held(&self) -> Option<Held> {
        // From the stream's leader: a lagging replica would show a lease
        // that looks unrenewed (a follower then tries to take it over, and
        // fails its compare-and-set) or one already taken over.
        let entry = atoll_sdk::nats::leader_entry(self, KEY).await.ok()??;
        Some(read(&entry.value, entry.revision))
    }
}

/// Whether a server may take over the lease `held` without waiting for it
/// to expire: only right after it started (`first`), and only a lease held
/// under its own name — its previous life. Later, a lease under its name
/// held by someone else means a misconfigured duplicate name.
pub(crate) fn may_take_back(first: bool, held: &Held, me: &str) -> bool {
    first && held.holder.as_deref() == Some(me)
}

/// What one attempt to hold the lease gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// This server leads in `epoch`; `renewed` when the key was written
    /// now (false: the write's answer was lost and the key still names
    /// this server, but this attempt did not extend it).
    Leading {
        epoch: u64,
        renewed: bool,
    },
    Following,
}

/// One server's side of the lease.
pub(crate) struct Lease<S = kv::Store> {
    store: S,
    me: String,
    /// The key's revision after our last write, and our epoch, while we
    /// hold it.
    held: Option<(u64, u64)>,
    /// Until the first [`Lease::hold`]: see [`may_take_back`].
    first: bool,
    /// A holder that has not renewed for this long has stopped
    /// ([`stale`]); `None`: only the key's expiry frees it.
    ttl: Option<Duration>,
    /// The key's revision as this follower last saw it, and since when.
    seen: Option<stale::Sighting>,
}

impl<S: LeaseStore> Lease<S> {
    pub(crate) fn new(store: S, me: &str) -> Lease<S> {
        Lease {
            store,
            me: me.to_string(),
            held: None,
            first: true,
            ttl: None,
            seen: None,
        }
    }

    /// Takes over a lease whose holder has not renewed it for `ttl`, as
    /// this server sees it, rather than waiting for the key to expire.
    pub(crate) fn observing(mut self, ttl: Duration) -> Lease<S> {
        self.ttl = Some(ttl);
        self
    }

    /// Takes or renews the lease.
    pub(crate) async fn hold(&mut self) -> Hold {
        self.hold_at(Instant::now()).await
    }

    /// [`hold`](Self::hold), judging staleness at `now`.
    pub(crate) async fn hold_at(&mut self, now: Instant) -> Hold {
        let first = std::mem::replace(&mut self.first, false);
        if let Some((rev, epoch)) = self.held.take() {
            match self.store.update(encode(&self.me, Some(epoch)), rev).await {
                Ok(next) => {
                    self.held = Some((next, epoch));
                    return Hold::Leading {
                        epoch,
                        renewed: true,
                    };
                }
                Err(e) => {
                    // The answer may be what was lost: the key decides.
                    if let Some(h) = self.store.held().await
                        && h.holder.as_deref() == Some(self.me.as_str())
                        && h.epoch == epoch
                    {
                        self.held = Some((h.revision, epoch));
                        let renewed = h.revision > rev;
                        return Hold::Leading { epoch, renewed };
                    }
                    tracing::warn!(error = %e, "lost the controller lease");
                }
            }
        }
        if let Ok(rev) = self.store.create(encode(&self.me, None)).await {
            self.held = Some((rev, rev));
            return Hold::Leading {
                epoch: rev,
                renewed: true,
            };
        }
        if !first {
            return self.take_over_if_stale(now).await;
        }
        // A server restarted under the same name takes its own lease back
        // at once instead of waiting for it to expire (a new epoch: the
        // old life must not act on).
        if let Some(held) = self.store.held().await
            && may_take_back(first, &held, &self.me)
            && let Ok(next) = (self.store)
                .update(encode(&self.me, Some(held.revision + 1)), held.revision)
                .await
        {
            // A new epoch, after the old life's (which is at most the
            // key's revision then).
            let epoch = held.revision + 1;
            self.held = Some((next, epoch));
            return Hold::Leading {
                epoch,
                renewed: true,
            };
        }
        Hold::Following
    }

    /// Takes the lease over when its holder stopped renewing it (see
    /// [`stale`]): a compare-and-set at the revision seen, in a new epoch.
    async fn take_over_if_stale(&mut self, now: Instant) -> Hold {
        let (Some(ttl), Some(held)) = (self.ttl, self.store.held().await) else {
            self.seen = None;
            return Hold::Following;
        };
        if !stale::stale(&mut self.seen, held.revision, now, ttl) {
            return Hold::Following;
        }
        let epoch = held.revision + 1;
        match (self.store)
            .update(encode(&self.me, Some(epoch)), held.revision)
            .await
        {
            Ok(next) => {
                tracing::info!(
                    previous = held.holder.as_deref().unwrap_or("?"),
                    ?ttl,
                    "the lease was not renewed for its TTL: taking over"
                );
                self.held = Some((next, epoch));
                self.seen = None;
                Hold::Leading {
                    epoch,
                    renewed: true,
                }
            }
            Err(_) => Hold::Following,
        }
    }
}

/// Holds (or waits for) the lease for as long as it runs, publishing the
/// current [`Fence`]: every `ttl / 4` while leading, twice as often while
/// following (a lease freed by a dead leader is taken within the TTL and
/// half a second).
pub(crate) async fn run<S: LeaseStore>(
    mut lease: Lease<S>,
    ttl: Duration,
    tx: watch::Sender<Fence>,
) {
    let mut fence = Fence::following();
    loop {
        let sent = Instant::now();
        let hold = lease.hold().await;
        let before = fence.epoch();
        fence = fence.after(hold, sent, ttl);
        match (before, fence.epoch()) {
            (b, Some(epoch)) if b != Some(epoch) => tracing::info!(epoch, "leading"),
            (Some(epoch), None) => tracing::warn!(epoch, "no longer leading: following"),
            _ => {}
        }
        tx.send_if_modified(|f| {
            let changed = *f != fence;
            *f = fence;
            changed
        });
        let wait = if fence.leading() { ttl / 4 } else { ttl / 8 };
        tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
    }
}

/// Makes the lease bucket's keys live `ttl` (the bucket may have been
/// made with another by whoever opened it first): a lease not renewed for
/// `ttl` expires, and the next server takes it.
pub(crate) async fn set_ttl(buckets: &atoll_sdk::nats::Buckets, ttl: Duration) {
    let stream = format!("KV_{}", buckets.names.leader_bucket());
    let result = async {
        let mut s = buckets
            .js
            .get_stream(&stream)
            .await
            .map_err(|e| e.to_string())?;
        let mut config = s.info().await.map_err(|e| e.to_string())?.config.clone();
        if config.max_age != ttl {
            config.max_age = ttl;
            // JetStream refuses a duplicates window longer than the age.
            config.duplicate_window = config.duplicate_window.min(ttl);
            buckets
                .js
                .update_stream(config)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, ?ttl, "cannot set the lease's TTL on its bucket");
    }
}

#[cfg(test)]
mod tests;
