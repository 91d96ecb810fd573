//! Load-balancer choice: least outstanding requests with power-of-two
//! choices. Pure: the caller passes the candidates' loads and the two
//! random draws, so the policy is unit-tested without a gateway.

/// Picks one of `loads.len()` endpoints (indices into `loads`), skipping the
/// indices in `exclude` (endpoints that already failed this request).
/// `draws` are two uniform random numbers. Returns `None` when every
/// endpoint is excluded.
pub fn pick(loads: &[usize], exclude: &[usize], draws: (u64, u64)) -> Option<usize> {
    let open: Vec<usize> = (0..loads.len()).filter(|i| !exclude.contains(i)).collect();
    match open.len() {
        0 => None,
        1 => Some(open[0]),
        n => {
            let a = open[(draws.0 % n as u64) as usize];
            // The second draw picks among the others, so the two differ.
            let mut b = open[(draws.1 % (n as u64 - 1)) as usize];
            if b == a {
                b = open[n - 1];
            }
            Some(if loads[b] < loads[a] { b } else { a })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_less_loaded_of_two() {
        assert_eq!(pick(&[5, 1], &[], (0, 0)), Some(1));
        assert_eq!(pick(&[0, 9], &[], (1, 0)), Some(0));
    }

    #[test]
    fn skips_excluded_and_reports_none_when_all_fail() {
        assert_eq!(pick(&[0, 0, 0], &[0, 1], (7, 3)), Some(2));
        assert_eq!(pick(&[0, 0], &[0, 1], (1, 1)), None);
        assert_eq!(pick(&[], &[], (1, 1)), None);
    }

    #[test]
    fn spreads_evenly_when_loads_are_equal() {
        let mut hits = [0usize; 3];
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..3000 {
            // xorshift: a deterministic stand-in for the gateway's RNG.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let y = x.rotate_left(32);
            hits[pick(&[0, 0, 0], &[], (x, y)).unwrap_or(0)] += 1;
        }
        for h in hits {
            assert!((800..=1200).contains(&h), "uneven spread: {hits:?}");
        }
    }

    #[test]
    fn the_two_draws_are_distinct_endpoints() {
        // With loads [1, 0], any draw pair must be able to reach index 1.
        for d0 in 0..4 {
            for d1 in 0..4 {
                assert_eq!(pick(&[1, 0], &[], (d0, d1)), Some(1));
            }
        }
    }
}
