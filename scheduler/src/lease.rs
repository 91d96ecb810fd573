//! Leader election through a KV lease: one key, created by whoever gets it
//! first, renewed with compare-and-set, expiring with the bucket's max age
//! when its holder dies (expiry is the bucket's business, so no clock is
//! read here). Only the leader runs the controller.
//!
//! The key is reached through [`LeaseStore`]: the NATS bucket is one
//! implementation, and the decisions — renew, take a free lease, take back
//! one's own lease after a restart, give up a lost one — are tested against
//! a fake.

use crate::cas::CasError;
use async_nats::jetstream::kv;

const KEY: &str = "controller";

/// The lease key as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    /// The server holding it (`None`: a value that is not a name).
    pub holder: Option<String>,
    pub revision: u64,
}

/// The lease's key in its bucket: all the I/O the lease does.
pub(crate) trait LeaseStore {
    type Error: std::fmt::Display;

    /// Writes `holder` unless the key exists; the new revision.
    async fn create(&self, holder: &str) -> Result<u64, Self::Error>;

    /// Writes `holder` if the key is still at `revision`; the new revision.
    async fn update(&self, holder: &str, revision: u64) -> Result<u64, Self::Error>;

    /// The key, if someone holds it (and it could be read).
    async fn held(&self) -> Option<Held>;
}

impl LeaseStore for kv::Store {
    type Error = CasError;

    async fn create(&self, holder: &str) -> Result<u64, CasError> {
        let value = holder.to_string().into();
        Ok(kv::Store::create(self, KEY, value).await?)
    }

    async fn update(&self, holder: &str, revision: u64) -> Result<u64, CasError> {
        let value = holder.to_string().into();
        Ok(kv::Store::update(self, KEY, value, revision).await?)
    }

    async fn held(&self) -> Option<Held> {
        let entry = self.entry(KEY).await.ok()??;
        (entry.operation == kv::Operation::Put).then(|| Held {
            holder: String::from_utf8(entry.value.to_vec()).ok(),
            revision: entry.revision,
        })
    }
}

/// Whether a server may take over the lease `held` without waiting for it
/// to expire: only right after it started (`first`), and only a lease held
/// under its own name — its previous life. Later, a lease under its name
/// held by someone else means a misconfigured duplicate name.
pub(crate) fn may_take_back(first: bool, held: &Held, me: &str) -> bool {
    first && held.holder.as_deref() == Some(me)
}

/// One server's side of the lease.
pub(crate) struct Lease<S = kv::Store> {
    store: S,
    me: String,
    /// The key's revision after our last write, while we hold it.
    revision: Option<u64>,
    /// Until the first [`Lease::hold`]: see [`may_take_back`].
    first: bool,
}

impl<S: LeaseStore> Lease<S> {
    pub(crate) fn new(store: S, me: &str) -> Lease<S> {
        Lease {
            store,
            me: me.to_string(),
            revision: None,
            first: true,
        }
    }

    /// Takes or renews the lease; true while this server holds it.
    pub(crate) async fn hold(&mut self) -> bool {
        let first = std::mem::replace(&mut self.first, false);
        if let Some(rev) = self.revision.take() {
            match self.store.update(&self.me, rev).await {
                Ok(next) => {
                    self.revision = Some(next);
                    return true;
                }
                Err(e) => tracing::warn!(error = %e, "lost the controller lease"),
            }
        }
        if let Ok(rev) = self.store.create(&self.me).await {
            self.revision = Some(rev);
            return true;
        }
        if !first {
            return false;
        }
        // A server restarted under the same name takes its own lease back
        // at once instead of waiting for it to expire.
        if let Some(held) = self.store.held().await
            && may_take_back(first, &held, &self.me)
            && let Ok(next) = self.store.update(&self.me, held.revision).await
        {
            self.revision = Some(next);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests;
