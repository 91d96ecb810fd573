//! One instance's life on this host, whatever runs it: take over what an
//! earlier run of the host left running, or fetch the artifact and start
//! it through its driver; serve it until it ends; start it again as its
//! restart policy says (a component, which never ends by itself, is only
//! ever restarted by its liveness check), or give up so the controller
//! can place it elsewhere.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atoll_sdk::cluster::{ArtifactRef, InstanceSpec, InstanceState};
use atoll_sdk::spec::RestartCondition;

use super::Supervisor;
use super::restart_policy::{self, Decision, History};
use crate::driver::{Artifact, Driver, Exit, Lifecycle, Running, StartError};

/// How one run ended.
struct Ended {
    /// For `atoll ps`: the exit and the last lines of output, or why the
    /// host stopped it.
    reason: String,
    /// Exit code 0 (for `restart: on-failure`).
    success: bool,
    ran: Duration,
    /// Not to be restarted whatever the policy (it kept failing its
    /// health check).
    last: bool,
    /// Stopped by the host for failing its liveness check.
    killed: bool,
    /// The run, when there was one (not when its start failed).
    running: Option<Arc<dyn Running>>,
}

impl Ended {
    fn start_failed(reason: String) -> Ended {
        Ended {
            reason,
            success: false,
            ran: Duration::ZERO,
            last: false,
            killed: false,
            running: None,
        }
    }
}

impl Supervisor {
    /// The task of a newly assigned instance; aborted when it is
    /// unassigned.
    pub(super) async fn start(self: Arc<Self>, spec: InstanceSpec) {
        let id = &spec.id;
        // An instance this host started before it restarted is taken over.
        if let (ArtifactRef::Image(_), Some(driver)) = (&spec.artifact, self.drivers.adopter())
            && let Some(running) = driver.adopt(&spec).await
        {
            let driver = driver.clone();
            self.update(id, |slot| slot.driver = Some(driver.clone()));
            return self.run(&spec, &driver, Ok(running)).await;
        }
        let artifact = match self.fetch(&spec).await {
            Ok(a) => a,
            Err(e) => return self.fail(id, e.to_string()),
        };
        let driver = match self.drivers.for_artifact(&artifact) {
            Ok(d) => d,
            Err(why) => return self.fail(id, cannot_run(&spec, &artifact, why)),
        };
        self.update(id, |slot| slot.driver = Some(driver.clone()));
        self.set(id, InstanceState::Starting, None);
        let first = match driver.start(&spec, &artifact).await {
            Ok(running) => Ok(running),
            Err(StartError::Permanent(reason)) => return self.fail(id, reason),
            // A first start that failed for a reason outside the artifact
            // is handled like an exit, per the restart policy.
            Err(StartError::Transient(reason)) => Err(reason),
        };
        drop(artifact);
        self.run(&spec, &driver, first).await
    }

    /// Runs the instance from `first` (running, or why its first start
    /// failed) for as long as it is assigned and its policy allows.
    async fn run(
        &self,
        spec: &InstanceSpec,
        driver: &Arc<dyn Driver>,
        first: Result<Arc<dyn Running>, String>,
    ) {
        let id = &spec.id;
        let mut history = History::default();
        let mut reason: Option<String> = None;
        let mut next = first;
        loop {
            let ended = match next {
                Ok(running) => match self.serve(spec, running, reason.take()).await {
                    Some(ended) => ended,
                    None => return,
                },
                Err(why) => {
                    tracing::warn!(instance = %id, reason = %why, "could not start");
                    Ended::start_failed(why)
                }
            };
            if ended.last {
                return self.fail(id, ended.reason);
            }
            let lifecycle = ended.running.as_ref().map(|r| r.lifecycle());
            if ended.killed && lifecycle == Some(Lifecycle::PerRequest) {
                // Nothing to wait for: it serves on, its verdict anew.
                self.update(id, |slot| slot.restarts += 1);
                next = self.restart(spec, driver, ended.running.as_ref()).await;
                reason = Some(ended.reason);
                continue;
            }
            let policy = &spec.container.restart;
            let after = match restart_policy::decide(policy, history, ended.success, ended.ran) {
                Decision::Stay(why) => return self.stay(id, &ended, policy.condition, why),
                Decision::Restart { after, history: h } => {
                    history = h;
                    after
                }
            };
            let m = format!("{}; restarting in {after:?}", ended.reason);
            self.set(id, InstanceState::Failed, Some(m));
            tokio::time::sleep(after).await;
            self.update(id, |slot| slot.restarts += 1);
            next = self.restart(spec, driver, ended.running.as_ref()).await;
            // After a restart, the last exit stays visible while it runs
            // again.
            reason = Some(format!("restarted after: {}", ended.reason));
        }
    }

    async fn restart(
        &self,
        spec: &InstanceSpec,
        driver: &Arc<dyn Driver>,
        previous: Option<&Arc<dyn Running>>,
    ) -> Result<Arc<dyn Running>, String> {
        driver
            .restart(spec, previous)
            .await
            .map_err(|e| e.to_string())
    }

    /// The restart policy says no more.
    fn stay(&self, id: &str, ended: &Ended, condition: RestartCondition, why: String) {
        let reason = format!("{}; {why}", ended.reason);
        if ended.success {
            return self.set(id, InstanceState::Stopped, Some(reason));
        }
        // `restart: no` means no second run anywhere (Swarm's `condition:
        // none`): failed, but not re-placed.
        if condition == RestartCondition::None {
            return self.set(id, InstanceState::Failed, Some(reason));
        }
        self.fail(id, reason)
    }

    /// Makes a started instance reachable, marks it running (with
    /// `reason`, what its last run said) and waits until it ends. `None`
    /// when the instance was unassigned meanwhile.
    async fn serve(
        &self,
        spec: &InstanceSpec,
        running: Arc<dyn Running>,
        reason: Option<String>,
    ) -> Option<Ended> {
        let id = &spec.id;
        if !self.register(spec, &running) {
            return None;
        }
        if reason.is_none() {
            let startup_ms = self.since_assigned_ms(id);
            tracing::info!(instance = %id, pid = ?running.pid(), startup_ms, "running");
        }
        self.set(id, InstanceState::Running, reason);
        self.watch_health(spec, running.clone());
        let began = Instant::now();
        let exit = running.ended().await;
        self.local.remove(id);
        let mut killed_for = None;
        self.update(id, |slot| {
            slot.running = None;
            killed_for = slot.killed_for.take();
            if let Some(w) = slot.watcher.take() {
                w.abort();
            }
        });
        let killed = killed_for.is_some();
        let (reason, last) = match killed_for {
            Some(kill) => (kill.reason, kill.last),
            None => (running.exit_reason(exit), false),
        };
        tracing::warn!(instance = %id, %reason, "ended");
        Some(Ended {
            reason,
            success: exit == Exit::Code(0) && !last,
            ran: began.elapsed(),
            last,
            killed,
            running: Some(running),
        })
    }
}

/// Why no driver of this host runs the artifact.
fn cannot_run(spec: &InstanceSpec, artifact: &Artifact, why: &str) -> String {
    match &spec.artifact {
        ArtifactRef::Image(reference) => format!(
            "image {reference} is a {}, and this host cannot run it: {why}",
            artifact.kind()
        ),
        ArtifactRef::Stored(digest) => {
            format!(
                "artifact {digest} is a {}, and this host cannot run it: {why}",
                artifact.kind()
            )
        }
    }
}
