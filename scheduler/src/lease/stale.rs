//! A follower's judgement of the lease: the holder renews every quarter
//! of the TTL, each renewal a new revision of the key. A revision seen
//! unchanged for the whole TTL — on this process's monotonic clock, from
//! when this process first saw it — means the holder stopped renewing.
//! The follower then takes the lease over by compare-and-set, without
//! waiting for the bucket's max age to delete the key (JetStream expires
//! messages on its own schedule, a second or more late).
//!
//! Safe against a paused leader: the first sighting of a revision comes
//! after the holder sent that renewal, and the holder's fence closes a
//! quarter TTL before sent + TTL ([`super::Fence`]). Pure.

use std::time::{Duration, Instant};

/// The key's revision and when this process first saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sighting {
    revision: u64,
    since: Instant,
}

/// Whether the key, now at `revision`, has gone unrenewed for `ttl` as
/// seen from here; keeps `seen` up to date.
pub(crate) fn stale(
    seen: &mut Option<Sighting>,
    revision: u64,
    now: Instant,
    ttl: Duration,
) -> bool {
    match seen {
        Some(s) if s.revision == revision => now.duration_since(s.since) >= ttl,
        _ => {
            *seen = Some(Sighting {
                revision,
                since: now,
            });
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(4);

    #[test]
    fn a_revision_unchanged_for_the_ttl_is_stale() {
        let t0 = Instant::now();
        let mut seen = None;
        assert!(!stale(&mut seen, 7, t0, TTL), "first sighting");
        assert!(!stale(&mut seen, 7, t0 + Duration::from_secs(3), TTL));
        assert!(stale(&mut seen, 7, t0 + TTL, TTL));
    }

    #[test]
    fn every_renewal_starts_the_count_again() {
        let t0 = Instant::now();
        let mut seen = None;
        assert!(!stale(&mut seen, 7, t0, TTL));
        assert!(!stale(&mut seen, 8, t0 + Duration::from_secs(3), TTL));
        assert!(
            !stale(&mut seen, 8, t0 + Duration::from_secs(5), TTL),
            "8 was first seen at 3 s"
        );
        assert!(stale(&mut seen, 8, t0 + Duration::from_secs(7), TTL));
    }

    #[test]
    fn an_older_revision_read_from_a_lagging_replica_starts_over_too() {
        let t0 = Instant::now();
        let mut seen = None;
        assert!(!stale(&mut seen, 8, t0, TTL));
        assert!(!stale(&mut seen, 7, t0 + TTL, TTL));
    }
}
