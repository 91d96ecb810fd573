//! The server's own counters, for `/metrics`: placements made and how long
//! reconcile passes take.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the reconcile-duration histogram, in seconds.
pub(crate) const RECONCILE_BOUNDS_S: [f64; 8] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5];

#[derive(Default)]
pub(crate) struct Telemetry {
    placements: AtomicU64,
    reconciles: [AtomicU64; RECONCILE_BOUNDS_S.len() + 1],
    reconcile_us: AtomicU64,
    state_lost: AtomicBool,
}

impl Telemetry {
    /// Counts `n` more instances placed.
    pub(crate) fn placed(&self, n: u64) {
        self.placements.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn placements(&self) -> u64 {
        self.placements.load(Ordering::Relaxed)
    }

    /// Whether the controller holds because desired state was lost
    /// ([`crate::lost_state`]).
    pub(crate) fn set_state_lost(&self, lost: bool) {
        self.state_lost.store(lost, Ordering::Relaxed);
    }

    pub(crate) fn state_lost(&self) -> bool {
        self.state_lost.load(Ordering::Relaxed)
    }

    pub(crate) fn reconciled(&self, took: Duration) {
        let s = took.as_secs_f64();
        let i = (RECONCILE_BOUNDS_S.iter())
            .position(|b| s <= *b)
            .unwrap_or(RECONCILE_BOUNDS_S.len());
        self.reconciles[i].fetch_add(1, Ordering::Relaxed);
        self.reconcile_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// Per-bucket counts and the sum in seconds.
    pub(crate) fn reconcile_histogram(&self) -> (Vec<u64>, f64) {
        let counts = self
            .reconciles
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        (
            counts,
            self.reconcile_us.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}
