//! Load-balancer choice: least outstanding requests with power-of-two
//! choices. Pure: the caller passes the candidates' loads and the two
//! random draws, so the policy is unit-tested without a gateway.
//! [`Attempts`] applies it to one request or connection: pick, and on a
//! failure pick again without what failed.

use super::routes::{Route, RouteEndpoint};
use std::sync::atomic::Ordering;

/// Instances tried for one request or connection before giving up.
const MAX_ATTEMPTS: usize = 8;

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

/// Whether a request goes to the canary instances: always when pinned to
/// them (and there are some), else `weight` percent of the time by the
/// uniform `draw`; never without canary instances, always without others.
pub fn to_canary(weight: u8, pinned: bool, draw: u64, has_canary: bool, has_main: bool) -> bool {
    match (has_canary, has_main) {
        (false, _) => false,
        (true, false) => true,
        (true, true) => pinned || draw % 100 < u64::from(weight.min(100)),
    }
}

/// The instances one request (or connection) may still try.
pub struct Attempts<'r> {
    route: &'r Route,
    excluded: Vec<usize>,
    left: usize,
    /// Try only canary (`Some(true)`) or only other instances first; the
    /// rest once those all failed.
    group: Option<bool>,
}

impl<'r> Iterator for Attempts<'r> {
    type Item = (usize, &'r RouteEndpoint);

    /// The next instance to try, by the loads of this moment.
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let loads: Vec<usize> = (self.route.endpoints.iter())
            .map(|e| e.outstanding.load(Ordering::Relaxed))
            .collect();
        let draws = (rand::random::<u64>(), rand::random::<u64>());
        if let Some(canary) = self.group {
            let mut out = self.excluded.clone();
            for (j, ep) in self.route.endpoints.iter().enumerate() {
                if ep.endpoint.canary != canary && !out.contains(&j) {
                    out.push(j);
                }
            }
            if let Some(i) = pick(&loads, &out, draws) {
                return Some((i, &self.route.endpoints[i]));
            }
            // The group is exhausted: the others serve rather than nobody.
            self.group = None;
        }
        let i = pick(&loads, &self.excluded, draws)?;
        Some((i, &self.route.endpoints[i]))
    }
}

impl<'r> Attempts<'r> {
    /// Attempts over all the route's instances, the canary ones getting
    /// their weight (all of it when `pinned`).
    pub fn new(route: &'r Route, pinned: bool) -> Self {
        let eps = &route.endpoints;
        let has_canary = eps.iter().any(|e| e.endpoint.canary);
        let has_main = eps.iter().any(|e| !e.endpoint.canary);
        let group = has_canary
            .then(|| to_canary(route.canary_weight, pinned, rand::random(), true, has_main));
        Attempts {
            route,
            excluded: Vec::new(),
            left: MAX_ATTEMPTS.min(eps.len()),
            group,
        }
    }

    /// Instance `i` could not be reached. On another host (`remote`), that
    /// host is likely down as a whole: its other instances are skipped too.
    pub fn failed(&mut self, i: usize, remote: bool) {
        let address = &self.route.endpoints[i].endpoint.address;
        for (j, ep) in self.route.endpoints.iter().enumerate() {
            let gone = j == i || (remote && ep.endpoint.address == *address);
            if gone && !self.excluded.contains(&j) {
                self.excluded.push(j);
            }
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

    fn route(hosts: &[&str]) -> Route {
        Route {
            app: "a".into(),
            service: "s".into(),
            ports: Vec::new(),
            timeout: std::time::Duration::from_secs(1),
            canary_weight: 0,
            endpoints: hosts
                .iter()
                .enumerate()
                .map(|(i, h)| RouteEndpoint {
                    endpoint: atoll_sdk::protocol::Endpoint {
                        id: format!("i{i}"),
                        host: (*h).into(),
                        address: format!("addr-{h}"),
                        mesh_port: 7421,
                        canary: false,
                    },
                    outstanding: Default::default(),
                })
                .collect(),
            wake: false,
        }
    }

    #[test]
    fn canary_weight_pinning_and_missing_groups() {
        let share = (0..1000u64)
            .filter(|&d| to_canary(20, false, d, true, true))
            .count();
        assert_eq!(share, 200);
        assert!(
            to_canary(0, true, 99, true, true),
            "a pinned request reaches the canary"
        );
        assert!(
            !to_canary(100, true, 0, false, true),
            "no canary, no canary"
        );
        assert!(to_canary(0, false, 0, true, false), "only canaries left");
    }

    #[test]
    fn a_canary_group_falls_back_to_the_others_when_it_fails() {
        let mut r = route(&["h1", "h1"]);
        r.endpoints[1].endpoint.canary = true;
        r.canary_weight = 100;
        let mut a = Attempts::new(&r, false);
        assert_eq!(a.next().map(|(i, _)| i), Some(1));
        a.failed(1, false);
        assert_eq!(a.next().map(|(i, _)| i), Some(0));
    }

    #[test]
    fn a_failed_remote_host_takes_its_other_instances_out() {
        let r = route(&["h1", "h2", "h2"]);
        let mut a = Attempts::new(&r, false);
        a.failed(1, true);
        let (i, _) = a.next().expect("one left");
        assert_eq!(i, 0, "both h2 instances are out");
        a.failed(0, false);
        assert!(a.next().is_none());
    }

    #[test]
    fn a_local_failure_takes_out_only_that_instance_and_attempts_are_bounded() {
        let r = route(&["h1", "h1"]);
        let mut a = Attempts::new(&r, false);
        a.failed(0, false);
        assert_eq!(a.next().map(|(i, _)| i), Some(1));
        let many = route(&["h1"; 20]);
        let tried = Attempts::new(&many, false).count();
        assert_eq!(tried, MAX_ATTEMPTS);
    }
}
