//! Where secret and config values are kept: a servers-only KV bucket,
//! one entry per value (`<app>.<kind>.<name>.<digest>`), each sealed with
//! the cluster's secrets key ([`super::cipher`]). A deploy keeps the values
//! its services mount and writes their digests into the services; hosts
//! get the plaintext from a server ([`super::answer`]), never from here.

use std::collections::BTreeMap;
use std::path::Path;

use async_nats::jetstream::{self, kv};
use atoll_sdk::protocol::{FileRef, Names};
use atoll_sdk::spec::{App, FileKind, FileSource, MAX_FILE_VALUE};

use super::cipher::{Cipher, CipherError, random_material};

/// Where a lab cluster (no identity) keeps its key material, in the
/// bucket itself: anyone who reads NATS can read its secrets, as anyone
/// who reaches its API can deploy.
const INSECURE_MATERIAL: &str = "_insecure-material";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "{path}: no value came with the deploy (`atoll deploy` reads `file:` and `environment:` and sends them)"
    )]
    Missing { path: String },
    #[error("{path}: {len} bytes is more than the {} KiB a value may hold", MAX_FILE_VALUE / 1024)]
    TooLarge { path: String, len: usize },
    #[error("this server cannot keep secrets: {0}")]
    NoKey(String),
    #[error("the secrets bucket: {0}")]
    Bucket(String),
    #[error(transparent)]
    Cipher(#[from] CipherError),
}

/// The bucket and the key.
pub struct Vault {
    store: kv::Store,
    cipher: Result<Cipher, String>,
}

impl Vault {
    /// Opens (or makes) the bucket; the key comes from the identity's
    /// account seed, or for a server without an identity from the bucket.
    pub async fn open(
        js: &jetstream::Context,
        names: &Names,
        replicas: usize,
        identity: Option<&Path>,
    ) -> Result<Vault, VaultError> {
        let cfg = kv::Config {
            bucket: names.secrets_bucket(),
            history: 1,
            num_replicas: replicas,
            ..Default::default()
        };
        let store = (atoll_sdk::nats::open_kv(js, cfg).await)
            .map_err(|e| VaultError::Bucket(e.to_string()))?;
        let material = match identity {
            Some(dir) => {
                let path = dir.join(crate::identity::NATS_ACCOUNT_SEED);
                std::fs::read_to_string(&path)
                    .map(|s| s.trim().as_bytes().to_vec())
                    .map_err(|e| {
                        format!(
                            "{} is missing ({e}): the secrets key is derived from it",
                            path.display()
                        )
                    })
            }
            None => insecure_material(&store).await,
        };
        let cipher =
            material.and_then(|m| Cipher::derive(&m, &names.cluster).map_err(|e| e.to_string()));
        Ok(Vault { store, cipher })
    }

    fn cipher(&self) -> Result<&Cipher, VaultError> {
        self.cipher
            .as_ref()
            .map_err(|e| VaultError::NoKey(e.clone()))
    }

    /// Keeps the value of every secret and config `app`'s services mount
    /// (from `sent`, or a config's `content:`) and writes each value's
    /// digest into the mounts.
    pub async fn keep_for(
        &self,
        app: &mut App,
        declared: &Declared<'_>,
        sent: &Sent<'_>,
    ) -> Result<(), VaultError> {
        self.fill(app, declared, sent, true).await
    }

    /// The digests [`Vault::keep_for`] would give `app`'s mounts, storing
    /// nothing (`atoll deploy --dry-run`).
    pub async fn digests_for(
        &self,
        app: &mut App,
        declared: &Declared<'_>,
        sent: &Sent<'_>,
    ) -> Result<(), VaultError> {
        self.fill(app, declared, sent, false).await
    }

    async fn fill(
        &self,
        app: &mut App,
        declared: &Declared<'_>,
        sent: &Sent<'_>,
        store: bool,
    ) -> Result<(), VaultError> {
        let mut digests: BTreeMap<(FileKind, String), String> = BTreeMap::new();
        for svc in app.services.values() {
            for f in &svc.files {
                let key = (f.kind, f.name.clone());
                if digests.contains_key(&key) {
                    continue;
                }
                let path = format!("{}.{}", f.kind.key(), f.name);
                let value = value_of(f.kind, &f.name, declared, sent)
                    .ok_or_else(|| VaultError::Missing { path: path.clone() })?;
                if value.len() > MAX_FILE_VALUE {
                    let len = value.len();
                    return Err(VaultError::TooLarge { path, len });
                }
                let digest = match store {
                    true => self.keep(&app.name, f.kind, &f.name, &value).await?,
                    false => (self.cipher()?).digest(
                        &format!("{}/{}/{}", app.name, f.kind.noun(), f.name),
                        &value,
                    ),
                };
                digests.insert(key, digest);
            }
        }
        for svc in app.services.values_mut() {
            for f in &mut svc.files {
                if let Some(d) = digests.get(&(f.kind, f.name.clone())) {
                    f.digest = d.clone();
                }
            }
        }
        Ok(())
    }

    /// Seals and stores one value (unless it is stored already); its digest.
    async fn keep(
        &self,
        app: &str,
        kind: FileKind,
        name: &str,
        value: &[u8],
    ) -> Result<String, VaultError> {
        let cipher = self.cipher()?;
        let digest = cipher.digest(&format!("{app}/{}/{name}", kind.noun()), value);
        let key = entry_key(app, kind, name, &digest);
        if let Ok(Some(_)) = self.store.get(&key).await {
            return Ok(digest);
        }
        let sealed = cipher.seal(&key, value)?;
        (self.store.put(&key, sealed.into()).await)
            .map_err(|e| VaultError::Bucket(e.to_string()))?;
        Ok(digest)
    }

    /// The value of `what` of `app`, when stored.
    pub async fn value(&self, app: &str, what: &FileRef) -> Result<Option<Vec<u8>>, VaultError> {
        let cipher = self.cipher()?;
        let key = entry_key(app, what.kind, &what.name, &what.digest);
        let entry = atoll_sdk::nats::leader_entry(&self.store, &key)
            .await
            .map_err(|e| VaultError::Bucket(e.to_string()))?;
        match entry {
            Some(e) => Ok(Some(cipher.open(&key, &e.value)?)),
            None => Ok(None),
        }
    }

    /// Deletes every value of `app`, leaving not even a delete marker
    /// (a purge of the stream's subjects under the app).
    pub async fn remove_app(&self, app: &str) -> Result<(), VaultError> {
        let subjects = format!("{}{app}.>", self.store.prefix);
        (self.store.stream.purge().filter(subjects).await)
            .map(|_| ())
            .map_err(|e| VaultError::Bucket(e.to_string()))
    }
}

/// The top-level declarations of the deployed file.
pub struct Declared<'a> {
    pub secrets: &'a BTreeMap<String, FileSource>,
    pub configs: &'a BTreeMap<String, FileSource>,
}

/// The values the CLI sent with the deploy.
pub struct Sent<'a> {
    pub secrets: &'a BTreeMap<String, Vec<u8>>,
    pub configs: &'a BTreeMap<String, Vec<u8>>,
}

/// A mount's value: a config's `content:`, else what the CLI sent.
fn value_of(kind: FileKind, name: &str, declared: &Declared, sent: &Sent) -> Option<Vec<u8>> {
    let (sources, values) = match kind {
        FileKind::Secret => (declared.secrets, sent.secrets),
        FileKind::Config => (declared.configs, sent.configs),
    };
    match sources.get(name)? {
        FileSource::Content(text) => Some(text.as_bytes().to_vec()),
        _ => values.get(name).cloned(),
    }
}

fn entry_key(app: &str, kind: FileKind, name: &str, digest: &str) -> String {
    format!("{app}.{}.{name}.{digest}", kind.noun())
}

/// A lab cluster's key material: made once by whichever server comes
/// first, read by the others.
async fn insecure_material(store: &kv::Store) -> Result<Vec<u8>, String> {
    for _ in 0..3 {
        if let Ok(Some(m)) = store.get(INSECURE_MATERIAL).await {
            return Ok(m.to_vec());
        }
        let fresh = random_material().map_err(|e| e.to_string())?;
        if store
            .create(INSECURE_MATERIAL, fresh.to_vec().into())
            .await
            .is_ok()
        {
            tracing::warn!(
                "--insecure: secrets are sealed with a key kept in NATS; anyone who reads NATS can read them"
            );
            return Ok(fresh.to_vec());
        }
    }
    Err("cannot read or make the key material of a cluster without an identity".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_comes_from_the_file_and_the_rest_from_the_deploy() {
        let secrets = BTreeMap::from([("pw".to_string(), FileSource::File("./pw".into()))]);
        let configs = BTreeMap::from([
            ("c".to_string(), FileSource::Content("text".into())),
            ("e".to_string(), FileSource::Environment("E".into())),
        ]);
        let declared = Declared {
            secrets: &secrets,
            configs: &configs,
        };
        let sent_secrets = BTreeMap::from([("pw".to_string(), b"hunter2".to_vec())]);
        let sent = Sent {
            secrets: &sent_secrets,
            configs: &BTreeMap::new(),
        };
        let v = |k, n| value_of(k, n, &declared, &sent);
        assert_eq!(v(FileKind::Secret, "pw"), Some(b"hunter2".to_vec()));
        assert_eq!(v(FileKind::Config, "c"), Some(b"text".to_vec()));
        assert_eq!(v(FileKind::Config, "e"), None);
        assert_eq!(v(FileKind::Config, "pw"), None);
        assert_eq!(v(FileKind::Secret, "nope"), None);
    }
}
