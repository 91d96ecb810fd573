//! Load-balancer choice: least outstanding requests with power-of-two
//! choices, and the weighted split between a service's canary and its
//! other instances. Pure: the caller passes the candidates' loads and the
//! random draws, so the policy is tested (by properties over seeded
//! inputs, in `balance/tests.rs`) without a gateway or a global RNG.
//! `Attempts` (in `attempts.rs`) applies it to one request.

/// Picks one of `loads.len()` endpoints (indices into `loads`), skipping the
/// indices in `exclude` (endpoints that already failed this request):
/// the less loaded of the two that `draws`, two uniform random numbers,
/// [`sample`]. Returns `None` when every endpoint is excluded.
pub fn pick(loads: &[usize], exclude: &[usize], draws: (u64, u64)) -> Option<usize> {
    let open: Vec<usize> = (0..loads.len()).filter(|i| !exclude.contains(i)).collect();
    let (a, b) = sample(&open, draws)?;
    Some(if loads[b] < loads[a] { b } else { a })
}

/// The two candidates `draws` choose from `open`: two different ones when
/// there are two or more, the only one twice when there is one.
pub fn sample(open: &[usize], draws: (u64, u64)) -> Option<(usize, usize)> {
    match open.len() {
        0 => None,
        1 => Some((open[0], open[0])),
        n => {
            let a = open[(draws.0 % n as u64) as usize];
            // The second draw picks among the others, so the two differ.
            let mut b = open[(draws.1 % (n as u64 - 1)) as usize];
            if b == a {
                b = open[n - 1];
            }
            Some((a, b))
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

#[cfg(test)]
mod tests;
