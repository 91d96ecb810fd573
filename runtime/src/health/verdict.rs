//! From probe results to a verdict, as Docker counts them: a check starts
//! out `starting`; a pass makes it `healthy` (and ends the start period);
//! after the start period, `retries` failures in a row make it
//! `unhealthy`. Plain data, the caller passes the time.

use atoll_sdk::cluster::HealthState;
use atoll_sdk::spec::Check;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Tracker {
    retries: u32,
    start_period: Duration,
    failures: u32,
    passed: bool,
    state: HealthState,
}

impl Tracker {
    pub fn new(check: &Check) -> Tracker {
        Tracker {
            retries: check.retries.max(1),
            start_period: Duration::from_millis(check.start_period_ms),
            failures: 0,
            passed: false,
            state: HealthState::Starting,
        }
    }

    pub fn state(&self) -> HealthState {
        self.state
    }

    /// Takes one probe result in, `since_start` after the instance
    /// started; the verdict after it.
    pub fn record(&mut self, ok: bool, since_start: Duration) -> HealthState {
        if ok {
            self.passed = true;
            self.failures = 0;
            self.state = HealthState::Healthy;
            return self.state;
        }
        // Failures in the start period do not count, until a first pass.
        if !self.passed && since_start < self.start_period {
            return self.state;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.retries {
            self.state = HealthState::Unhealthy;
        }
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::spec::Probe;

    fn check(retries: u32, start_period_ms: u64) -> Check {
        Check {
            probe: Probe::Http {
                path: "/".into(),
                port: None,
            },
            interval_ms: 1000,
            timeout_ms: 1000,
            retries,
            start_period_ms,
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn starting_until_a_pass_then_unhealthy_after_retries_failures_in_a_row() {
        let mut t = Tracker::new(&check(3, 0));
        assert_eq!(t.state(), HealthState::Starting);
        assert_eq!(t.record(true, S), HealthState::Healthy);
        assert_eq!(t.record(false, S), HealthState::Healthy);
        assert_eq!(t.record(false, S), HealthState::Healthy);
        assert_eq!(
            t.record(true, S),
            HealthState::Healthy,
            "a pass resets the count"
        );
        for _ in 0..2 {
            assert_eq!(t.record(false, S), HealthState::Healthy);
        }
        assert_eq!(t.record(false, S), HealthState::Unhealthy);
        assert_eq!(
            t.record(true, S),
            HealthState::Healthy,
            "and it can recover"
        );
    }

    #[test]
    fn a_check_that_never_passes_turns_unhealthy_after_the_start_period() {
        let mut t = Tracker::new(&check(2, 5000));
        for _ in 0..10 {
            assert_eq!(t.record(false, 2 * S), HealthState::Starting);
        }
        assert_eq!(t.record(false, 6 * S), HealthState::Starting);
        assert_eq!(t.record(false, 7 * S), HealthState::Unhealthy);
    }

    #[test]
    fn a_pass_ends_the_start_period() {
        let mut t = Tracker::new(&check(1, 60_000));
        t.record(true, S);
        assert_eq!(t.record(false, 2 * S), HealthState::Unhealthy);
    }
}
