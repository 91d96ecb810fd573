//! The supervisor: makes the instances this host runs match its
//! assignment, and tracks each instance's lifecycle for the heartbeats.
//!
//! Starting an instance: fetch its artifact (retried with backoff: the
//! object store may be briefly unreachable), compile and link it (a failure
//! there is final: the artifact itself is bad), then register it with the
//! gateway. Stopping: unregister; requests in flight finish on their own
//! handle.

use crate::artifacts::Artifacts;
use crate::local::LocalInstances;
use crate::wasm::{InstanceConfig, WasmEngine, WasmInstance};
use atoll_sdk::cluster::{ArtifactRef, Assignment, InstanceSpec, InstanceState, InstanceStatus};
use atoll_sdk::protocol::now_ms;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

struct Slot {
    spec: InstanceSpec,
    state: InstanceState,
    reason: Option<String>,
    since_ms: u64,
    task: Option<JoinHandle<()>>,
}

pub struct Supervisor {
    host: String,
    engine: WasmEngine,
    artifacts: Artifacts,
    local: LocalInstances,
    slots: Mutex<BTreeMap<String, Slot>>,
    /// Notified on every state change, so the agent heartbeats at once.
    pub changed: Notify,
}

impl Supervisor {
    pub fn new(
        host: &str,
        engine: WasmEngine,
        artifacts: Artifacts,
        local: LocalInstances,
    ) -> Arc<Self> {
        Arc::new(Supervisor {
            host: host.to_string(),
            engine,
            artifacts,
            local,
            slots: Mutex::default(),
            changed: Notify::new(),
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts what is assigned and not running, stops what runs and is no
    /// longer assigned. Idempotent.
    pub fn converge(self: &Arc<Self>, assignment: &Assignment) {
        let mut slots = self.slots();
        let wanted: BTreeMap<&str, &InstanceSpec> = assignment
            .instances
            .iter()
            .map(|i| (i.id.as_str(), i))
            .collect();
        let gone: Vec<String> = slots
            .keys()
            .filter(|id| !wanted.contains_key(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(slot) = slots.remove(&id) {
                if let Some(task) = slot.task {
                    task.abort();
                }
                self.local.remove(&id);
                tracing::info!(instance = %id, "stopped");
            }
        }
        for (id, spec) in wanted {
            if slots.contains_key(id) {
                continue;
            }
            let task = tokio::spawn(self.clone().start((*spec).clone()));
            slots.insert(
                id.to_string(),
                Slot {
                    spec: spec.clone(),
                    state: InstanceState::Pending,
                    reason: None,
                    since_ms: now_ms(),
                    task: Some(task),
                },
            );
        }
        drop(slots);
        self.changed.notify_one();
    }

    pub fn statuses(&self) -> Vec<InstanceStatus> {
        self.slots()
            .iter()
            .map(|(id, s)| InstanceStatus {
                id: id.clone(),
                app: s.spec.app.clone(),
                service: s.spec.service.clone(),
                revision: s.spec.revision,
                state: s.state,
                reason: s.reason.clone(),
                since_ms: s.since_ms,
            })
            .collect()
    }

    fn set(&self, id: &str, state: InstanceState, reason: Option<String>) {
        if let Some(slot) = self.slots().get_mut(id)
            && (slot.state != state || slot.reason != reason)
        {
            slot.state = state;
            slot.reason = reason;
            slot.since_ms = now_ms();
        }
        self.changed.notify_one();
    }

    async fn start(self: Arc<Self>, spec: InstanceSpec) {
        let digest = match &spec.artifact {
            ArtifactRef::Stored(d) => d.clone(),
            ArtifactRef::Image(r) => {
                let why = format!("image {r}: OCI images are not supported by this host yet");
                return self.fail(&spec.id, why);
            }
        };
        self.set(&spec.id, InstanceState::Pulling, None);
        let bytes = self.fetch_with_backoff(&spec.id, &digest).await;
        self.set(&spec.id, InstanceState::Starting, None);
        let prepared = match self.engine.prepare(&digest, &bytes).await {
            Ok(p) => p,
            Err(e) => return self.fail(&spec.id, e.to_string()),
        };
        let inst = WasmInstance::new(&self.engine, prepared, self.instance_config(&spec));
        {
            // Unassigned meanwhile? `converge` removed the slot (and may
            // have raced this task's abort): never register a zombie.
            let slots = self.slots();
            if !slots.contains_key(&spec.id) {
                return;
            }
            self.local.insert(&spec.id, inst);
        }
        tracing::info!(instance = %spec.id, "running");
        self.set(&spec.id, InstanceState::Running, None);
    }

    /// Retries until it gets the bytes (the slot's task is aborted if the
    /// instance is unassigned meanwhile), reporting each failure.
    async fn fetch_with_backoff(&self, id: &str, digest: &str) -> Vec<u8> {
        let mut delay = Duration::from_millis(250);
        loop {
            match self.artifacts.get(digest).await {
                Ok(b) => return b,
                Err(e) => {
                    tracing::warn!(instance = id, error = %e, "artifact fetch failed; retrying");
                    self.set(id, InstanceState::Failed, Some(e.to_string()));
                }
            }
            let jitter =
                Duration::from_millis(rand::random::<u64>() % (delay.as_millis() as u64 / 2 + 1));
            tokio::time::sleep(delay + jitter).await;
            delay = (delay * 2).min(Duration::from_secs(15));
            self.set(id, InstanceState::Pulling, None);
        }
    }

    fn fail(&self, id: &str, reason: String) {
        tracing::warn!(instance = id, %reason, "instance failed");
        self.set(id, InstanceState::Failed, Some(reason));
    }

    fn instance_config(&self, spec: &InstanceSpec) -> InstanceConfig {
        let mut env: Vec<(String, String)> = vec![
            ("ATOLL_APP".into(), spec.app.clone()),
            ("ATOLL_SERVICE".into(), spec.service.clone()),
            ("ATOLL_INSTANCE".into(), spec.id.clone()),
            ("ATOLL_HOST".into(), self.host.clone()),
        ];
        env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        InstanceConfig {
            env,
            memory_limit: spec.limits.memory,
            timeout: Duration::from_millis(spec.timeout_ms),
        }
    }
}
