//! A simulated host's instances: no workload, only states. An assigned
//! instance is `starting`, then `running` after the start delay (or
//! `failed`, for a service told to fail); one no longer assigned is gone
//! at once. Reported through the same heartbeat and load sample code as
//! a real host's supervisor.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use atoll_sdk::cluster::{Assignment, InstanceState, InstanceStatus};
use atoll_sdk::metrics::InstanceSample;
use atoll_sdk::protocol::now_ms;
use tokio::sync::Notify;

use crate::agent::heartbeat::Instances;

/// What the whole simulated fleet shares: how instances start, and what
/// every host has seen (for the report).
pub(crate) struct Behaviour {
    pub start_delay: Duration,
    /// `app/service` (or `app`) whose instances fail instead of running.
    pub failing: Mutex<BTreeSet<String>>,
    /// When an instance last changed state anywhere in the fleet (Unix ms).
    pub last_change: AtomicU64,
}

impl Behaviour {
    pub(crate) fn lock_failing(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.failing.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fails(&self, app: &str, service: &str) -> bool {
        let failing = self.lock_failing();
        failing.contains(app) || failing.contains(&format!("{app}/{service}"))
    }
}

/// One simulated host's instances.
pub(crate) struct SimInstances {
    behaviour: Arc<Behaviour>,
    by_id: Mutex<BTreeMap<String, InstanceStatus>>,
    changed: Notify,
    /// Connected, and beating.
    joined: AtomicBool,
}

/// What an assignment did to a host's instances.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    pub started: usize,
    pub stopped: usize,
}

impl SimInstances {
    pub(crate) fn new(behaviour: Arc<Behaviour>) -> Arc<SimInstances> {
        Arc::new(SimInstances {
            behaviour,
            by_id: Mutex::default(),
            changed: Notify::new(),
            joined: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, InstanceStatus>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `a`: new instances start (and run after the delay), the ones
    /// it no longer names stop.
    pub(crate) fn apply(self: &Arc<Self>, a: &Assignment) -> Applied {
        let mut applied = Applied::default();
        let wanted: BTreeSet<&str> = a.instances.iter().map(|i| i.id.as_str()).collect();
        let mut starting = Vec::new();
        {
            let mut by_id = self.lock();
            let before = by_id.len();
            by_id.retain(|id, _| wanted.contains(id.as_str()));
            applied.stopped = before - by_id.len();
            for i in &a.instances {
                if by_id.contains_key(&i.id) {
                    continue;
                }
                let status = InstanceStatus {
                    since_ms: now_ms(),
                    ..InstanceStatus::of(i, InstanceState::Starting)
                };
                by_id.insert(i.id.clone(), status);
                starting.push(i.id.clone());
            }
        }
        applied.started = starting.len();
        if applied != Applied::default() {
            self.changed.notify_one();
        }
        if !starting.is_empty() {
            let me = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(me.behaviour.start_delay).await;
                me.started(&starting);
            });
        }
        applied
    }

    /// The start delay of `ids` is over: running, or failed as told.
    fn started(&self, ids: &[String]) {
        let mut by_id = self.lock();
        for id in ids {
            let Some(s) = by_id.get_mut(id) else { continue };
            if s.state != InstanceState::Starting {
                continue;
            }
            let fails = self.behaviour.fails(&s.app, &s.service);
            s.state = match fails {
                true => InstanceState::Failed,
                false => InstanceState::Running,
            };
            s.reason = fails.then(|| "told to fail (atoll sim)".to_string());
            s.gave_up = fails;
            s.since_ms = now_ms();
        }
        drop(by_id);
        (self.behaviour.last_change).fetch_max(now_ms(), Ordering::Relaxed);
        self.changed.notify_one();
    }

    pub(crate) fn set_joined(&self) {
        self.joined.store(true, Ordering::Relaxed);
    }

    pub(crate) fn has_joined(&self) -> bool {
        self.joined.load(Ordering::Relaxed)
    }

    /// Instances by state: (all, running, starting).
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let by_id = self.lock();
        let count = |st| by_id.values().filter(|s| s.state == st).count();
        let (running, starting) = (
            count(InstanceState::Running),
            count(InstanceState::Starting),
        );
        (by_id.len(), running, starting)
    }

    /// Load counters: a simulated instance serves nothing.
    pub(crate) fn load_samples(&self) -> Vec<InstanceSample> {
        (self.lock().values())
            .filter(|s| s.state == InstanceState::Running)
            .map(|s| InstanceSample {
                id: s.id.clone(),
                app: s.app.clone(),
                service: s.service.clone(),
                ..Default::default()
            })
            .collect()
    }
}

impl Instances for SimInstances {
    fn statuses(&self) -> Vec<InstanceStatus> {
        self.lock().values().cloned().collect()
    }
    async fn changed(&self) {
        self.changed.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::cluster::InstanceSpec;

    fn assignment(ids: &[(&str, &str)]) -> Assignment {
        let mut a = Assignment::default();
        for (id, service) in ids {
            let json = serde_json::json!({
                "id": id, "app": "a", "service": service, "revision": 1,
                "spec_hash": "h", "artifact": {"kind": "stored", "ref": "sha256:00"},
                "env": {}, "ports": [], "limits": {}, "reservations": {}, "timeout_ms": 1000,
            });
            match serde_json::from_value::<InstanceSpec>(json) {
                Ok(spec) => a.instances.push(spec),
                Err(e) => panic!("a minimal instance spec: {e}"),
            }
        }
        a
    }

    #[tokio::test(start_paused = true)]
    async fn instances_run_after_the_delay_fail_when_told_and_go_when_unassigned() {
        let behaviour = Arc::new(Behaviour {
            start_delay: Duration::from_millis(500),
            failing: Mutex::new(BTreeSet::from(["a/bad".to_string()])),
            last_change: AtomicU64::new(0),
        });
        let sim = SimInstances::new(behaviour);
        let applied = sim.apply(&assignment(&[("i1", "web"), ("i2", "bad")]));
        assert_eq!(
            applied,
            Applied {
                started: 2,
                stopped: 0
            }
        );
        assert_eq!(sim.counts(), (2, 0, 2));
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(sim.counts(), (2, 1, 0));
        let states: Vec<_> = sim.statuses().iter().map(|s| s.state).collect();
        assert_eq!(states, [InstanceState::Running, InstanceState::Failed]);
        let again = sim.apply(&assignment(&[("i1", "web"), ("i2", "bad")]));
        assert_eq!(again, Applied::default(), "level-triggered: nothing new");
        let fewer = sim.apply(&assignment(&[("i1", "web")]));
        assert_eq!(
            fewer,
            Applied {
                started: 0,
                stopped: 1
            }
        );
        assert_eq!(sim.counts(), (1, 1, 0));
        assert_eq!(sim.load_samples().len(), 1);
    }
}
