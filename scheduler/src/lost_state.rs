//! Desired state that vanished is noticed, not obeyed. If the apps bucket
//! disappears (its stream deleted, JetStream's storage lost) or comes back
//! empty while hosts run instances, reconciling would read "no apps" and
//! stop the whole fleet. Instead the controller holds — writes no
//! assignment, endpoint or status, so hosts run on and gateways keep their
//! tables — until someone writes desired state again (`atoll import`, or a
//! deploy). Pure: the controller's shell reads the bucket's stream and
//! says the verdict (an event, the `atoll_desired_state_lost` gauge).
//!
//! The signals do not depend on the apps' values, which `atoll rm` may
//! legitimately empty: removing an app leaves a delete marker (a message),
//! and a KV bucket's sequence never goes back unless its stream was made
//! anew.

/// What the apps bucket's stream looks like now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppsStream {
    /// JetStream says there is no such stream.
    Gone,
    /// Messages it holds (values and delete markers) and its last
    /// sequence (the last KV revision written).
    Present { messages: u64, last_seq: u64 },
    /// It could not be asked (NATS unreachable): no new verdict.
    Unknown,
}

/// What this server remembers of the bucket between passes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Watch {
    /// The highest sequence seen: the bucket never goes below it.
    high_water: u64,
    /// The sequence it had when it was seen to have gone back; the hold
    /// lasts until something is written after it.
    lost_at: Option<u64>,
}

/// Whether the controller may act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Go,
    /// Why it holds.
    Hold(String),
    /// Nothing new is known: the last verdict stands.
    Unchanged,
}

const REMEDY: &str = "every assignment and routing table is kept; restore desired state with \
`atoll import`, or deploy to start anew";

impl Watch {
    /// The verdict on the bucket as it is now, with `running` instances
    /// that hosts report or assignments list (silent hosts run theirs on).
    pub(crate) fn judge(&mut self, stream: AppsStream, running: usize) -> Verdict {
        let (messages, last_seq) = match stream {
            AppsStream::Unknown => return Verdict::Unchanged,
            AppsStream::Gone => {
                // Whatever is made in its place starts below what was
                // here: the hold lasts until it is written.
                self.lost_at = Some(0);
                return Verdict::Hold(format!(
                    "the apps bucket is gone (its stream was deleted, or JetStream lost its storage); {REMEDY}"
                ));
            }
            AppsStream::Present { messages, last_seq } => (messages, last_seq),
        };
        if let Some(at) = self.lost_at {
            if last_seq <= at {
                return Verdict::Hold(self.went_back(at));
            }
            // Written since: someone restored or redeployed.
            self.lost_at = None;
            self.high_water = last_seq;
        }
        if last_seq < self.high_water {
            self.lost_at = Some(last_seq);
            return Verdict::Hold(self.went_back(last_seq));
        }
        self.high_water = last_seq;
        if messages == 0 && running > 0 {
            return Verdict::Hold(format!(
                "the apps bucket holds nothing while hosts run or are assigned {running} instance{}; {REMEDY}",
                if running == 1 { "" } else { "s" }
            ));
        }
        Verdict::Go
    }

    fn went_back(&self, now: u64) -> String {
        match self.high_water {
            0 => format!("the apps bucket was made anew; {REMEDY}"),
            high => format!(
                "the apps bucket went back from revision {high} to {now}: it was made anew and \
                 what was written before is gone; {REMEDY}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AppsStream, Verdict, Watch};

    fn present(messages: u64, last_seq: u64) -> AppsStream {
        AppsStream::Present { messages, last_seq }
    }

    fn holds(v: &Verdict, words: &str) -> bool {
        matches!(v, Verdict::Hold(why) if why.contains(words))
    }

    #[test]
    fn a_bucket_in_use_goes() {
        let mut w = Watch::default();
        assert_eq!(w.judge(present(3, 3), 4), Verdict::Go);
        assert_eq!(w.judge(present(4, 7), 4), Verdict::Go);
    }

    #[test]
    fn a_new_cluster_with_nothing_running_goes() {
        assert_eq!(Watch::default().judge(present(0, 0), 0), Verdict::Go);
    }

    #[test]
    fn every_app_removed_goes_since_delete_markers_remain() {
        let mut w = Watch::default();
        assert_eq!(w.judge(present(2, 2), 4), Verdict::Go);
        // `atoll rm`: a delete marker, the sequence goes on.
        assert_eq!(w.judge(present(2, 3), 4), Verdict::Go);
    }

    #[test]
    fn a_gone_bucket_holds_and_so_does_its_empty_successor_until_written() {
        let mut w = Watch::default();
        assert_eq!(w.judge(present(5, 9), 4), Verdict::Go);
        assert!(holds(&w.judge(AppsStream::Gone, 4), "is gone"));
        // Made anew, empty: it went back, whether or not anything runs.
        assert!(holds(&w.judge(present(0, 0), 4), "from revision 9 to 0"));
        assert!(holds(&w.judge(present(0, 0), 0), "from revision 9 to 0"));
        // An import writes: the hold is over.
        assert_eq!(w.judge(present(2, 2), 4), Verdict::Go);
        assert_eq!(w.judge(present(3, 3), 4), Verdict::Go);
    }

    #[test]
    fn a_gone_bucket_made_again_by_the_restoring_write_ends_the_hold() {
        let mut w = Watch::default();
        assert_eq!(w.judge(present(9, 9), 4), Verdict::Go);
        assert!(holds(&w.judge(AppsStream::Gone, 4), "is gone"));
        // An import makes it again and writes two revisions: below the
        // old high water, yet written since the loss.
        assert_eq!(w.judge(present(2, 2), 4), Verdict::Go);
        // A server that never saw the bucket holds until it is written too.
        let mut fresh = Watch::default();
        assert!(holds(&fresh.judge(AppsStream::Gone, 0), "is gone"));
        assert!(holds(&fresh.judge(present(0, 0), 0), "was made anew"));
        assert_eq!(fresh.judge(present(1, 1), 0), Verdict::Go);
    }

    #[test]
    fn a_bucket_made_anew_and_partly_written_is_noticed_while_watched() {
        let mut w = Watch::default();
        assert_eq!(w.judge(present(6, 12), 4), Verdict::Go);
        // Deleted and made again between two passes, one value written.
        assert!(holds(&w.judge(present(1, 1), 4), "from revision 12 to 1"));
        assert!(holds(&w.judge(present(1, 1), 4), "went back"));
        assert_eq!(w.judge(present(2, 2), 4), Verdict::Go);
    }

    #[test]
    fn a_purged_stream_holds_while_instances_run() {
        let mut w = Watch::default();
        assert_eq!(w.judge(present(3, 8), 2), Verdict::Go);
        // `nats stream purge`: no message, the sequence kept.
        let v = w.judge(present(0, 8), 2);
        assert!(
            holds(
                &v,
                "holds nothing while hosts run or are assigned 2 instances"
            ),
            "{v:?}"
        );
        assert!(holds(&v, "atoll import"), "{v:?}");
        // A deploy writes: over.
        assert_eq!(w.judge(present(1, 9), 2), Verdict::Go);
    }

    #[test]
    fn a_server_started_on_an_empty_bucket_over_a_running_fleet_holds() {
        let v = Watch::default().judge(present(0, 0), 1);
        assert!(holds(&v, "are assigned 1 instance;"), "{v:?}");
    }

    #[test]
    fn an_unreachable_bucket_changes_nothing() {
        let mut w = Watch::default();
        assert_eq!(w.judge(present(1, 5), 1), Verdict::Go);
        assert_eq!(w.judge(AppsStream::Unknown, 1), Verdict::Unchanged);
        assert!(holds(&w.judge(present(0, 0), 1), "from revision 5"));
        assert_eq!(w.judge(AppsStream::Unknown, 1), Verdict::Unchanged);
        assert!(holds(&w.judge(present(0, 0), 1), "went back"));
    }
}
