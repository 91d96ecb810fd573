//! The supervisor's side of health checks: starting an instance's
//! watcher, and acting on its verdicts — in or out of traffic, restarted
//! in place when its liveness check fails, failed for good (so the
//! controller can place it elsewhere) after repeated restarts.

use std::sync::Arc;

use atoll_sdk::cluster::{HealthState, InstanceSpec, InstanceState};

use super::Supervisor;
use crate::container::DEFAULT_GRACE;
use crate::health::probe::Target;
use crate::health::{self, Verdict};

/// Liveness restarts without a healthy verdict in between, after which the
/// instance is failed instead.
const MAX_HEALTH_RESTARTS: u32 = 3;

/// Why the host stopped a container.
pub(super) struct Kill {
    pub reason: String,
    /// Not to be restarted.
    pub last: bool,
}

impl Supervisor {
    /// Starts the instance's health watcher, if it has a check.
    pub(super) fn watch_health(&self, spec: &InstanceSpec, target: Target) {
        let Some(check) = spec.health.clone() else {
            return;
        };
        let weak = self.me.clone();
        let id = spec.id.clone();
        let for_restart = target.clone();
        let task = tokio::spawn(health::watch(check, target, move |verdict| {
            if let Some(sup) = weak.upgrade() {
                sup.on_verdict(&id, verdict, &for_restart);
            }
        }));
        let mut task = Some(task);
        self.update(&spec.id, |slot| {
            slot.health = Some(HealthState::Starting);
            if let Some(old) = std::mem::replace(&mut slot.watcher, task.take()) {
                old.abort();
            }
        });
        // Unassigned meanwhile: no slot took it, so it must not run on.
        if let Some(orphan) = task {
            orphan.abort();
        }
    }

    fn on_verdict(self: &Arc<Self>, id: &str, verdict: Verdict, target: &Target) {
        match verdict {
            Verdict::Ready(state, why) => {
                let ready = state == HealthState::Healthy;
                // Out of traffic here at once; the endpoints follow.
                self.local.set_ready(id, ready);
                let reason = why
                    .filter(|_| !ready)
                    .map(|w| format!("{}: {w}", state.as_str()));
                match &reason {
                    Some(r) => tracing::warn!(instance = id, reason = %r, "health check failing"),
                    None => tracing::info!(instance = id, "healthy"),
                }
                self.update(id, |slot| {
                    slot.health = Some(state);
                    slot.since_ms = atoll_sdk::protocol::now_ms();
                    if ready {
                        slot.health_restarts = 0;
                    }
                    // A pass clears what failing checks said, and keeps
                    // the last exit of a restarted instance.
                    let said_by_check = (slot.reason.as_deref()).is_some_and(|r| {
                        r.starts_with("unhealthy: ") || r.starts_with("starting: ")
                    });
                    if slot.state == InstanceState::Running && (reason.is_some() || said_by_check) {
                        slot.reason = reason;
                    }
                });
                self.changed.notify_one();
            }
            Verdict::Restart(why) => self.restart_unhealthy(id, why, target),
        }
    }

    /// The liveness check failed: restart the instance in place, or fail
    /// it after too many restarts.
    fn restart_unhealthy(self: &Arc<Self>, id: &str, why: String, target: &Target) {
        self.local.set_ready(id, false);
        let mut restarts = 0;
        let mut pid = None;
        let mut grace = DEFAULT_GRACE;
        self.update(id, |slot| {
            slot.health_restarts += 1;
            restarts = slot.health_restarts;
            pid = slot.pid;
            if let Some(ms) = slot.spec.container.stop_grace_ms {
                grace = std::time::Duration::from_millis(ms);
            }
        });
        let last = restarts > MAX_HEALTH_RESTARTS;
        let reason = if last {
            format!("unhealthy, restarted {MAX_HEALTH_RESTARTS} times: {why}")
        } else {
            format!("unhealthy: {why}")
        };
        tracing::warn!(instance = id, %reason, "failed its liveness check");
        match target {
            Target::Container { containers, .. } => {
                let kill = super::health::Kill {
                    reason: reason.clone(),
                    last,
                };
                self.update(id, |slot| slot.killed_for = Some(kill));
                // The container's run loop sees it exit, and restarts it
                // (or not) with this reason.
                let (containers, id) = (containers.clone(), id.to_string());
                tokio::spawn(async move { containers.stop(&id, pid, grace).await });
            }
            Target::Wasm(_) if last => {
                self.local.remove(id);
                self.fail(id, reason);
            }
            Target::Wasm(_) => {
                // Every request gets a fresh instance: a restart is a new
                // verdict from scratch.
                self.update(id, |slot| slot.restarts += 1);
                self.set(id, InstanceState::Running, Some(reason));
                let spec = self.slots().get(id).map(|s| s.spec.clone());
                if let Some(spec) = spec {
                    self.watch_health(&spec, target.clone());
                }
            }
        }
    }
}
