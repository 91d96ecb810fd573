//! The supervisor: makes the instances this host runs match its
//! assignment, and tracks each instance's lifecycle for the heartbeats.
//!
//! Each assigned instance gets a task ([`run`]): its artifact is fetched
//! ([`fetch`]), the driver for its kind starts it (`crate::driver`), and
//! it is served and restarted per its policy ([`restart_policy`]) and its
//! health checks ([`health`]). Every state change goes through the legal
//! transitions of [`transitions`]. Stopping an unassigned instance is
//! asynchronous (out of traffic, requests in flight finish, then the
//! driver stops and removes it), tracked until it is done.

mod fetch;
mod health;
mod restart_policy;
mod run;
mod transitions;

use crate::driver::{DEFAULT_GRACE, Driver, Drivers, Running};
use crate::local_instances::LocalInstances;
use atoll_sdk::cluster::{
    ArtifactRef, Assignment, HealthState, InstanceSpec, InstanceState, InstanceStatus, PullBytes,
};
use atoll_sdk::protocol::now_ms;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub(crate) use fetch::Sources;

struct Slot {
    spec: InstanceSpec,
    state: InstanceState,
    reason: Option<String>,
    since_ms: u64,
    task: Option<JoinHandle<()>>,
    restarts: u32,
    pull: Option<PullBytes>,
    /// The driver chosen for it, once its artifact's kind is known.
    driver: Option<Arc<dyn Driver>>,
    /// The current run, while it runs.
    running: Option<Arc<dyn Running>>,
    /// When this host was told to run it (start-up time is measured from
    /// here).
    assigned: std::time::Instant,
    /// The health check's verdict, when it has one.
    health: Option<HealthState>,
    /// The health watcher, while it runs.
    watcher: Option<JoinHandle<()>>,
    /// Liveness restarts since it was last healthy.
    health_restarts: u32,
    /// Set when the host stops the instance for failing its health check:
    /// the reason to report instead of its exit.
    killed_for: Option<health::Kill>,
    /// Failed, and this host will not start it again.
    gave_up: bool,
}

impl Slot {
    fn new(spec: &InstanceSpec, task: JoinHandle<()>) -> Slot {
        Slot {
            spec: spec.clone(),
            state: InstanceState::Pending,
            reason: None,
            since_ms: now_ms(),
            task: Some(task),
            restarts: 0,
            pull: None,
            driver: None,
            running: None,
            assigned: std::time::Instant::now(),
            health: None,
            watcher: None,
            health_restarts: 0,
            killed_for: None,
            gave_up: false,
        }
    }
}

pub(crate) struct Supervisor {
    drivers: Drivers,
    sources: Sources,
    local: LocalInstances,
    slots: Mutex<BTreeMap<String, Slot>>,
    /// Instances being stopped and removed.
    stopping: Mutex<Vec<JoinHandle<()>>>,
    /// Notified on every state change, so the agent heartbeats at once.
    changed: Notify,
    /// Itself, for the tasks it starts (health watchers).
    me: std::sync::Weak<Supervisor>,
}

impl Supervisor {
    pub(crate) fn new(drivers: Drivers, sources: Sources, local: LocalInstances) -> Arc<Self> {
        Arc::new_cyclic(|me| Supervisor {
            drivers,
            sources,
            local,
            slots: Mutex::default(),
            stopping: Mutex::default(),
            changed: Notify::new(),
            me: me.clone(),
        })
    }

    /// Resolves at the next change of an instance's state (at once if one
    /// happened since the last call).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await
    }

    /// Stops everything and waits (bounded) until it is gone. With
    /// `keep_running`, instances that can outlive the host process
    /// (containers) are left running for its next run to adopt.
    pub(crate) async fn shutdown(self: &Arc<Self>, keep_running: bool) {
        if keep_running {
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
            tracing::warn!("some instances were still stopping at shutdown");
        }
        if !keep_running {
            for driver in self.drivers.all() {
                driver.teardown().await;
            }
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts what is assigned and not running, stops what runs and is no
    /// longer assigned. Idempotent.
    pub(crate) fn converge(self: &Arc<Self>, assignment: &Assignment) {
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
                self.drain_and_stop(&id, slot);
            }
        }
        self.sources.files.keep_only(wanted.values().copied());
        for (id, spec) in wanted {
            if slots.contains_key(id) {
                continue;
            }
            let task = tokio::spawn(self.clone().start((*spec).clone()));
            slots.insert(id.to_string(), Slot::new(spec, task));
        }
        drop(slots);
        self.changed.notify_one();
    }

    /// The load of every instance served here: request counters from the
    /// gateway, CPU and memory from the cgroup or the Wasm stores.
    pub(crate) fn load_samples(&self) -> Vec<atoll_sdk::metrics::InstanceSample> {
        let running: Vec<_> = (self.slots().iter())
            .filter_map(|(id, s)| {
                let r = s.running.clone()?;
                Some((id.clone(), s.spec.app.clone(), s.spec.service.clone(), r))
            })
            .collect();
        let mut out = Vec::new();
        for (id, app, service, running) in running {
            let Some(c) = self.local.counters(&id) else {
                continue;
            };
            let usage = running.usage();
            let (cpu_us, memory) = (usage.cpu_us, usage.memory);
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

    pub(crate) fn statuses(&self) -> Vec<InstanceStatus> {
        self.slots()
            .iter()
            .map(|(id, s)| InstanceStatus {
                id: id.clone(),
                reason: s.reason.clone(),
                since_ms: s.since_ms,
                restarts: s.restarts,
                pull: s.pull.filter(|_| s.state == InstanceState::Pulling),
                health: s.health.filter(|_| s.state == InstanceState::Running),
                gave_up: s.gave_up && s.state == InstanceState::Failed,
                ..InstanceStatus::of(&s.spec, s.state)
            })
            .collect()
    }

    /// Changes an instance's state, if that is a legal change
    /// ([`transitions`]); an illegal one is a bug, logged and refused.
    fn set(&self, id: &str, state: InstanceState, reason: Option<String>) {
        if let Some(slot) = self.slots().get_mut(id)
            && (slot.state != state || slot.reason != reason)
        {
            if !transitions::allowed(slot.state, state, slot.gave_up) {
                tracing::error!(
                    instance = id,
                    from = slot.state.as_str(),
                    to = state.as_str(),
                    ?reason,
                    "illegal state change refused"
                );
                return;
            }
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
    /// finish (within its stop grace period), then its driver stops and
    /// removes it.
    fn drain_and_stop(&self, id: &str, slot: Slot) {
        let grace = slot
            .spec
            .container
            .stop_grace_ms
            .map_or(DEFAULT_GRACE, Duration::from_millis);
        let (local, id) = (self.local.clone(), id.to_string());
        // Unassigned before its task chose a driver (it was still being
        // fetched, or not yet adopted): an image's instance may still have
        // a container from an earlier run of this host.
        let driver = slot.driver.or_else(|| match slot.spec.artifact {
            ArtifactRef::Image(_) => self.drivers.adopter().cloned(),
            ArtifactRef::Stored(_) => None,
        });
        let running = slot.running;
        let handle = tokio::spawn(async move {
            if !local.drain(&id, grace).await {
                tracing::info!(instance = %id, ?grace, "requests still in flight after the grace period");
            }
            if let Some(driver) = driver {
                driver.remove(&id, running, grace).await;
            }
            tracing::info!(instance = %id, "stopped");
        });
        let mut stopping = self.stopping.lock().unwrap_or_else(|e| e.into_inner());
        stopping.retain(|h| !h.is_finished());
        stopping.push(handle);
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
    fn register(&self, spec: &InstanceSpec, running: &Arc<dyn Running>) -> bool {
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(&spec.id) else {
            return false;
        };
        let checked = health::health_of(spec, running.as_ref()).is_some();
        slot.health = checked.then_some(HealthState::Starting);
        slot.running = Some(running.clone());
        self.local.insert(
            &spec.id,
            (&spec.app, &spec.service),
            running.reach(),
            !checked,
        );
        true
    }

    /// Marks an instance failed for good on this host: nothing here will
    /// start it again, and the controller may place it elsewhere.
    fn fail(&self, id: &str, reason: String) {
        tracing::warn!(instance = id, %reason, "instance failed");
        self.set(id, InstanceState::Failed, Some(reason));
        self.update(id, |slot| slot.gave_up = true);
    }
}
