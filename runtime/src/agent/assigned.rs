//! The assignment a host runs, whichever way it came: the cache at start,
//! then each value of the watch that is not older than what it runs (the
//! KV revision decides), cached before it is applied. What the supervisor
//! is told to run is that assignment less what the host stops itself
//! while alone ([`autonomy`](super::autonomy)).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use atoll_sdk::cluster::Assignment;

use super::autonomy;
use super::data_dir::{Cached, save_cached};
use crate::supervisor::Supervisor;

/// Where a value of the assignment key comes from: the bucket (by when
/// it was made) and the KV revision it was written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Written {
    pub bucket: Option<String>,
    pub revision: u64,
}

/// Whether a value `offered` may replace the one `running`: never an older
/// one of the same bucket (a watch that replays, a stale mirror); the
/// same one again is harmless (level-triggered). A bucket made anew
/// (NATS restored from nothing, or from an export) counts its revisions
/// from 1 again: its values are not older, only numbered anew.
pub(super) fn accepts(running: &Written, offered: &Written) -> bool {
    let same_bucket = match (&running.bucket, &offered.bucket) {
        (Some(a), Some(b)) => a == b,
        // An old cache, or a bucket whose birth could not be read.
        _ => true,
    };
    !same_bucket || offered.revision >= running.revision
}

pub(super) struct Assigned {
    supervisor: Arc<Supervisor>,
    cache: PathBuf,
    state: Mutex<State>,
}

struct State {
    current: Cached,
    alone_since: Option<Instant>,
    /// The instance ids the supervisor was last told to run.
    running: Option<Vec<String>>,
}

impl Assigned {
    /// Starts from the cached assignment, alone since `started` (a host
    /// has not reached NATS when it starts).
    pub(super) fn new(
        supervisor: Arc<Supervisor>,
        cache: PathBuf,
        cached: Cached,
        started: Instant,
    ) -> Arc<Assigned> {
        Arc::new(Assigned {
            supervisor,
            cache,
            state: Mutex::new(State {
                current: cached,
                alone_since: Some(started),
                running: None,
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The assignment as last cached.
    pub(super) fn current(&self) -> Cached {
        self.state().current.clone()
    }

    /// A value of the assignment key, written at KV `revision` of the
    /// bucket made at `bucket`: cached and run, unless it is older than
    /// the one the host runs.
    pub(super) fn offer(&self, bucket: Option<String>, revision: u64, assignment: Assignment) {
        let mut state = self.state();
        let running = Written {
            bucket: state.current.bucket.clone(),
            revision: state.current.revision,
        };
        let offered = Written { bucket, revision };
        if !accepts(&running, &offered) {
            tracing::warn!(
                revision,
                running = state.current.revision,
                "ignoring an assignment older than the one this host runs"
            );
            return;
        }
        if running.bucket.is_some() && running.bucket != offered.bucket {
            tracing::warn!(
                revision,
                "the assignments bucket was made anew: its revisions count from 1 again"
            );
        }
        state.current = Cached {
            revision,
            bucket: offered.bucket,
            assignment,
        };
        save_cached(&self.cache, &state.current);
        self.converge(&mut state, true);
    }

    /// The link changed (or time passed): `alone_since` is since when the
    /// host is without NATS, `None` when it has it.
    pub(super) fn set_alone_since(&self, alone_since: Option<Instant>) {
        let mut state = self.state();
        state.alone_since = alone_since;
        self.converge(&mut state, false);
    }

    /// Tells the supervisor what to run now; `always`, or only when that
    /// changed (the link loop calls this often).
    fn converge(&self, state: &mut State, always: bool) {
        let keep = autonomy::to_keep(state.alone_since, Instant::now(), &state.current.assignment);
        let ids: Vec<String> = keep.instances.iter().map(|i| i.id.clone()).collect();
        if !always && state.running.as_ref() == Some(&ids) {
            return;
        }
        let all = state.current.assignment.instances.len();
        if ids.len() < all {
            tracing::info!(
                stopped = all - ids.len(),
                "alone longer than stop_after: stopping those instances"
            );
        }
        self.supervisor.converge(&keep);
        state.running = Some(ids);
    }
}

#[cfg(test)]
mod tests {
    use super::{Written, accepts};

    fn w(bucket: Option<&str>, revision: u64) -> Written {
        Written {
            bucket: bucket.map(str::to_string),
            revision,
        }
    }

    #[test]
    fn an_older_assignment_is_refused_the_same_or_a_newer_one_taken() {
        let a = Some("made at 1");
        assert!(
            accepts(&w(None, 0), &w(a, 1)),
            "anything replaces an old cache (revision 0)"
        );
        assert!(accepts(&w(a, 7), &w(a, 7)), "the same value again");
        assert!(accepts(&w(a, 7), &w(a, 9)));
        assert!(!accepts(&w(a, 7), &w(a, 6)), "older than the one running");
        assert!(
            !accepts(&w(None, 7), &w(a, 6)),
            "a cache from before buckets were named"
        );
    }

    #[test]
    fn a_bucket_made_anew_counts_from_one_again() {
        assert!(accepts(&w(Some("made at 1"), 40), &w(Some("made at 2"), 3)));
    }
}
