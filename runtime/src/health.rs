//! Health checks of running instances. Each instance with a check gets a
//! watcher task: it probes (`probe`), counts the results (`verdict`), and
//! tells the supervisor when the readiness verdict changes and when the
//! liveness check says the instance must be restarted.
//!
//! The first probe runs as soon as the instance runs, and while an
//! instance is still `starting` it is probed at least every 500 ms, so a
//! new instance takes traffic soon after it can.

pub(crate) mod probe;
pub(crate) mod verdict;

use atoll_sdk::cluster::HealthState;
use atoll_sdk::spec::{Check, Health};
use probe::Target;
use std::time::{Duration, Instant};
use verdict::Tracker;

/// Longest wait between probes of an instance that has not passed yet.
const STARTING_INTERVAL: Duration = Duration::from_millis(500);

/// What a watcher tells the supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The readiness verdict changed; the last failure when not healthy.
    Ready(HealthState, Option<String>),
    /// The liveness check failed `retries` times in a row: restart it. The
    /// watcher ends here (the restarted instance gets a new one).
    Restart(String),
}

/// Watches one instance until aborted, or until it asks for a restart.
pub(crate) async fn watch(health: Health, target: Target, on: impl Fn(Verdict) + Send + Sync) {
    let started = Instant::now();
    match health.live {
        Some(live) if live == health.ready => {
            run_check(&health.ready, &target, started, &on, Role::Both).await
        }
        Some(live) => {
            tokio::select! {
                _ = run_check(&health.ready, &target, started, &on, Role::Ready) => {}
                _ = run_check(&live, &target, started, &on, Role::Live) => {}
            }
        }
        None => run_check(&health.ready, &target, started, &on, Role::Ready).await,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Ready,
    Live,
    Both,
}

/// Runs one check forever (readiness), or until it fails (liveness).
async fn run_check(
    check: &Check,
    target: &Target,
    started: Instant,
    on: &(impl Fn(Verdict) + Send + Sync),
    role: Role,
) {
    let mut tracker = Tracker::new(check);
    let timeout = Duration::from_millis(check.timeout_ms);
    let interval = Duration::from_millis(check.interval_ms);
    loop {
        let result = probe::run(&check.probe, target, timeout).await;
        let before = tracker.state();
        let after = tracker.record(result.is_ok(), started.elapsed());
        let failure = result.err().map(|e| e.to_string());
        if role != Role::Live && after != before {
            on(Verdict::Ready(after, failure.clone()));
        }
        if role != Role::Ready && after == HealthState::Unhealthy {
            let why = failure.unwrap_or_else(|| "health check failed".into());
            on(Verdict::Restart(why));
            return;
        }
        let wait = match after {
            HealthState::Starting => interval.min(STARTING_INTERVAL),
            _ => interval,
        };
        tokio::time::sleep(wait).await;
    }
}
