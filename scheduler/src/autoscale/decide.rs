//! The autoscaler's decision: how many instances a service with
//! `x-atoll.autoscale` should run, from the load it had lately.
//!
//! In the spirit of the Kubernetes HPA and Knative's KPA: the need at any
//! moment is `ceil(load / target)` (the load summed over the instances, so
//! the count that would bring each instance to the target). It scales up
//! to the highest need of the short `scale_up_window` — a burst is met
//! within a sample or two — and down only to the highest need of the long
//! `scale_down_window`, once that window is covered by observations and
//! has passed since the last change, so a dip does not shed instances a
//! moment before they are needed again. The result stays within `min` and
//! `max`, and does not grow past what the hosts can place.

use atoll_sdk::spec::{Autoscale, ScaleMetric};

/// However short `scale_down_window` is, a service goes to zero only after
/// this long without load and without a change.
pub(crate) const MIN_IDLE_BEFORE_ZERO_MS: u64 = 3_000;

/// The service's summed load at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Observation {
    pub at_ms: u64,
    pub load: f64,
}

/// What the autoscaler knows of one service.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Input<'a> {
    pub cfg: &'a Autoscale,
    /// The replica count decided last.
    pub current: u32,
    /// When that was decided.
    pub changed_ms: u64,
    /// Observations, oldest first.
    pub history: &'a [Observation],
    pub now_ms: u64,
    /// The most instances the hosts can take now (the current ones when
    /// some could not be placed); `None`: no known limit.
    pub room: Option<u32>,
}

/// A new replica count, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub replicas: u32,
    pub reason: String,
}

/// The new count, if it changes.
pub(crate) fn decide(input: &Input<'_>) -> Option<Decision> {
    let cfg = input.cfg;
    let now = input.now_ms;
    let target = cfg.target_milli as f64 / 1000.0;
    let need = |o: &Observation| need(o.load, target);
    let within = |window: u64| {
        let since = now.saturating_sub(window);
        (input.history.iter()).filter(move |o| o.at_ms >= since && o.at_ms <= now)
    };
    let latest = input.history.last()?;
    let up = within(cfg.scale_up_window_ms)
        .map(need)
        .max()
        .unwrap_or_else(|| need(latest));
    let down = within(cfg.scale_down_window_ms)
        .map(need)
        .max()
        .unwrap_or(0);
    // Down to zero only after a few samples with no load at all: a
    // service just woken must serve the requests it was woken for first.
    let quiet_ms = match down {
        0 => cfg.scale_down_window_ms.max(MIN_IDLE_BEFORE_ZERO_MS),
        _ => cfg.scale_down_window_ms,
    };
    let covered = (input.history.first()).is_some_and(|o| o.at_ms + quiet_ms <= now);
    let settled = now.saturating_sub(input.changed_ms) >= quiet_ms;
    let current = input.current;
    let mut want = if up > current {
        up
    } else if down < current && covered && settled {
        down
    } else {
        current
    };
    want = want.clamp(cfg.min, cfg.max.max(cfg.min));
    if want > current
        && let Some(room) = input.room
    {
        want = want.min(room.max(current));
    }
    if want == current {
        return None;
    }
    let peak = if want > current { up } else { down };
    let load = within(if want > current {
        cfg.scale_up_window_ms
    } else {
        cfg.scale_down_window_ms
    })
    .map(|o| o.load)
    .fold(0.0, f64::max);
    Some(Decision {
        replicas: want,
        reason: reason(cfg, load, target, peak, want),
    })
}

/// Instances needed to bring each to `target`: `ceil(load / target)`.
fn need(load: f64, target: f64) -> u32 {
    if load <= 0.0 {
        return 0;
    }
    // A hair under a whole multiple counts as that multiple.
    (load / target - 1e-9)
        .ceil()
        .clamp(0.0, f64::from(u32::MAX)) as u32
}

fn reason(cfg: &Autoscale, load: f64, target: f64, need: u32, want: u32) -> String {
    let what = match cfg.metric {
        ScaleMetric::Inflight => "requests in flight",
        ScaleMetric::Rps => "requests/s",
        ScaleMetric::Cpu => "% CPU",
    };
    let mut s = format!("{load:.1} {what} for a target of {target} per instance: {need} needed");
    if need != want {
        s += &format!(", bounded to {want} (min {}, max {})", cfg.min, cfg.max);
    }
    s
}

/// A service's replica count before the autoscaler's first decision:
/// `deploy.replicas` within the bounds.
pub(crate) fn initial_replicas(cfg: &Autoscale, replicas: u32) -> u32 {
    replicas.clamp(cfg.min, cfg.max.max(cfg.min))
}

/// The replica count a service runs: the autoscaler's decision (or the
/// initial count) within the bounds, or `deploy.replicas` without
/// autoscaling.
pub(crate) fn replicas(service: &atoll_sdk::spec::Service, decided: Option<u32>) -> u32 {
    match &service.autoscale {
        None => service.deploy.replicas,
        Some(a) => {
            let n = decided.unwrap_or_else(|| initial_replicas(a, service.deploy.replicas));
            n.clamp(a.min, a.max.max(a.min))
        }
    }
}

/// One autoscaled service at one tick of the autoscaler.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tick {
    pub cfg: Autoscale,
    /// The replica count decided last, and when.
    pub current: u32,
    pub changed_ms: u64,
    /// See [`Input::room`].
    pub room: Option<u32>,
    /// Its summed load now.
    pub load: f64,
}

/// Observations kept beyond the longer window (a tick may come late).
const HISTORY_SLACK_MS: u64 = 2_000;

/// The autoscaler's memory between ticks: each service's recent load.
#[derive(Debug, Clone)]
pub(crate) struct Histories<K> {
    by_service: std::collections::BTreeMap<K, Vec<Observation>>,
}

impl<K> Default for Histories<K> {
    fn default() -> Self {
        Histories {
            by_service: Default::default(),
        }
    }
}

impl<K: Ord + Clone> Histories<K> {
    /// Records each service's load at `now_ms` (keeping what its windows
    /// need), forgets the services no longer given, and answers the
    /// changes to make: (service, count now, decision).
    pub(crate) fn tick(
        &mut self,
        services: &std::collections::BTreeMap<K, Tick>,
        now_ms: u64,
    ) -> Vec<(K, u32, Decision)> {
        self.by_service.retain(|k, _| services.contains_key(k));
        let mut out = Vec::new();
        for (key, t) in services {
            let history = self.by_service.entry(key.clone()).or_default();
            history.push(Observation {
                at_ms: now_ms,
                load: t.load,
            });
            let keep = t.cfg.scale_down_window_ms.max(t.cfg.scale_up_window_ms) + HISTORY_SLACK_MS;
            history.retain(|o| o.at_ms + keep >= now_ms);
            let input = Input {
                cfg: &t.cfg,
                current: t.current,
                changed_ms: t.changed_ms,
                history,
                now_ms,
                room: t.room,
            };
            if let Some(d) = decide(&input) {
                out.push((key.clone(), t.current, d));
            }
        }
        out
    }

    /// Observations kept for `key`, oldest first.
    #[cfg(test)]
    pub(crate) fn of(&self, key: &K) -> &[Observation] {
        self.by_service.get(key).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(min: u32, max: u32) -> Autoscale {
        Autoscale {
            min,
            max,
            metric: ScaleMetric::Inflight,
            target_milli: 4_000,
            scale_up_window_ms: 6_000,
            scale_down_window_ms: 30_000,
        }
    }

    /// One observation a second, from `start`, with these loads.
    fn history(start: u64, loads: &[f64]) -> Vec<Observation> {
        (loads.iter().enumerate())
            .map(|(i, &load)| Observation {
                at_ms: start + i as u64 * 1_000,
                load,
            })
            .collect()
    }

    fn run(
        c: &Autoscale,
        current: u32,
        changed_ms: u64,
        h: &[Observation],
        room: Option<u32>,
    ) -> Option<u32> {
        let now_ms = h.last().map_or(0, |o| o.at_ms);
        decide(&Input {
            cfg: c,
            current,
            changed_ms,
            history: h,
            now_ms,
            room,
        })
        .map(|d| d.replicas)
    }

    #[test]
    fn desired_is_the_load_over_the_target_rounded_up() {
        let c = cfg(1, 10);
        assert_eq!(run(&c, 1, 0, &history(0, &[1.0, 9.0]), None), Some(3));
        assert_eq!(
            run(&c, 1, 0, &history(0, &[8.0]), None),
            Some(2),
            "exactly 2 × 4"
        );
        assert_eq!(run(&c, 2, 0, &history(0, &[8.0]), None), None);
    }

    #[test]
    fn a_burst_scales_up_at_once_and_stays_within_max() {
        let c = cfg(1, 6);
        assert_eq!(run(&c, 1, 0, &history(0, &[0.0, 100.0]), None), Some(6));
        assert_eq!(run(&c, 6, 0, &history(0, &[0.0, 100.0]), None), None);
    }

    #[test]
    fn scaling_up_uses_the_highest_need_of_the_short_window() {
        let c = cfg(1, 10);
        // 20 in flight 3 s ago, 4 now: still 5 needed.
        let h = history(0, &[20.0, 4.0, 4.0, 4.0]);
        assert_eq!(run(&c, 1, 0, &h, None), Some(5));
    }

    #[test]
    fn scaling_down_waits_for_the_long_window_to_be_quiet() {
        let c = cfg(1, 10);
        let mut loads = vec![20.0];
        loads.extend([0.0; 30]);
        let h = history(0, &loads);
        // The peak 30 s ago is still in the window.
        assert_eq!(run(&c, 5, 0, &h, None), None);
        loads.push(0.0);
        let h = history(0, &loads);
        assert_eq!(run(&c, 5, 0, &h, None), Some(1), "down to min once quiet");
    }

    #[test]
    fn no_scale_down_soon_after_a_change_or_without_enough_history() {
        let c = cfg(1, 10);
        let h = history(100_000, &[0.0; 40]);
        assert_eq!(run(&c, 4, 130_000, &h, None), None, "changed 9 s ago");
        assert_eq!(run(&c, 4, 0, &h, None), Some(1));
        let short = history(100_000, &[0.0; 10]);
        assert_eq!(run(&c, 4, 0, &short, None), None, "10 s of history only");
    }

    #[test]
    fn min_zero_scales_to_zero_when_idle() {
        let c = cfg(0, 3);
        let h = history(0, &[0.0; 32]);
        assert_eq!(run(&c, 1, 0, &h, None), Some(0));
        let busy = history(0, &[0.0, 0.0, 0.5]);
        assert_eq!(run(&c, 0, 0, &busy, None), Some(1));
    }

    #[test]
    fn a_woken_service_is_not_sent_back_to_zero_at_once() {
        let mut c = cfg(0, 3);
        c.scale_down_window_ms = 0;
        // Woken at 10 s; no load has been seen yet.
        let h = history(10_000, &[0.0, 0.0, 0.0]);
        assert_eq!(run(&c, 1, 10_000, &h, None), None);
        let h = history(10_000, &[0.0, 0.0, 0.0, 0.0]);
        assert_eq!(run(&c, 1, 10_000, &h, None), Some(0), "after 3 s");
    }

    #[test]
    fn growth_stops_at_the_room_left_on_hosts() {
        let c = cfg(1, 10);
        let h = history(0, &[40.0]);
        assert_eq!(run(&c, 2, 0, &h, Some(3)), Some(3));
        assert_eq!(run(&c, 3, 0, &h, Some(3)), None);
        assert_eq!(run(&c, 3, 0, &h, Some(1)), None, "never below current");
    }

    #[test]
    fn min_is_enforced_even_without_load() {
        let c = cfg(2, 5);
        assert_eq!(run(&c, 1, 0, &history(0, &[0.0]), None), Some(2));
    }

    #[test]
    fn ticks_keep_what_the_windows_need_and_forget_gone_services() {
        let c = cfg(1, 10);
        let mut h: Histories<&str> = Histories::default();
        let tick = |load| Tick {
            cfg: c,
            current: 1,
            changed_ms: 0,
            room: None,
            load,
        };
        let mut changes = Vec::new();
        for s in 0..40u64 {
            let services = std::collections::BTreeMap::from([("api", tick(0.0))]);
            changes.extend(h.tick(&services, s * 1_000));
        }
        assert!(changes.is_empty(), "idle at min: {changes:?}");
        // 30 s window + 2 s slack: observations from 7 s on.
        assert_eq!(h.of(&"api").len(), 33);
        let busy = std::collections::BTreeMap::from([("api", tick(20.0))]);
        let changes = h.tick(&busy, 40_000);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].0, changes[0].1, changes[0].2.replicas),
            ("api", 1, 5)
        );
        h.tick(&std::collections::BTreeMap::new(), 41_000);
        assert!(h.of(&"api").is_empty(), "forgotten once gone");
    }

    #[test]
    fn the_reason_names_the_load_and_target() {
        let c = cfg(1, 2);
        let h = history(0, &[20.0]);
        let d = decide(&Input {
            cfg: &c,
            current: 1,
            changed_ms: 0,
            history: &h,
            now_ms: 0,
            room: None,
        })
        .expect("a change");
        assert_eq!(
            d.reason,
            "20.0 requests in flight for a target of 4 per instance: 5 needed, bounded to 2 (min 1, max 2)"
        );
    }
}
