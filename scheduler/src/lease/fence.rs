//! The fence a leader writes behind: its epoch, and a deadline past which
//! it may have lost the lease without knowing (it was paused, or its
//! renewals did not get through). Judged on this process's monotonic
//! clock only: the deadline is when the last successful renewal was sent,
//! plus the TTL, less a margin for the time a write takes to land. Pure.

use super::Hold;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fence {
    /// While leading: the epoch and the deadline.
    lead: Option<(u64, Instant)>,
}

/// Why a leader may not write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Fenced {
    #[error("this server does not lead")]
    NotLeading,
    #[error(
        "the lease of epoch {epoch} may have expired (its last renewal is older than the TTL allows)"
    )]
    Expired { epoch: u64 },
}

impl Fence {
    pub(crate) fn following() -> Fence {
        Fence { lead: None }
    }

    pub(crate) fn leading(&self) -> bool {
        self.lead.is_some()
    }

    pub(crate) fn epoch(&self) -> Option<u64> {
        self.lead.map(|(e, _)| e)
    }

    /// The fence after an attempt to hold the lease sent at `sent`.
    pub(crate) fn after(self, hold: Hold, sent: Instant, ttl: Duration) -> Fence {
        let deadline = sent + ttl.saturating_sub(ttl / 4);
        match hold {
            Hold::Following => Fence::following(),
            Hold::Leading {
                epoch,
                renewed: true,
            } => Fence {
                lead: Some((epoch, deadline)),
            },
            // Still ours, not extended: the old deadline stands (none
            // for an epoch this server did not hold yet).
            Hold::Leading {
                epoch,
                renewed: false,
            } => Fence {
                lead: self.lead.filter(|(e, _)| *e == epoch),
            },
        }
    }

    /// The epoch to write with, if a write may go `now`.
    pub(crate) fn check(&self, now: Instant) -> Result<u64, Fenced> {
        match self.lead {
            None => Err(Fenced::NotLeading),
            Some((epoch, deadline)) if now < deadline => Ok(epoch),
            Some((epoch, _)) => Err(Fenced::Expired { epoch }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(4);

    #[test]
    fn a_renewal_opens_the_fence_until_three_quarters_of_the_ttl() {
        let t0 = Instant::now();
        let f = Fence::following().after(
            Hold::Leading {
                epoch: 7,
                renewed: true,
            },
            t0,
            TTL,
        );
        assert_eq!(f.check(t0 + Duration::from_millis(2_999)), Ok(7));
        assert_eq!(
            f.check(t0 + Duration::from_secs(3)),
            Err(Fenced::Expired { epoch: 7 })
        );
    }

    #[test]
    fn a_paused_leader_finds_its_fence_closed_when_it_wakes() {
        let t0 = Instant::now();
        let f = Fence::following().after(
            Hold::Leading {
                epoch: 7,
                renewed: true,
            },
            t0,
            TTL,
        );
        // kill -STOP for 10 s: its monotonic clock went on.
        assert!(f.check(t0 + Duration::from_secs(10)).is_err());
    }

    #[test]
    fn a_lost_answer_keeps_the_old_deadline_and_a_new_epoch_needs_a_renewal() {
        let t0 = Instant::now();
        let f = Fence::following().after(
            Hold::Leading {
                epoch: 7,
                renewed: true,
            },
            t0,
            TTL,
        );
        let later = t0 + Duration::from_secs(1);
        let kept = f.after(
            Hold::Leading {
                epoch: 7,
                renewed: false,
            },
            later,
            TTL,
        );
        assert_eq!(kept.check(t0 + Duration::from_millis(2_900)), Ok(7));
        assert!(
            kept.check(later + Duration::from_millis(2_900)).is_err(),
            "not extended"
        );
        let other = f.after(
            Hold::Leading {
                epoch: 9,
                renewed: false,
            },
            later,
            TTL,
        );
        assert_eq!(other.check(later), Err(Fenced::NotLeading));
        assert_eq!(f.after(Hold::Following, later, TTL), Fence::following());
    }
}
