//! Image services: pull (retried with backoff, progress in the slot), then
//! run a Wasm artifact through the Wasm driver or a container image through
//! the container driver, watching the container and restarting it per its
//! restart policy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atoll_sdk::cluster::{InstanceSpec, InstanceState, PullBytes};

use super::Supervisor;
use crate::container::process::{self, Exit};
use crate::container::restart::{self, Decision, History};
use crate::container::{Containers, Started};
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
            return self.run_container(&spec, &containers, started).await;
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
                    Ok(started) => self.run_container(&spec, &containers, started).await,
                    Err(e) if e.is_permanent() => self.fail(&spec.id, e.to_string()),
                    // The first start failed for a reason outside the
                    // image: handled like an exit, per the restart policy.
                    Err(e) => {
                        self.fail(&spec.id, e.to_string());
                        self.restart_loop(&spec, &containers, e.to_string()).await;
                    }
                }
            }
        }
    }

    /// Pulls until it succeeds (the task is aborted if the instance is
    /// unassigned meanwhile), showing progress, and each failure as the
    /// instance's reason.
    async fn pull_with_backoff(&self, spec: &InstanceSpec, reference: &str) -> PulledImage {
        let mut delay = Duration::from_millis(500);
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
                    tracing::warn!(instance = %spec.id, error = %e, retry_in = ?delay, "pull failed");
                    self.set(&spec.id, InstanceState::Failed, Some(e.to_string()));
                }
            }
            let jitter = rand::random::<u64>() % (delay.as_millis() as u64 / 2 + 1);
            tokio::time::sleep(delay + Duration::from_millis(jitter)).await;
            delay = (delay * 2).min(MAX_PULL_BACKOFF);
        }
    }

    /// Serves a started container until it exits, then restarts it per its
    /// policy, for as long as the instance is assigned.
    async fn run_container(&self, spec: &InstanceSpec, containers: &Arc<Containers>, s: Started) {
        let id = &spec.id;
        let local = Local::Container {
            app: spec.app.clone(),
            address: s.address,
            ports: spec.ports.clone(),
        };
        if !self.register(id, local) {
            return;
        }
        self.update(id, |slot| slot.pid = Some(s.pid));
        let startup_ms = self.since_assigned_ms(id);
        tracing::info!(instance = %id, address = %s.address, pid = s.pid, startup_ms, "container running");
        self.set(id, InstanceState::Running, None);
        let reason = self.watch(spec, containers, s.pid).await;
        self.restart_loop(spec, containers, reason).await;
    }

    /// Waits for the container's exit; returns why it ended.
    async fn watch(&self, spec: &InstanceSpec, containers: &Containers, pid: i32) -> String {
        let exit = process::wait(pid).await.unwrap_or(Exit::Unknown);
        self.local.remove(&spec.id);
        self.update(&spec.id, |slot| slot.pid = None);
        let reason = containers.exit_reason(&spec.id, exit, spec.limits.memory);
        tracing::warn!(instance = %spec.id, %reason, "container ended");
        reason
    }

    /// Restarts per the policy after an exit (or a failed start) that left
    /// `reason`, until the policy says no more.
    async fn restart_loop(&self, spec: &InstanceSpec, containers: &Containers, mut reason: String) {
        let id = &spec.id;
        let mut history = History::default();
        let mut ran = Duration::ZERO;
        loop {
            let success = reason.starts_with("exited with code 0");
            let after = match restart::decide(&spec.container.restart, history, success, ran) {
                Decision::Stay(why) => {
                    let state = if success {
                        InstanceState::Stopped
                    } else {
                        InstanceState::Failed
                    };
                    return self.set(id, state, Some(format!("{reason}; {why}")));
                }
                Decision::Restart { after, history: h } => {
                    history = h;
                    after
                }
            };
            let m = format!("{reason}; restarting in {after:?}");
            self.set(id, InstanceState::Failed, Some(m));
            tokio::time::sleep(after).await;
            self.update(id, |slot| slot.restarts += 1);
            let pid = match containers.restart(id).await {
                Ok(pid) => pid,
                Err(e) => {
                    reason = e.to_string();
                    ran = Duration::ZERO;
                    continue;
                }
            };
            let address = containers_address(containers, id);
            let local = Local::Container {
                app: spec.app.clone(),
                address,
                ports: spec.ports.clone(),
            };
            if !self.register(id, local) {
                return;
            }
            self.update(id, |slot| slot.pid = Some(pid));
            // The last exit stays visible while it runs again.
            let last = format!("restarted after: {reason}");
            self.set(id, InstanceState::Running, Some(last));
            let began = Instant::now();
            reason = self.watch(spec, containers, pid).await;
            ran = began.elapsed();
        }
    }
}

fn containers_address(containers: &Containers, id: &str) -> std::net::Ipv4Addr {
    containers
        .address_of(id)
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)
}
