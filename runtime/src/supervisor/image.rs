//! Image services: pull (retried with backoff, progress in the slot), then
//! run a Wasm artifact through the Wasm driver or a container image through
//! the container driver, watching the container and restarting it per its
//! restart policy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atoll_sdk::cluster::{InstanceSpec, InstanceState, PullBytes};

use super::{Backoff, Supervisor};
use crate::container::process::{self, Exit};
use crate::container::restart::{self, Decision, History};
use crate::container::{Containers, Started};
use crate::health::probe::Target;
use crate::local::Local;
use crate::oci::kind::ArtifactKind;
use crate::oci::pull::{PullProgress, PulledImage};

/// Longest wait between pull attempts.
const MAX_PULL_BACKOFF: Duration = Duration::from_secs(30);
/// Largest Wasm layer read into memory.
const MAX_WASM_BYTES: u64 = 256 << 20;

impl Supervisor {
    pub(super) async fn start_image(self: Arc<Self>, spec: InstanceSpec, reference: String) {
        // A container this host started before it restarted is taken over.
        if let Ok(containers) = &self.images.containers
            && let Some(started) = containers.adopt(&spec.id).await
        {
            tracing::info!(instance = %spec.id, pid = started.pid, "adopted a running container");
            let containers = containers.clone();
            return self.run_container(&spec, &containers, Ok(started)).await;
        }
        let image = self.pull_with_backoff(&spec, &reference).await;
        match &image.kind {
            ArtifactKind::Wasm { layer_digest } => {
                let store = self.images.puller.store();
                match store.read(layer_digest, MAX_WASM_BYTES).await {
                    Ok(bytes) => self.start_wasm(&spec, layer_digest, &bytes).await,
                    Err(e) => self.fail(&spec.id, format!("image {reference}: {e}")),
                }
            }
            ArtifactKind::Container => {
                let containers = match &self.images.containers {
                    Ok(c) => c.clone(),
                    Err(why) => {
                        let m = format!(
                            "image {reference} is a container image, and this host cannot run containers: {why}"
                        );
                        return self.fail(&spec.id, m);
                    }
                };
                self.set(&spec.id, InstanceState::Starting, None);
                match containers.start(&spec, &image, &self.host).await {
                    Err(e) if e.is_permanent() => self.fail(&spec.id, e.to_string()),
                    // A first start that failed for a reason outside the
                    // image is handled like an exit, per the restart policy.
                    started => {
                        let started = started.map_err(|e| e.to_string());
                        self.run_container(&spec, &containers, started).await
                    }
                }
            }
        }
    }

    /// Pulls until it succeeds (the task is aborted if the instance is
    /// unassigned meanwhile), showing progress, and each failure as the
    /// instance's reason.
    async fn pull_with_backoff(&self, spec: &InstanceSpec, reference: &str) -> PulledImage {
        let mut backoff = Backoff::new(Duration::from_millis(500), MAX_PULL_BACKOFF);
        loop {
            self.set(&spec.id, InstanceState::Pulling, None);
            let layers = std::sync::Mutex::new(Vec::<(u64, u64)>::new());
            let last_log = std::sync::Mutex::new(Instant::now());
            let progress = |p: PullProgress| {
                let mut l = layers.lock().unwrap_or_else(|e| e.into_inner());
                l.resize(p.layers, (0, 0));
                if let Some(slot) = l.get_mut(p.layer) {
                    *slot = (p.bytes, p.total);
                }
                let (done, total) = l.iter().fold((0, 0), |(d, t), (b, s)| (d + b, t + s));
                self.update(&spec.id, |slot| slot.pull = Some(PullBytes { done, total }));
                // The host log shows a long pull going, about once a second.
                let mut last = last_log.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= Duration::from_secs(1) {
                    *last = Instant::now();
                    tracing::info!(instance = %spec.id, image = reference, done, total, layer = p.layer + 1, layers = p.layers, "pulling");
                }
            };
            let started = Instant::now();
            match self.images.puller.pull(reference, progress).await {
                Ok(image) => {
                    tracing::info!(instance = %spec.id, image = reference, elapsed = ?started.elapsed(), "pulled");
                    self.update(&spec.id, |slot| slot.pull = None);
                    return image;
                }
                Err(e) => {
                    tracing::warn!(instance = %spec.id, error = %e, retry_in = ?backoff.delay(), "pull failed");
                    self.set(&spec.id, InstanceState::Failed, Some(e.to_string()));
                }
            }
            backoff.wait().await;
        }
    }

    /// Runs a container from `first` (started, or why its first start
    /// failed): serves it until it exits, then starts it again per its
    /// restart policy, for as long as the instance is assigned.
    async fn run_container(
        &self,
        spec: &InstanceSpec,
        containers: &Arc<Containers>,
        first: Result<Started, String>,
    ) {
        let id = &spec.id;
        let mut history = History::default();
        let mut last_exit: Option<String> = None;
        let mut next = first;
        loop {
            let ended = match next {
                Ok(started) => match self
                    .serve_container(spec, containers, started, &last_exit)
                    .await
                {
                    Some(ended) => ended,
                    None => return,
                },
                Err(reason) => {
                    tracing::warn!(instance = %id, %reason, "container could not start");
                    Ended {
                        reason,
                        success: false,
                        ran: Duration::ZERO,
                        last: false,
                    }
                }
            };
            if ended.last {
                return self.fail(id, ended.reason);
            }
            let policy = &spec.container.restart;
            let after = match restart::decide(policy, history, ended.success, ended.ran) {
                Decision::Stay(why) => {
                    let reason = format!("{}; {why}", ended.reason);
                    if ended.success {
                        return self.set(id, InstanceState::Stopped, Some(reason));
                    }
                    // `restart: no` means no second run anywhere (Swarm's
                    // `condition: none`): failed, but not re-placed.
                    if policy.condition == atoll_sdk::spec::RestartCondition::None {
                        return self.set(id, InstanceState::Failed, Some(reason));
                    }
                    return self.fail(id, reason);
                }
                Decision::Restart { after, history: h } => {
                    history = h;
                    after
                }
            };
            let m = format!("{}; restarting in {after:?}", ended.reason);
            self.set(id, InstanceState::Failed, Some(m));
            tokio::time::sleep(after).await;
            self.update(id, |slot| slot.restarts += 1);
            last_exit = Some(ended.reason);
            next = containers.restart(id).await.map_err(|e| e.to_string());
        }
    }

    /// Makes a started container reachable, marks it running and waits
    /// for its exit. `None` when the instance was unassigned meanwhile.
    async fn serve_container(
        &self,
        spec: &InstanceSpec,
        containers: &Arc<Containers>,
        s: Started,
        last_exit: &Option<String>,
    ) -> Option<Ended> {
        let id = &spec.id;
        let local = Local::Container {
            app: spec.app.clone(),
            address: s.address,
            ports: spec.ports.clone(),
        };
        if !self.register(spec, local) {
            return None;
        }
        self.update(id, |slot| slot.pid = Some(s.pid));
        // After a restart, the last exit stays visible while it runs again.
        let reason = last_exit.as_ref().map(|r| format!("restarted after: {r}"));
        if reason.is_none() {
            let startup_ms = self.since_assigned_ms(id);
            tracing::info!(instance = %id, address = %s.address, pid = s.pid, startup_ms, "container running");
        }
        self.set(id, InstanceState::Running, reason);
        let target = Target::Container {
            id: id.clone(),
            address: s.address,
            default_port: spec.ports.first().map_or(80, |p| p.target),
            containers: containers.clone(),
        };
        self.watch_health(spec, target);
        let began = Instant::now();
        let exit = process::wait(s.pid).await.unwrap_or(Exit::Unknown);
        self.local.remove(id);
        let mut killed_for = None;
        self.update(id, |slot| {
            slot.pid = None;
            killed_for = slot.killed_for.take();
            if let Some(w) = slot.watcher.take() {
                w.abort();
            }
        });
        let (reason, last) = match killed_for {
            Some(kill) => (kill.reason, kill.last),
            None => (containers.exit_reason(id, exit, spec.limits.memory), false),
        };
        tracing::warn!(instance = %id, %reason, "container ended");
        Some(Ended {
            reason,
            success: exit == Exit::Code(0) && !last,
            ran: began.elapsed(),
            last,
        })
    }
}

/// How a container's run ended.
struct Ended {
    /// For `atoll ps`: the exit and the last lines of output.
    reason: String,
    /// Exit code 0 (for `restart: on-failure`).
    success: bool,
    ran: Duration,
    /// Not to be restarted whatever the policy (it kept failing its
    /// health check).
    last: bool,
}
