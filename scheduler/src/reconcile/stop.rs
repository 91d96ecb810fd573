//! An instance taken off its host, and why: decided by [`super::decide`]
//! and by the rolling updates of [`super::rollout`], carried out (and told
//! to the user) by [`super::apply`].

use super::input::Placed;

/// Why an instance is taken off its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopReason {
    /// Its host is down (or unknown): it is re-placed elsewhere, and the
    /// host stops it if it comes back.
    Lost,
    /// Its app or service is no longer deployed.
    Removed,
    /// Its app is stopped (`atoll stop`).
    AppStopped,
    /// Its service changed (another spec hash): a new instance replaces it.
    Changed,
    /// Its host no longer satisfies the placement rules: it moves.
    Unmatched,
    /// Its host is being drained (`atoll hosts drain`): it moves.
    Drained,
    /// More instances than desired (scale down, or a second instance of a
    /// global service on one host).
    Extra,
    /// Its host gave up on it (restarts used up, or it cannot run there):
    /// a new instance is placed, on another host if there is one.
    GaveUp,
    /// Its host is heard again after it was replaced (or it is the
    /// replacement): one of the pair stays, by `x-atoll.disconnect.reconcile`.
    Healed {
        policy: atoll_sdk::spec::HealPolicy,
        /// This one is the original (the replacement stays).
        original: bool,
    },
}

impl StopReason {
    pub(super) fn describe(self, host: &str) -> String {
        match self {
            StopReason::Lost => format!("host {host} is down"),
            StopReason::Removed => "no longer deployed".into(),
            StopReason::AppStopped => "app stopped".into(),
            StopReason::Changed => "service changed".into(),
            StopReason::Unmatched => format!("host {host} no longer matches the placement rules"),
            StopReason::Extra => "more instances than desired".into(),
            StopReason::Drained => format!("host {host} is being drained"),
            StopReason::GaveUp => format!("failed for good on {host}; placing it elsewhere"),
            StopReason::Healed { policy, original } => {
                let kept = if original {
                    "its replacement"
                } else {
                    "the original"
                };
                format!(
                    "host heard again: {kept} stays (reconcile: {})",
                    policy.as_str()
                )
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Stop<'a> {
    pub placed: Placed<'a>,
    pub reason: StopReason,
}
