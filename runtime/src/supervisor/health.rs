//! The supervisor's side of health checks: starting an instance's
//! watcher, and acting on its verdicts — in or out of traffic, restarted
//! in place when its liveness check fails, failed for good (so the
//! controller can place it elsewhere) after repeated restarts.

use std::sync::Arc;

use crate::driver::DEFAULT_GRACE;

use atoll_sdk::cluster::{HealthState, InstanceSpec, InstanceState};
use atoll_sdk::spec::Health;

use super::Supervisor;
use crate::driver::Running;
use crate::health::probe::Target;
use crate::health::{self, Verdict};

/// Liveness restarts without a healthy verdict in between, after which the
/// instance is failed instead.
const MAX_HEALTH_RESTARTS: u32 = 3;

/// The instance's check: the service's own, else the one its artifact
/// declares (an image's `HEALTHCHECK`, unless the service turned it off).
pub(super) fn health_of(spec: &InstanceSpec, running: &dyn Running) -> Option<Health> {
    spec.health.clone().or_else(|| running.artifact_health())
}

/// Why the host stopped a container.
pub(super) struct Kill {
    pub reason: String,
    /// Not to be restarted.
    pub last: bool,
}

impl Supervisor {
    /// Starts the instance's health watcher, if it has a check.
    pub(super) fn watch_health(&self, spec: &InstanceSpec, running: Arc<dyn Running>) {
        let Some(check) = health_of(spec, running.as_ref()) else {
            return;
        };
        let weak = self.me.clone();
        let id = spec.id.clone();
        let target = Target {
            running,
            default_port: spec.ports.first().map_or(80, |p| p.target),
        };
        let task = tokio::spawn(health::watch(check, target, move |verdict| {
            if let Some(sup) = weak.upgrade() {
                sup.on_verdict(&id, verdict);
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

    fn on_verdict(self: &Arc<Self>, id: &str, verdict: Verdict) {
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
            Verdict::Restart(why) => self.restart_unhealthy(id, why),
        }
    }

    /// The liveness check failed: stop the instance, whose run loop starts
    /// it again (or fails it, after too many restarts).
    fn restart_unhealthy(self: &Arc<Self>, id: &str, why: String) {
        self.local.set_ready(id, false);
        let mut restarts = 0;
        let mut running = None;
        let mut grace = DEFAULT_GRACE;
        self.update(id, |slot| {
            slot.health_restarts += 1;
            restarts = slot.health_restarts;
            running = slot.running.clone();
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
        let Some(running) = running else {
            return;
        };
        self.update(id, |slot| slot.killed_for = Some(Kill { reason, last }));
        // The run loop sees it end, and restarts it (or not) with this
        // reason.
        tokio::spawn(async move { running.stop(grace).await });
    }
}
