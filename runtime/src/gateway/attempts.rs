//! Which instances one request (or TCP connection) tries, in what order:
//! the [balancer's](super::balance) choice by the loads of the moment, and
//! on a connect failure another choice without what failed — the whole
//! host when a remote one could not be reached, since its other instances
//! are likely down too. Bounded by [`MAX_ATTEMPTS`], so a request never
//! walks a large service one instance at a time. The random draws come
//! from the caller: the thread RNG in the gateway, a seeded one in tests.

use super::balance::{pick, to_canary};
use super::routes::{Route, RouteEndpoint};
use std::sync::atomic::Ordering;

/// Instances tried for one request or connection before giving up.
pub const MAX_ATTEMPTS: usize = 8;

/// The instances one request (or connection) may still try. `D` gives
/// uniform random numbers.
pub struct Attempts<'r, D> {
    route: &'r Route,
    excluded: Vec<usize>,
    left: usize,
    /// Try only canary (`Some(true)`) or only other instances first; the
    /// rest once those all failed.
    group: Option<bool>,
    draws: D,
}

impl<'r, D: FnMut() -> u64> Attempts<'r, D> {
    /// Attempts over all the route's instances, the canary ones getting
    /// their weight (all of it when `pinned`).
    pub fn new(route: &'r Route, pinned: bool, mut draws: D) -> Self {
        let eps = &route.endpoints;
        let has_canary = eps.iter().any(|e| e.endpoint.canary);
        let has_main = eps.iter().any(|e| !e.endpoint.canary);
        let group =
            has_canary.then(|| to_canary(route.canary_weight, pinned, draws(), true, has_main));
        Attempts {
            route,
            excluded: Vec::new(),
            left: MAX_ATTEMPTS.min(eps.len()),
            group,
            draws,
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

impl<'r, D: FnMut() -> u64> Iterator for Attempts<'r, D> {
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
        let draws = ((self.draws)(), (self.draws)());
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

/// Counts a request against an endpoint for as long as it is in flight:
/// the load the balancer reads.
pub struct Outstanding<'a>(&'a RouteEndpoint);

impl<'a> Outstanding<'a> {
    pub fn enter(ep: &'a RouteEndpoint) -> Self {
        ep.outstanding.fetch_add(1, Ordering::Relaxed);
        Outstanding(ep)
    }
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
