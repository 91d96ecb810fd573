//! What a simulated fleet reports: its hosts joining, assignments
//! received, instances starting and running, and each wave of changes
//! from its first assignment to all instances settled (running or
//! failed), as lines (JSON with `-o json`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atoll_sdk::protocol::now_ms;
use serde::Serialize;

use super::instances::{Applied, Behaviour, SimInstances};

/// How long nothing may change before a wave counts as settled: the
/// assignments of one deploy reach hosts over a while, and instances
/// that all ran before the last host heard of its own are not a fleet
/// that settled.
const QUIET: Duration = Duration::from_millis(300);
/// How often a progress line is printed while something moves.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// One report line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Line {
    /// Every host has connected and beats.
    Joined { at_ms: u64, hosts: usize, ms: u64 },
    Progress {
        at_ms: u64,
        #[serde(flatten)]
        counts: Counts,
    },
    /// A wave of changes is over: every instance runs or failed, and
    /// nothing changed for a moment. `first_ms`/`last_ms`: the first
    /// assignment of the wave received, the last change seen (Unix ms).
    Settled {
        at_ms: u64,
        wave: u32,
        first_ms: u64,
        last_ms: u64,
        ms: u64,
        #[serde(flatten)]
        counts: Counts,
    },
    /// A control line was done (or refused).
    Control {
        at_ms: u64,
        command: String,
        result: String,
    },
    /// The run ended.
    Done {
        at_ms: u64,
        #[serde(flatten)]
        counts: Counts,
    },
}

impl Line {
    pub(crate) fn done(tally: &Tally) -> Line {
        Line::Done {
            at_ms: now_ms(),
            counts: tally.counts(),
        }
    }

    /// The line for people: one sentence.
    pub fn text(&self) -> String {
        match self {
            Line::Joined { hosts, ms, .. } => format!("{hosts} hosts joined in {ms} ms"),
            Line::Progress { counts, .. } => counts.text(),
            Line::Settled {
                wave, ms, counts, ..
            } => {
                format!("wave {wave} settled in {ms} ms: {}", counts.text())
            }
            Line::Control {
                command, result, ..
            } => format!("{command}: {result}"),
            Line::Done { counts, .. } => format!("done: {}", counts.text()),
        }
    }
}

/// The fleet summed up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub hosts: usize,
    pub joined: usize,
    /// Assignment values received, by all hosts together.
    pub assignments: u64,
    pub hosts_assigned: usize,
    pub instances: usize,
    pub running: usize,
    pub starting: usize,
    pub failed: usize,
}

impl Counts {
    fn text(&self) -> String {
        format!(
            "{}/{} hosts joined, {} assignments received; {} instances on {} hosts: {} running, {} starting, {} failed",
            self.joined,
            self.hosts,
            self.assignments,
            self.instances,
            self.hosts_assigned,
            self.running,
            self.starting,
            self.failed
        )
    }
}

/// The fleet's shared counters and its hosts' instances.
pub(crate) struct Tally {
    assignments: AtomicU64,
    /// Where the fleet's hosts note when an instance last changed.
    behaviour: Arc<Behaviour>,
    wave: Mutex<Wave>,
    /// The hosts alive, in order (a killed one leaves).
    hosts: Mutex<Vec<Arc<SimInstances>>>,
    started_ms: u64,
}

impl Tally {
    pub(crate) fn new(hosts: usize, behaviour: Arc<Behaviour>) -> Arc<Tally> {
        Arc::new(Tally {
            assignments: AtomicU64::new(0),
            behaviour,
            wave: Mutex::default(),
            hosts: Mutex::new(Vec::with_capacity(hosts)),
            started_ms: now_ms(),
        })
    }

    pub(crate) fn add_host(&self, sim: Arc<SimInstances>) {
        self.lock_hosts().push(sim);
    }

    /// Forgets the last `n` hosts (killed); returns how many were.
    pub(crate) fn remove_last(&self, n: usize) -> usize {
        let mut hosts = self.lock_hosts();
        let keep = hosts.len().saturating_sub(n);
        let gone = hosts.len() - keep;
        hosts.truncate(keep);
        gone
    }

    fn lock_hosts(&self) -> std::sync::MutexGuard<'_, Vec<Arc<SimInstances>>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A host received an assignment (and `applied` is what it changed).
    pub(crate) fn assigned(&self, applied: Applied) {
        self.assignments.fetch_add(1, Ordering::Relaxed);
        if applied != Applied::default() {
            let now = now_ms();
            (self.behaviour.last_change).fetch_max(now, Ordering::Relaxed);
            let mut wave = self.wave.lock().unwrap_or_else(|e| e.into_inner());
            wave.open(now);
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        let hosts = self.lock_hosts().clone();
        let mut c = Counts {
            hosts: hosts.len(),
            assignments: self.assignments.load(Ordering::Relaxed),
            ..Counts::default()
        };
        for h in &hosts {
            let (all, running, starting) = h.counts();
            c.instances += all;
            c.running += running;
            c.starting += starting;
            c.failed += all - running - starting;
            c.hosts_assigned += usize::from(all > 0);
            c.joined += usize::from(h.has_joined());
        }
        c
    }
}

/// A wave of changes: open from the first assignment that changed
/// something until the fleet settles.
#[derive(Debug, Default)]
pub(crate) struct Wave {
    open_since: Option<u64>,
    number: u32,
}

impl Wave {
    fn open(&mut self, at_ms: u64) {
        self.open_since.get_or_insert(at_ms);
    }

    /// Closes the wave when it has settled: nothing starting, and nothing
    /// changed for [`QUIET`] (`last_change` ms, `now` ms).
    fn settle(&mut self, c: Counts, last_change: u64, now: u64) -> Option<Line> {
        let first = self.open_since?;
        let quiet = now.saturating_sub(last_change) >= QUIET.as_millis() as u64;
        if c.starting > 0 || !quiet {
            return None;
        }
        self.open_since = None;
        self.number += 1;
        Some(Line::Settled {
            at_ms: now,
            wave: self.number,
            first_ms: first,
            last_ms: last_change.max(first),
            ms: last_change.max(first) - first,
            counts: c,
        })
    }
}

/// Looks at the fleet every 100 ms, sending what it sees.
pub(crate) async fn run(tally: Arc<Tally>, lines: tokio::sync::mpsc::UnboundedSender<Line>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut shown: Option<Counts> = None;
    let mut shown_at = 0u64;
    let mut all_joined = false;
    loop {
        tick.tick().await;
        let now = now_ms();
        let c = tally.counts();
        if !all_joined && c.joined == c.hosts && c.hosts > 0 {
            all_joined = true;
            let ms = now.saturating_sub(tally.started_ms);
            let _ = lines.send(Line::Joined {
                at_ms: now,
                hosts: c.hosts,
                ms,
            });
        }
        let last_change = tally.behaviour.last_change.load(Ordering::Relaxed);
        let settled = {
            let mut wave = tally.wave.lock().unwrap_or_else(|e| e.into_inner());
            wave.settle(c, last_change, now)
        };
        let due = now.saturating_sub(shown_at) >= PROGRESS_EVERY.as_millis() as u64;
        if due && shown != Some(c) {
            let _ = lines.send(Line::Progress {
                at_ms: now,
                counts: c,
            });
            (shown, shown_at) = (Some(c), now);
        }
        if let Some(line) = settled {
            let _ = lines.send(line);
        }
    }
}

/// A small seeded generator (splitmix64): the same seed draws the same
/// labels and run ids.
pub(crate) struct Seeded(u64);

impl Seeded {
    pub(crate) fn new(seed: u64) -> Seeded {
        Seeded(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A host's labels: each `a|b|c` value is one of its alternatives.
pub(crate) fn pick_labels(
    labels: &BTreeMap<String, String>,
    rng: &mut Seeded,
) -> BTreeMap<String, String> {
    (labels.iter())
        .map(|(k, v)| {
            let choices: Vec<&str> = v.split('|').collect();
            let pick = choices[(rng.next() % choices.len() as u64) as usize];
            (k.clone(), pick.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(instances: usize, running: usize, starting: usize) -> Counts {
        Counts {
            instances,
            running,
            starting,
            ..Counts::default()
        }
    }

    #[test]
    fn a_wave_settles_once_nothing_starts_and_nothing_moved_for_a_moment() {
        let mut w = Wave::default();
        assert_eq!(w.settle(counts(0, 0, 0), 0, 10_000), None, "no wave");
        w.open(1_000);
        w.open(1_100);
        assert_eq!(w.settle(counts(4, 3, 1), 1_200, 2_000), None, "one starts");
        assert_eq!(w.settle(counts(4, 4, 0), 1_900, 2_000), None, "just moved");
        let line = w.settle(counts(4, 4, 0), 1_900, 2_300);
        let Some(Line::Settled {
            wave,
            first_ms,
            last_ms,
            ms,
            ..
        }) = line
        else {
            panic!("settled: {line:?}")
        };
        assert_eq!((wave, first_ms, last_ms, ms), (1, 1_000, 1_900, 900));
        assert_eq!(w.settle(counts(4, 4, 0), 1_900, 9_000), None, "once");
        w.open(10_000);
        let line = w.settle(counts(2, 2, 0), 10_050, 10_400);
        assert!(matches!(
            line,
            Some(Line::Settled {
                wave: 2,
                ms: 50,
                ..
            })
        ));
    }

    #[test]
    fn labels_with_alternatives_are_drawn_from_the_seed() {
        let labels = BTreeMap::from([
            ("zone".to_string(), "a|b|c".to_string()),
            ("tier".to_string(), "edge".to_string()),
        ]);
        let draw = |seed| {
            let mut rng = Seeded::new(seed);
            (0..30)
                .map(|_| pick_labels(&labels, &mut rng)["zone"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7), "the same seed, the same draws");
        let zones: std::collections::BTreeSet<_> = draw(7).into_iter().collect();
        assert_eq!(zones.len(), 3, "{zones:?}");
        assert_eq!(pick_labels(&labels, &mut Seeded::new(1))["tier"], "edge");
    }

    #[test]
    fn lines_are_json_with_their_event_named() {
        let line = Line::Settled {
            at_ms: 5,
            wave: 1,
            first_ms: 1,
            last_ms: 4,
            ms: 3,
            counts: counts(2, 2, 0),
        };
        let json = serde_json::to_value(&line).expect("json");
        assert_eq!(json["event"], "settled");
        assert_eq!(
            (json["ms"].as_u64(), json["running"].as_u64()),
            (Some(3), Some(2))
        );
    }
}
