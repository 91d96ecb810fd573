//! Component state in JetStream: one KV bucket per app
//! (`atoll-<cluster>-kv-<app>`), holding every `wasi:keyvalue` bucket the
//! app's components open as `<bucket>.<key>`. State so lives as long as
//! the app's NATS data, whatever happens to instances and hosts.
//!
//! NATS keys allow `[-/_=.a-zA-Z0-9]` with `.` separating tokens, so user
//! keys are escaped: every other byte, and `=` and `.`, as `=XX`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use atoll_sdk::protocol::Names;
use futures::TryStreamExt;
use futures::future::BoxFuture;
use tokio::sync::Mutex;

mod grants;

pub(crate) use grants::Grants;

use crate::joined::Joined;
use crate::wasm::links::{KeyValue, StoreError};

/// Bound on one storage call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The cluster's component state (unavailable until the host reaches
/// NATS).
#[derive(Clone)]
pub struct NatsKv {
    js: Joined<jetstream::Context>,
    names: Names,
    /// For a host with its own NATS user: state over granted connections.
    grants: Option<Arc<Grants>>,
    open: Arc<Mutex<Opened>>,
}

/// The stores opened, under the grant of `generation` (0: none).
#[derive(Default)]
struct Opened {
    generation: u64,
    stores: HashMap<String, kv::Store>,
}

impl NatsKv {
    pub(crate) fn new(js: Joined<jetstream::Context>, names: Names) -> NatsKv {
        NatsKv {
            js,
            names,
            grants: None,
            open: Arc::default(),
        }
    }

    /// Component state through grants ([`grants`]).
    pub(crate) fn with_grants(mut self, grants: Grants) -> NatsKv {
        self.grants = Some(Arc::new(grants));
        self
    }

    async fn store(&self, app: &str) -> Result<kv::Store, StoreError> {
        let mut open = self.open.lock().await;
        let unavailable = |reason: String| StoreError::Unavailable {
            app: app.to_string(),
            reason,
        };
        let js = match &self.grants {
            Some(grants) => {
                let (js, generation) = grants.context_for(app).await?;
                if generation != open.generation {
                    *open = Opened {
                        generation,
                        stores: HashMap::new(),
                    };
                }
                js
            }
            None => (self.js.now())
                .ok_or_else(|| unavailable("this host has not reached NATS yet".to_string()))?,
        };
        if let Some(s) = open.stores.get(app) {
            return Ok(s.clone());
        }
        let bucket = self.names.app_kv_bucket(app);
        let store = match js.get_key_value(&bucket).await {
            Ok(store) => store,
            // A granted user cannot make buckets: the server that granted
            // it made this one.
            Err(e) if self.grants.is_some() => return Err(unavailable(e.to_string())),
            // Made with the replicas the server chose for the cluster's
            // buckets (a host never decides them).
            Err(_) => {
                let replicas = atoll_sdk::nats::replicas::chosen(&js, &self.names).await;
                let cfg = atoll_sdk::nats::app_state_config(&self.names, app, replicas);
                (atoll_sdk::nats::open_kv(&js, cfg).await)
                    .map_err(|e| unavailable(e.to_string()))?
            }
        };
        open.stores.insert(app.to_string(), store.clone());
        Ok(store)
    }
}

/// `bucket.key` with the key escaped for NATS.
pub fn nats_key(bucket: &str, key: &str) -> String {
    let mut out = format!("{bucket}.");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'/' {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// The user key of a NATS key of `bucket`, if it is one.
pub fn user_key(bucket: &str, nats: &str) -> Option<String> {
    let escaped = nats.strip_prefix(bucket)?.strip_prefix('.')?;
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut it = escaped.bytes();
    while let Some(b) = it.next() {
        if b == b'=' {
            let hex = [it.next()?, it.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

async fn bounded<T>(
    op: &'static str,
    f: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(CALL_TIMEOUT, f)
        .await
        .map_err(|_| StoreError::Timeout {
            op,
            timeout: CALL_TIMEOUT,
        })?
}

/// A NATS error of operation `op`.
fn failed(op: &'static str) -> impl Fn(&dyn std::fmt::Display) -> StoreError {
    move |e| StoreError::Failed {
        op,
        reason: e.to_string(),
    }
}

impl KeyValue for NatsKv {
    fn get(
        &self,
        app: &str,
        bucket: &str,
        key: &str,
    ) -> BoxFuture<'static, Result<Option<Vec<u8>>, StoreError>> {
        let (this, app, k) = (self.clone(), app.to_string(), nats_key(bucket, key));
        Box::pin(bounded("get", async move {
            let store = this.store(&app).await?;
            let v = store.get(&k).await.map_err(|e| failed("get")(&e))?;
            Ok(v.map(|b| b.to_vec()))
        }))
    }

    fn set(
        &self,
        app: &str,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let (this, app, k) = (self.clone(), app.to_string(), nats_key(bucket, key));
        Box::pin(bounded("set", async move {
            let store = this.store(&app).await?;
            store
                .put(&k, value.into())
                .await
                .map_err(|e| failed("set")(&e))?;
            Ok(())
        }))
    }

    fn delete(
        &self,
        app: &str,
        bucket: &str,
        key: &str,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let (this, app, k) = (self.clone(), app.to_string(), nats_key(bucket, key));
        Box::pin(bounded("delete", async move {
            let store = this.store(&app).await?;
            // Purge: the key's history goes too, and a later `keys` does
            // not list it.
            store.purge(&k).await.map_err(|e| failed("delete")(&e))?;
            Ok(())
        }))
    }

    fn keys(&self, app: &str, bucket: &str) -> BoxFuture<'static, Result<Vec<String>, StoreError>> {
        let (this, app, bucket) = (self.clone(), app.to_string(), bucket.to_string());
        Box::pin(bounded("list", async move {
            let store = this.store(&app).await?;
            let all: Vec<String> = match store.keys().await {
                Ok(keys) => keys.try_collect().await.map_err(|e| failed("list")(&e))?,
                Err(e) => return Err(failed("list")(&e)),
            };
            let mut keys: Vec<String> = all.iter().filter_map(|k| user_key(&bucket, k)).collect();
            keys.sort();
            Ok(keys)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_the_nats_escaping() {
        for key in ["item-1", "a.b", "with space", "ünï", "x=y", "/path/like"] {
            let n = nats_key("default", key);
            assert!(
                n["default.".len()..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_/=".contains(&b)),
                "{n}"
            );
            assert_eq!(user_key("default", &n).as_deref(), Some(key));
        }
        assert_eq!(user_key("other", &nats_key("default", "k")), None);
    }
}
