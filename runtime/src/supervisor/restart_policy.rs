//! Whether and when an exited container starts again: Compose `restart` /
//! `deploy.restart_policy` with exponential backoff. Pure.

use std::time::Duration;

use atoll_sdk::spec::{RestartCondition, RestartPolicy};

/// Longest wait between restarts.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
const DEFAULT_DELAY: Duration = Duration::from_millis(100);
/// Without a `window`, a run this long counts as a success: the backoff
/// and the attempt count start over.
const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

/// What the supervisor remembers between restarts of one instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    /// Restarts since the last run that lasted the window.
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Restart {
        after: Duration,
        history: History,
    },
    /// The policy says no more; the reason says which rule.
    Stay(String),
}

/// `success` is a zero exit code; `ran` how long the container ran.
pub fn decide(policy: &RestartPolicy, history: History, success: bool, ran: Duration) -> Decision {
    match policy.condition {
        RestartCondition::None => return Decision::Stay("restart policy is `no`".into()),
        RestartCondition::OnFailure if success => {
            return Decision::Stay("exited successfully; restart policy is `on-failure`".into());
        }
        _ => {}
    }
    let window = policy
        .window_ms
        .map_or(DEFAULT_WINDOW, Duration::from_millis);
    let attempts = if ran >= window { 0 } else { history.attempts };
    if let Some(max) = policy.max_attempts
        && attempts >= max
    {
        return Decision::Stay(format!("gave up after {max} restart attempts"));
    }
    let base = policy.delay_ms.map_or(DEFAULT_DELAY, Duration::from_millis);
    let after = base
        .saturating_mul(1u32.checked_shl(attempts.min(16)).unwrap_or(u32::MAX))
        .min(MAX_DELAY.max(base));
    Decision::Restart {
        after,
        history: History {
            attempts: attempts + 1,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(condition: RestartCondition) -> RestartPolicy {
        RestartPolicy {
            condition,
            ..Default::default()
        }
    }

    const QUICK: Duration = Duration::from_millis(50);

    #[test]
    fn conditions() {
        let h = History::default();
        assert!(matches!(
            decide(&policy(RestartCondition::None), h, false, QUICK),
            Decision::Stay(_)
        ));
        assert!(matches!(
            decide(&policy(RestartCondition::OnFailure), h, true, QUICK),
            Decision::Stay(_)
        ));
        assert!(matches!(
            decide(&policy(RestartCondition::OnFailure), h, false, QUICK),
            Decision::Restart { .. }
        ));
        assert!(matches!(
            decide(&policy(RestartCondition::Any), h, true, QUICK),
            Decision::Restart { .. }
        ));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = policy(RestartCondition::Any);
        let mut h = History::default();
        let mut delays = Vec::new();
        for _ in 0..12 {
            match decide(&p, h, false, QUICK) {
                Decision::Restart { after, history } => {
                    delays.push(after);
                    h = history;
                }
                Decision::Stay(r) => panic!("{r}"),
            }
        }
        assert_eq!(delays[0], Duration::from_millis(100));
        assert_eq!(delays[1], Duration::from_millis(200));
        assert_eq!(delays[2], Duration::from_millis(400));
        assert_eq!(*delays.last().unwrap(), MAX_DELAY);
    }

    #[test]
    fn a_long_run_resets_the_backoff_and_max_attempts_holds() {
        let p = RestartPolicy {
            condition: RestartCondition::Any,
            max_attempts: Some(2),
            window_ms: Some(1000),
            delay_ms: Some(10),
        };
        let h = History { attempts: 2 };
        assert!(matches!(decide(&p, h, false, QUICK), Decision::Stay(_)));
        match decide(&p, h, false, Duration::from_secs(2)) {
            Decision::Restart { after, history } => {
                assert_eq!(after, Duration::from_millis(10));
                assert_eq!(history.attempts, 1);
            }
            Decision::Stay(r) => panic!("{r}"),
        }
    }
}
