//! Mass loss means the observer is the problem: when more than a share of
//! the hosts went silent within one window, the likelier cause is a link
//! between them and the control plane (its uplink, NATS), not that many
//! machines died at once. The controller then holds — re-places nothing —
//! until hosts are heard again. Pure.

/// Whether more than `share` of `total` hosts went silent within any one
/// `window_ms`: `silent_since` are the moments (server clock, ms) the
/// silent hosts went silent.
pub(crate) fn holding(silent_since: &[u64], total: usize, window_ms: u64, share: f64) -> bool {
    if total == 0 || silent_since.is_empty() {
        return false;
    }
    let mut times = silent_since.to_vec();
    times.sort_unstable();
    // The most silences any window of `window_ms` holds.
    let mut most = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] > window_ms {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most as f64 > share * total as f64
}

#[cfg(test)]
mod tests {
    use super::holding;

    #[test]
    fn many_hosts_silent_together_hold() {
        // 3 of 4 within 10 s: more than half.
        assert!(holding(&[1_000, 2_000, 9_000], 4, 10_000, 0.5));
        // Exactly half does not.
        assert!(!holding(&[1_000, 2_000], 4, 10_000, 0.5));
        // Every host of a one-host cluster: the control plane cannot tell.
        assert!(holding(&[5_000], 1, 10_000, 0.5));
    }

    #[test]
    fn hosts_lost_one_by_one_do_not() {
        // Three silences, an hour apart: real failures, replaced.
        assert!(!holding(&[0, 3_600_000, 7_200_000], 4, 10_000, 0.5));
        assert!(!holding(&[], 4, 10_000, 0.5));
        assert!(!holding(&[1], 0, 10_000, 0.5));
    }

    #[test]
    fn the_share_is_configurable() {
        assert!(holding(&[0, 1], 10, 1_000, 0.1));
        assert!(!holding(&[0, 1], 10, 1_000, 0.2));
    }
}
