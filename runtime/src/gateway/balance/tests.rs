//! The balancer's choice: a few worked examples, then properties checked
//! over many inputs drawn from seeded RNGs (a failure names its seed).

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Seeds each property runs over.
const CASES: u64 = 500;

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
fn the_two_draws_are_distinct_endpoints() {
    // With loads [1, 0], any draw pair must be able to reach index 1.
    for d0 in 0..4 {
        for d1 in 0..4 {
            assert_eq!(pick(&[1, 0], &[], (d0, d1)), Some(1));
        }
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

/// Up to 12 endpoints with loads up to 5 (so ties are common), and a
/// random subset of them excluded.
fn case(rng: &mut StdRng) -> (Vec<usize>, Vec<usize>) {
    let n = rng.random_range(0..=12);
    let loads = (0..n).map(|_| rng.random_range(0..=5)).collect();
    let exclude = (0..n).filter(|_| rng.random_bool(0.3)).collect();
    (loads, exclude)
}

#[test]
fn property_the_pick_is_open_and_the_less_loaded_of_the_two_sampled() {
    for seed in 0..CASES {
        let mut rng = StdRng::seed_from_u64(seed);
        let (loads, exclude) = case(&mut rng);
        let open: Vec<usize> = (0..loads.len()).filter(|i| !exclude.contains(i)).collect();
        for _ in 0..20 {
            let draws = (rng.random(), rng.random());
            let got = pick(&loads, &exclude, draws);
            let Some(i) = got else {
                assert!(open.is_empty(), "seed {seed}: None with {open:?} open");
                continue;
            };
            assert!(open.contains(&i), "seed {seed}: picked {i}, not open");
            let (a, b) = sample(&open, draws).expect("some are open");
            assert!(a != b || open.len() == 1, "seed {seed}: sampled {a} twice");
            assert!(open.contains(&a) && open.contains(&b), "seed {seed}");
            assert!(i == a || i == b, "seed {seed}: {i} was not sampled");
            assert!(
                loads[i] <= loads[a].min(loads[b]),
                "seed {seed}: picked load {} of {a}:{} and {b}:{}",
                loads[i],
                loads[a],
                loads[b]
            );
            // Hence a strictly busiest endpoint is never chosen over others.
            let max = open.iter().map(|&j| loads[j]).max();
            let busiest = open.iter().filter(|&&j| Some(loads[j]) == max).count();
            if open.len() > 1 && busiest == 1 {
                assert!(Some(loads[i]) < max, "seed {seed}: picked the busiest");
            }
        }
    }
}

#[test]
fn property_everything_excluded_is_none() {
    for seed in 0..CASES {
        let mut rng = StdRng::seed_from_u64(seed);
        let (loads, _) = case(&mut rng);
        let all: Vec<usize> = (0..loads.len()).collect();
        let draws = (rng.random(), rng.random());
        assert_eq!(pick(&loads, &all, draws), None, "seed {seed}");
    }
}

#[test]
fn property_with_equal_loads_every_open_endpoint_is_picked_evenly() {
    for seed in 0..CASES / 10 {
        let mut rng = StdRng::seed_from_u64(seed);
        let (loads, exclude) = case(&mut rng);
        let loads = vec![0; loads.len()];
        let open: Vec<usize> = (0..loads.len()).filter(|i| !exclude.contains(i)).collect();
        let rounds = 1000 * open.len();
        let mut hits = vec![0usize; loads.len()];
        for _ in 0..rounds {
            if let Some(i) = pick(&loads, &exclude, (rng.random(), rng.random())) {
                hits[i] += 1;
            }
        }
        for &i in &open {
            // Each is expected 1000 times; 800 is over 6 standard deviations off.
            assert!(hits[i] >= 800, "seed {seed}: {i} picked {hits:?}");
        }
    }
}

#[test]
fn property_canary_share_follows_the_weight_and_pinning_wins() {
    for seed in 0..CASES / 10 {
        let mut rng = StdRng::seed_from_u64(seed);
        let weight: u8 = rng.random_range(0..=120);
        let rounds = 10_000;
        let share = (0..rounds)
            .filter(|_| to_canary(weight, false, rng.random(), true, true))
            .count() as f64
            / rounds as f64;
        let want = f64::from(weight.min(100)) / 100.0;
        assert!(
            (share - want).abs() < 0.03,
            "seed {seed}: weight {weight}, canary share {share}"
        );
        let draw = rng.random();
        assert!(to_canary(weight, true, draw, true, rng.random()), "pinned");
        assert!(!to_canary(weight, rng.random(), draw, false, rng.random()));
        assert!(to_canary(weight, rng.random(), draw, true, false));
    }
}
