//! The values of the secrets and configs this host's instances mount.
//!
//! An instance's spec names each by digest only; before it starts, the
//! supervisor asks a server for the values it does not hold yet
//! ([`FileValues::fetch`], on the host's own subject: the server answers
//! only for mounts the host's assignment holds). The drivers then read
//! them from here. They stay in memory only: a container gets them as
//! files on the host's tmpfs, a component through `wasi:config`. A host
//! that restarts without its uplink cannot start new instances that mount
//! secrets until a server answers (the values are not kept on disk).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atoll_sdk::cluster::InstanceSpec;
use atoll_sdk::protocol::{FileRef, FileValuesRequest, Names};
use atoll_sdk::spec::FileMount;

use crate::joined::Joined;

/// Bound on one request to the servers.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// One value: its app and what it is.
type Key = (String, FileRef);

pub(crate) struct FileValues {
    client: Joined<async_nats::Client>,
    names: Names,
    host: String,
    held: Mutex<BTreeMap<Key, Arc<Vec<u8>>>>,
}

/// A mount with its value.
pub(crate) type Mounted = (FileMount, Arc<Vec<u8>>);

fn file_ref(f: &FileMount) -> FileRef {
    FileRef {
        kind: f.kind,
        name: f.name.clone(),
        digest: f.digest.clone(),
    }
}

impl FileValues {
    pub(crate) fn new(client: Joined<async_nats::Client>, names: Names, host: &str) -> Self {
        FileValues {
            client,
            names,
            host: host.to_string(),
            held: Mutex::default(),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Arc<Vec<u8>>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks a server for the values `spec` mounts that are not held yet;
    /// `Err` says why they could not be had (the caller retries). A server
    /// answers as many as fit one message: the rest are asked for again,
    /// as long as each answer brings some.
    pub(crate) async fn fetch(&self, spec: &InstanceSpec) -> Result<(), String> {
        loop {
            let wanted: BTreeSet<FileRef> = {
                let held = self.held();
                (spec.files.iter())
                    .map(file_ref)
                    .filter(|r| !held.contains_key(&(spec.app.clone(), r.clone())))
                    .collect()
            };
            if wanted.is_empty() {
                return Ok(());
            }
            if self.ask(spec, &wanted).await? == 0 {
                let r = wanted.first().map_or_else(String::new, |r| {
                    format!(" for {} {}", r.kind.noun(), r.name)
                });
                return Err(format!("the server sent no value{r}"));
            }
        }
    }

    /// One request for `wanted`; how many of them came.
    async fn ask(&self, spec: &InstanceSpec, wanted: &BTreeSet<FileRef>) -> Result<usize, String> {
        let client = (self.client.now())
            .ok_or("waiting for NATS: the secrets and configs it mounts come from a server")?;
        let req = FileValuesRequest {
            app: spec.app.clone(),
            wanted: wanted.iter().cloned().collect(),
        };
        let body = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
        let subject = self.names.file_values(&self.host);
        let reply = tokio::time::timeout(ASK_TIMEOUT, client.request(subject, body.into()))
            .await
            .map_err(|_| "no server answered the request for its secrets".to_string())?
            .map_err(|e| format!("asking a server for its secrets: {e}"))?;
        let answer: atoll_sdk::protocol::FileValues = serde_json::from_slice(&reply.payload)
            .map_err(|e| format!("a malformed answer with its secrets: {e}"))?;
        if let Some(e) = answer.error {
            return Err(format!("its secrets were refused: {e}"));
        }
        let mut held = self.held();
        let mut got = 0;
        for v in answer.values {
            if wanted.contains(&v.of) {
                held.insert((spec.app.clone(), v.of), Arc::new(v.value));
                got += 1;
            }
        }
        Ok(got)
    }

    /// The mounts of `spec` with their values; `Err` names one not held.
    pub(crate) fn mounted(&self, spec: &InstanceSpec) -> Result<Vec<Mounted>, String> {
        let held = self.held();
        (spec.files.iter())
            .map(|f| {
                held.get(&(spec.app.clone(), file_ref(f)))
                    .map(|v| (f.clone(), v.clone()))
                    .ok_or_else(|| {
                        format!(
                            "the value of {} {} is not on this host",
                            f.kind.noun(),
                            f.name
                        )
                    })
            })
            .collect()
    }

    /// Forgets every value no instance in `specs` mounts.
    pub(crate) fn keep_only<'a>(&self, specs: impl Iterator<Item = &'a InstanceSpec>) {
        let used: BTreeSet<Key> = specs
            .flat_map(|s| s.files.iter().map(|f| (s.app.clone(), file_ref(f))))
            .collect();
        self.held().retain(|k, _| used.contains(k));
    }
}
