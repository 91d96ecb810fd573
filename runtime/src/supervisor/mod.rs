//! The supervisor: makes the instances this host runs match its
//! assignment, and tracks each instance's lifecycle for the heartbeats.
//!
//! Starting a component: fetch its artifact (retried with backoff: the
//! object store may be briefly unreachable), compile and link it (a failure
//! there is final: the artifact itself is bad), then register it with the
//! gateway. Stopping: unregister; requests in flight finish on their own
//! handle. Image services (containers, and components published as OCI
//! artifacts) are in [`image`]; stopping a container is asynchronous
//! (SIGTERM, grace period, SIGKILL, clean-up), tracked until it is done.

mod health;
mod image;

use crate::artifacts::Artifacts;
use crate::container::{Containers, DEFAULT_GRACE};
use crate::local::{Local, LocalInstances};
use crate::logs::LogPaths;
use crate::oci::pull::Puller;
use crate::wasm::keyvalue::{KeyValue, KvRoute};
use crate::wasm::{InstanceConfig, Outbound, OutboundRoute, WasmEngine, WasmInstance};
use atoll_sdk::cluster::{
    ArtifactRef, Assignment, HealthState, InstanceSpec, InstanceState, InstanceStatus, PullBytes,
};
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
    restarts: u32,
    pull: Option<PullBytes>,
    /// The container's init process, while it runs.
    pid: Option<i32>,
    /// When this host was told to run it (start-up time is measured from
    /// here).
    assigned: std::time::Instant,
    /// The health check's verdict, when it has one.
    health: Option<HealthState>,
    /// The health watcher, while it runs.
    watcher: Option<JoinHandle<()>>,
    /// Liveness restarts since it was last healthy.
    health_restarts: u32,
    /// Set when the host stops the container for failing its health
    /// check: the exit reason to report instead of the signal.
    killed_for: Option<health::Kill>,
    /// Failed, and this host will not start it again.
    gave_up: bool,
}

/// Exponential backoff with jitter (up to half the delay), for retries
/// that must not hammer what failed.
struct Backoff {
    delay: Duration,
    max: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { delay: first, max }
    }

    /// How long the next wait will be at least.
    fn delay(&self) -> Duration {
        self.delay
    }

    async fn wait(&mut self) {
        let half = self.delay.as_millis() as u64 / 2;
        let jitter = Duration::from_millis(rand::random::<u64>() % (half + 1));
        tokio::time::sleep(self.delay + jitter).await;
        self.delay = (self.delay * 2).min(self.max);
    }
}

/// What components reach beyond themselves: their app's services (through
/// the gateway) and their app's key-value state.
#[derive(Clone, Default)]
pub struct ComponentLinks {
    pub outbound: Option<Arc<dyn Outbound>>,
    pub kv: Option<Arc<dyn KeyValue>>,
}

/// How this host runs image services.
pub struct ImageSupport {
    pub puller: Arc<Puller>,
    /// `Err` says why this host cannot run containers (no OCI runtime, no
    /// bridge); Wasm artifacts from registries still run.
    pub containers: Result<Arc<Containers>, String>,
}

pub struct Supervisor {
    host: String,
    engine: WasmEngine,
    artifacts: Artifacts,
    local: LocalInstances,
    images: ImageSupport,
    logs: LogPaths,
    links: ComponentLinks,
    slots: Mutex<BTreeMap<String, Slot>>,
    /// Containers being stopped and cleaned up.
    stopping: Mutex<Vec<JoinHandle<()>>>,
    /// Notified on every state change, so the agent heartbeats at once.
    pub changed: Notify,
    /// Itself, for the tasks it starts (health watchers).
    me: std::sync::Weak<Supervisor>,
}

impl Supervisor {
    pub fn new(
        host: &str,
        engine: WasmEngine,
        artifacts: Artifacts,
        local: LocalInstances,
        images: ImageSupport,
        logs: LogPaths,
        links: ComponentLinks,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Supervisor {
            host: host.to_string(),
            engine,
            artifacts,
            local,
            images,
            logs,
            links,
            slots: Mutex::default(),
            stopping: Mutex::default(),
            changed: Notify::new(),
            me: me.clone(),
        })
    }

    pub fn containers(&self) -> Option<&Arc<Containers>> {
        self.images.containers.as_ref().ok()
    }

    /// Stops everything and waits (bounded) until the containers are gone.
    /// With `keep_containers`, containers are left running for the next
    /// run of the host to adopt.
    pub async fn shutdown(self: &Arc<Self>, keep_containers: bool) {
        if keep_containers {
            let slots = std::mem::take(&mut *self.slots());
            for slot in slots.into_values() {
                for t in [slot.task, slot.watcher].into_iter().flatten() {
                    t.abort();
                }
            }
        } else {
            self.converge(&Assignment::default());
        }
        let handles = std::mem::take(&mut *self.stopping.lock().unwrap_or_else(|e| e.into_inner()));
        let all = futures::future::join_all(handles);
        if tokio::time::timeout(DEFAULT_GRACE + Duration::from_secs(10), all)
            .await
            .is_err()
        {
            tracing::warn!("some containers were still stopping at shutdown");
        }
        if !keep_containers && let Some(containers) = self.containers() {
            containers.teardown().await;
        }
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
            if let Some(mut slot) = slots.remove(&id) {
                for task in [slot.task.take(), slot.watcher.take()]
                    .into_iter()
                    .flatten()
                {
                    task.abort();
                }
                self.drain_and_stop(&id, &slot);
                let _ = std::fs::remove_file(self.logs.component(&id));
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
                    restarts: 0,
                    pull: None,
                    pid: None,
                    assigned: std::time::Instant::now(),
                    health: None,
                    watcher: None,
                    health_restarts: 0,
                    killed_for: None,
                    gave_up: false,
                },
            );
        }
        drop(slots);
        self.changed.notify_one();
    }

    /// The load of every instance served here: request counters from the
    /// gateway, CPU and memory from the cgroup or the Wasm stores.
    pub fn load_samples(&self) -> Vec<atoll_sdk::metrics::InstanceSample> {
        let specs: Vec<(String, String, String)> = (self.slots().iter())
            .map(|(id, s)| (id.clone(), s.spec.app.clone(), s.spec.service.clone()))
            .collect();
        let mut out = Vec::new();
        for (id, app, service) in specs {
            let Some((c, local)) = self.local.counters(&id) else {
                continue;
            };
            let (cpu_us, memory) = match local {
                Local::Wasm(w) => w.usage(),
                Local::Container { .. } => {
                    let (cpu, memory) = crate::usage::container(&id);
                    (cpu.unwrap_or(0), memory.unwrap_or(0))
                }
            };
            out.push(atoll_sdk::metrics::InstanceSample {
                id,
                app,
                service,
                requests: c.requests,
                inflight: c.inflight,
                busy_us: c.busy_us,
                latency: c.latency,
                cpu_us,
                memory,
            });
        }
        out
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
                restarts: s.restarts,
                pull: s.pull.filter(|_| s.state == InstanceState::Pulling),
                health: s.health.filter(|_| s.state == InstanceState::Running),
                gave_up: s.gave_up && s.state == InstanceState::Failed,
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

    /// Slot fields other than the state, updated in place.
    fn update(&self, id: &str, f: impl FnOnce(&mut Slot)) {
        if let Some(slot) = self.slots().get_mut(id) {
            f(slot);
        }
    }

    /// Stops an unassigned instance in the background, tracked so that
    /// shutdown waits for it: it takes no new requests, the ones in flight
    /// finish (within its stop grace period), then a container is stopped
    /// and removed.
    fn drain_and_stop(&self, id: &str, slot: &Slot) {
        let grace = slot
            .spec
            .container
            .stop_grace_ms
            .map_or(DEFAULT_GRACE, Duration::from_millis);
        let containers = match slot.spec.artifact {
            ArtifactRef::Image(_) => self.containers().cloned(),
            ArtifactRef::Stored(_) => None,
        };
        let (local, id, pid) = (self.local.clone(), id.to_string(), slot.pid);
        let handle = tokio::spawn(async move {
            if !local.drain(&id, grace).await {
                tracing::info!(instance = %id, ?grace, "requests still in flight after the grace period");
            }
            if let Some(containers) = containers {
                containers.remove(&id, pid, grace).await;
            }
            tracing::info!(instance = %id, "stopped");
        });
        let mut stopping = self.stopping.lock().unwrap_or_else(|e| e.into_inner());
        stopping.retain(|h| !h.is_finished());
        stopping.push(handle);
    }

    async fn start(self: Arc<Self>, spec: InstanceSpec) {
        let digest = match &spec.artifact {
            ArtifactRef::Stored(d) => d.clone(),
            ArtifactRef::Image(r) => {
                let reference = r.clone();
                return self.start_image(spec, reference).await;
            }
        };
        self.set(&spec.id, InstanceState::Pulling, None);
        let bytes = self.fetch_with_backoff(&spec.id, &digest).await;
        self.start_wasm(&spec, &digest, &bytes).await;
    }

    async fn start_wasm(&self, spec: &InstanceSpec, digest: &str, bytes: &[u8]) {
        self.set(&spec.id, InstanceState::Starting, None);
        let prepared = match self.engine.prepare(digest, bytes).await {
            Ok(p) => p,
            Err(e) => return self.fail(&spec.id, e.to_string()),
        };
        let inst = WasmInstance::new(&self.engine, prepared, self.instance_config(spec));
        if self.register(spec, Local::Wasm(inst.clone())) {
            let startup_ms = self.since_assigned_ms(&spec.id);
            tracing::info!(instance = %spec.id, startup_ms, "running");
            self.set(&spec.id, InstanceState::Running, None);
            self.watch_health(spec, crate::health::probe::Target::Wasm(inst));
        }
    }

    /// Milliseconds since the instance was assigned to this host.
    fn since_assigned_ms(&self, id: &str) -> f64 {
        self.slots()
            .get(id)
            .map_or(0.0, |s| s.assigned.elapsed().as_secs_f64() * 1000.0)
    }

    /// Makes the instance reachable through the gateway, unless it was
    /// unassigned meanwhile (`converge` removed the slot and may have raced
    /// this task's abort): never register a zombie. An instance with a
    /// health check takes traffic once it passes.
    fn register(&self, spec: &InstanceSpec, local: Local) -> bool {
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(&spec.id) else {
            return false;
        };
        let checked = spec.health.is_some();
        slot.health = checked.then_some(HealthState::Starting);
        self.local.insert(&spec.id, local, !checked);
        true
    }

    /// Retries until it gets the bytes (the slot's task is aborted if the
    /// instance is unassigned meanwhile), reporting each failure.
    async fn fetch_with_backoff(&self, id: &str, digest: &str) -> Vec<u8> {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(15));
        loop {
            match self.artifacts.get(digest).await {
                Ok(b) => return b,
                Err(e) => {
                    tracing::warn!(instance = id, error = %e, "artifact fetch failed; retrying");
                    self.set(id, InstanceState::Failed, Some(e.to_string()));
                }
            }
            backoff.wait().await;
            self.set(id, InstanceState::Pulling, None);
        }
    }

    /// Marks an instance failed for good on this host: nothing here will
    /// start it again, and the controller may place it elsewhere.
    fn fail(&self, id: &str, reason: String) {
        tracing::warn!(instance = id, %reason, "instance failed");
        self.update(id, |slot| slot.gave_up = true);
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
            log: self.logs.open_component(&spec.id).map(Arc::new),
            outbound: self.links.outbound.clone().map(|to| OutboundRoute {
                app: spec.app.clone(),
                to,
            }),
            kv: self.links.kv.clone().map(|store| KvRoute {
                app: spec.app.clone(),
                store,
            }),
        }
    }
}
