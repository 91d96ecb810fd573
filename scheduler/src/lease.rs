//! Leader election through a KV lease: one key, created by whoever gets it
//! first, renewed with compare-and-set, expiring with the bucket's max age
//! when its holder dies. Only the leader runs the controller.

use async_nats::jetstream::kv;

const KEY: &str = "controller";

pub struct Lease {
    kv: kv::Store,
    me: String,
    revision: Option<u64>,
    /// Only a server that just started may take back a lease held under
    /// its own name (its previous life); later, a lease under our name
    /// held by someone else means a misconfigured duplicate name.
    first: bool,
}

impl Lease {
    pub fn new(kv: kv::Store, me: &str) -> Lease {
        Lease {
            kv,
            me: me.to_string(),
            revision: None,
            first: true,
        }
    }

    /// Takes or renews the lease; true while this server holds it.
    pub async fn hold(&mut self) -> bool {
        let first = std::mem::replace(&mut self.first, false);
        if let Some(rev) = self.revision {
            match self.kv.update(KEY, self.me.clone().into(), rev).await {
                Ok(next) => {
                    self.revision = Some(next);
                    return true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lost the controller lease");
                    self.revision = None;
                }
            }
        }
        if let Ok(rev) = self.kv.create(KEY, self.me.clone().into()).await {
            self.revision = Some(rev);
            return true;
        }
        // A server restarted under the same name takes its own lease back
        // at once instead of waiting for it to expire.
        if first
            && let Ok(Some(entry)) = self.kv.entry(KEY).await
            && entry.operation == kv::Operation::Put
            && entry.value == self.me.as_bytes()
            && let Ok(next) = self
                .kv
                .update(KEY, self.me.clone().into(), entry.revision)
                .await
        {
            self.revision = Some(next);
            return true;
        }
        false
    }
}
