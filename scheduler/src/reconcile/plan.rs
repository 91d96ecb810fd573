//! What reconciliation produces: the [`Plan`] the controller writes, and
//! the [`PlanEvent`]s it tells the user about.

use super::rollout::Progress;
use atoll_sdk::cluster::Assignment;
use std::collections::BTreeMap;

/// What the controller must write, and what to tell the user.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Plan {
    /// Hosts whose assignment must change → their new full assignment,
    /// instances sorted by id. Hosts whose assignment is unchanged are
    /// absent.
    pub assignments: BTreeMap<String, Assignment>,
    /// app → service → why not all desired instances could be placed (the
    /// [`crate::placement::Explain`] text).
    pub unplaced: BTreeMap<String, BTreeMap<String, String>>,
    /// What the plan does, in words, for `atoll events`.
    pub events: Vec<PlanEvent>,
    /// app → service → how its rolling update goes, while one runs.
    pub rollouts: BTreeMap<String, BTreeMap<String, Progress>>,
}

impl Plan {
    /// Whether no assignment changes: the cluster already matches.
    #[cfg(test)]
    pub(crate) fn changes_nothing(&self) -> bool {
        self.assignments.is_empty()
    }
}

/// One human-readable step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlanEvent {
    /// One of [`event_kind`]; the `kind` of the published
    /// [`atoll_sdk::protocol::Event`].
    pub kind: &'static str,
    pub app: String,
    pub message: String,
}

/// The kinds of [`PlanEvent`]s.
pub(crate) mod event_kind {
    /// A new instance is assigned to a host.
    pub(crate) const PLACE: &str = "place";
    /// An instance a host runs without an assignment (the assignments were
    /// lost) is assigned to it under its own id.
    pub(crate) const ADOPT: &str = "adopt";
    /// An instance is taken off a host that is up.
    pub(crate) const STOP: &str = "stop";
    /// An instance's host is silent for longer than its `lost_after` (or
    /// gone): it is replaced elsewhere.
    pub(crate) const LOST: &str = "lost";
    /// A new instance replaces one lost with its silent host.
    pub(crate) const REPLACED: &str = "replaced";
    /// A host is heard again: of an original and its replacement, one
    /// stays (`kept original` / `kept replacement`).
    pub(crate) const HEAL: &str = "heal";
    /// An instance's host gave up on it; it is re-placed, elsewhere when
    /// another host will do.
    pub(crate) const RESCHEDULE: &str = "reschedule";
    /// Some desired instances fit nowhere. Level-triggered like the rest of
    /// the plan, so every reconcile that still cannot place them says it
    /// again: publish it only when the app status's `unplaced` changes.
    pub(crate) const UNPLACEABLE: &str = "unplaceable";
}
