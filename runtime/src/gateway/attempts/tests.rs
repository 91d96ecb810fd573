//! One request's attempts: worked examples, then properties over random
//! routes and failures from seeded RNGs (a failure names its seed).

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Seeds each property runs over.
const CASES: u64 = 500;

fn route(hosts: &[&str]) -> Route {
    Route {
        app: "a".into(),
        service: "s".into(),
        ports: Vec::new(),
        timeout: std::time::Duration::from_secs(1),
        vip: std::net::Ipv4Addr::new(10, 90, 0, 1),
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

/// Uniform draws from a seeded RNG.
fn seeded(seed: u64) -> impl FnMut() -> u64 {
    let mut rng = StdRng::seed_from_u64(seed);
    move || rng.random()
}

#[test]
fn a_canary_group_falls_back_to_the_others_when_it_fails() {
    let mut r = route(&["h1", "h1"]);
    r.endpoints[1].endpoint.canary = true;
    r.canary_weight = 100;
    let mut a = Attempts::new(&r, false, seeded(1));
    assert_eq!(a.next().map(|(i, _)| i), Some(1));
    a.failed(1, false);
    assert_eq!(a.next().map(|(i, _)| i), Some(0));
}

#[test]
fn a_failed_remote_host_takes_its_other_instances_out() {
    let r = route(&["h1", "h2", "h2"]);
    let mut a = Attempts::new(&r, false, seeded(2));
    a.failed(1, true);
    let (i, _) = a.next().expect("one left");
    assert_eq!(i, 0, "both h2 instances are out");
    a.failed(0, false);
    assert!(a.next().is_none());
}

#[test]
fn a_local_failure_takes_out_only_that_instance_and_attempts_are_bounded() {
    let r = route(&["h1", "h1"]);
    let mut a = Attempts::new(&r, false, seeded(3));
    a.failed(0, false);
    assert_eq!(a.next().map(|(i, _)| i), Some(1));
    let many = route(&["h1"; 20]);
    let tried = Attempts::new(&many, false, seeded(4)).count();
    assert_eq!(tried, MAX_ATTEMPTS);
}

/// Up to 14 instances on up to 4 hosts, some of them canaries, with
/// random loads and canary weight.
fn random_route(rng: &mut StdRng) -> Route {
    const HOSTS: [&str; 4] = ["h0", "h1", "h2", "h3"];
    let n = rng.random_range(1..=14);
    let hosts: Vec<&str> = (0..n).map(|_| HOSTS[rng.random_range(0..4)]).collect();
    let mut r = route(&hosts);
    r.canary_weight = rng.random_range(0..=100);
    for ep in &mut r.endpoints {
        ep.endpoint.canary = rng.random_bool(0.3);
        ep.outstanding
            .store(rng.random_range(0..4), Ordering::Relaxed);
    }
    r
}

#[test]
fn property_attempts_never_repeat_never_reach_what_failed_and_are_bounded() {
    for seed in 0..CASES {
        let mut rng = StdRng::seed_from_u64(seed);
        let r = random_route(&mut rng);
        let n = r.endpoints.len();
        let pinned = rng.random_bool(0.5);
        let mut a = Attempts::new(&r, pinned, seeded(rng.random()));
        // What the attempts must skip by now: every instance that failed,
        // and every instance at the address of one that failed remotely.
        let mut gone = vec![false; n];
        let mut tried: Vec<usize> = Vec::new();
        let mut first_group = None;
        while let Some((i, ep)) = a.next() {
            assert!(!tried.contains(&i), "seed {seed}: {i} twice in {tried:?}");
            assert!(!gone[i], "seed {seed}: {i} tried after it was excluded");
            let group = *first_group.get_or_insert(ep.endpoint.canary);
            if pinned && r.endpoints.iter().any(|e| e.endpoint.canary) {
                assert!(group, "seed {seed}: pinned, yet the first try is no canary");
            }
            let group_left = (0..n).any(|j| !gone[j] && r.endpoints[j].endpoint.canary == group);
            if group_left {
                assert_eq!(
                    ep.endpoint.canary, group,
                    "seed {seed}: left its group early"
                );
            }
            tried.push(i);
            let remote = rng.random_bool(0.4);
            a.failed(i, remote);
            for (j, other) in r.endpoints.iter().enumerate() {
                if j == i || (remote && other.endpoint.address == ep.endpoint.address) {
                    gone[j] = true;
                }
            }
        }
        assert!(tried.len() <= MAX_ATTEMPTS, "seed {seed}: {tried:?}");
        // It gives up only at the bound or with nothing left to try.
        if tried.len() < MAX_ATTEMPTS.min(n) {
            assert!(gone.iter().all(|&g| g), "seed {seed}: gave up early");
        }
    }
}

#[test]
fn property_the_first_try_goes_to_the_canary_by_its_weight() {
    for seed in 0..CASES / 25 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut r = random_route(&mut rng);
        r.endpoints[0].endpoint.canary = true;
        r.endpoints.push(route(&["h9"]).endpoints.remove(0));
        let rounds = 10_000;
        let mut draws = seeded(rng.random());
        let canary = (0..rounds)
            .filter(|_| {
                let mut a = Attempts::new(&r, false, &mut draws);
                a.next().is_some_and(|(_, ep)| ep.endpoint.canary)
            })
            .count();
        let share = canary as f64 / rounds as f64;
        let want = f64::from(r.canary_weight) / 100.0;
        assert!(
            (share - want).abs() < 0.03,
            "seed {seed}: weight {}, canary share {share}",
            r.canary_weight
        );
    }
}
