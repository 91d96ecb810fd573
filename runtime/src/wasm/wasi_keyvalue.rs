//! `wasi:keyvalue/store` (0.2.0-draft, WIT in `sdk/wit/keyvalue/`) for
//! components: each bucket a component opens is its app's, kept by the
//! host's `KeyValue` backend (`links.rs`; the cluster's JetStream, see
//! `crate::app_state`), so state outlives instances and hosts. `atomics` and
//! `batch` are not linked: a component importing them fails to start with
//! the missing import named.

use wasmtime::component::{HasSelf, Linker, Resource};

use super::host::HostState;
use super::links::{KvRoute, MAX_KEY_BYTES, MAX_VALUE_BYTES};

wasmtime::component::bindgen!({
    path: "../sdk/wit/keyvalue",
    world: "wasi:keyvalue/imports",
    imports: { default: async | trappable },
    with: {
        "wasi:keyvalue/store.bucket": Bucket,
    },
    trappable_error_type: {
        "wasi:keyvalue/store.error" => KvError,
    },
});

use wasi::keyvalue::store;

/// A bucket a component opened: its app's bucket of that name.
pub struct Bucket {
    name: String,
}

/// What a store call can fail with, as the guest sees it.
#[derive(Debug)]
pub enum KvError {
    AccessDenied,
    Other(String),
}

impl From<wasmtime::component::ResourceTableError> for KvError {
    fn from(e: wasmtime::component::ResourceTableError) -> Self {
        KvError::Other(e.to_string())
    }
}

/// Links `wasi:keyvalue/store`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    store::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

impl store::Host for HostState {
    async fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, KvError> {
        if self.kv.is_none() {
            return Err(KvError::AccessDenied);
        }
        if !valid_name(&identifier) {
            return Err(KvError::Other(format!(
                "invalid bucket name {identifier:?}: use up to 64 letters, digits, '-' and '_' (or \"\" for the default bucket)"
            )));
        }
        let name = if identifier.is_empty() {
            "default".to_string()
        } else {
            identifier
        };
        Ok(self.table().push(Bucket { name })?)
    }

    fn convert_error(&mut self, err: KvError) -> wasmtime::Result<store::Error> {
        Ok(match err {
            KvError::AccessDenied => store::Error::AccessDenied,
            KvError::Other(m) => store::Error::Other(m),
        })
    }
}

impl store::HostBucket for HostState {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, KvError> {
        let (route, name) = self.bucket(&bucket)?;
        check_key(&key)?;
        route
            .store
            .get(&route.app, &name, &key)
            .await
            .map_err(|e| KvError::Other(e.to_string()))
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), KvError> {
        let (route, name) = self.bucket(&bucket)?;
        check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvError::Other(format!(
                "value of {} bytes for key {key:?} is over the limit of {MAX_VALUE_BYTES} bytes",
                value.len()
            )));
        }
        route
            .store
            .set(&route.app, &name, &key, value)
            .await
            .map_err(|e| KvError::Other(e.to_string()))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), KvError> {
        let (route, name) = self.bucket(&bucket)?;
        check_key(&key)?;
        route
            .store
            .delete(&route.app, &name, &key)
            .await
            .map_err(|e| KvError::Other(e.to_string()))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, KvError> {
        let (route, name) = self.bucket(&bucket)?;
        check_key(&key)?;
        let value = route
            .store
            .get(&route.app, &name, &key)
            .await
            .map_err(|e| KvError::Other(e.to_string()))?;
        Ok(value.is_some())
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Result<store::KeyResponse, KvError> {
        /// Keys per page.
        const PAGE: usize = 1000;
        let (route, name) = self.bucket(&bucket)?;
        let keys = route
            .store
            .keys(&route.app, &name)
            .await
            .map_err(|e| KvError::Other(e.to_string()))?;
        let start = usize::try_from(cursor.unwrap_or(0))
            .unwrap_or(usize::MAX)
            .min(keys.len());
        let end = (start + PAGE).min(keys.len());
        Ok(store::KeyResponse {
            keys: keys[start..end].to_vec(),
            cursor: (end < keys.len()).then_some(end as u64),
        })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table().delete(bucket)?;
        Ok(())
    }
}

impl HostState {
    fn bucket(&mut self, bucket: &Resource<Bucket>) -> Result<(KvRoute, String), KvError> {
        let name = self.table().get(bucket)?.name.clone();
        let route = self.kv.clone().ok_or(KvError::AccessDenied)?;
        Ok((route, name))
    }
}

fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(KvError::Other(format!(
            "keys must be 1 to {MAX_KEY_BYTES} bytes long"
        )));
    }
    Ok(())
}
