//! The legal changes of an instance's state on its host, in one place.
//!
//! The supervisor is the only writer of the states its heartbeats report;
//! every change goes through [`allowed`], so a task that lost a race (a
//! pull finishing after the instance failed for good, say) cannot move it
//! somewhere it must not be. `Lost` and `Stopping` are the control plane's
//! words, never a host's.

use atoll_sdk::cluster::InstanceState::{self, *};

/// Whether an instance may go from `from` to `to` (a change of reason
/// only, `from == to`, is allowed where the state may be left). `final_`
/// is set once the host gave up on it: nothing moves it any more.
pub(crate) fn allowed(from: InstanceState, to: InstanceState, final_: bool) -> bool {
    if final_ {
        return false;
    }
    match from {
        // Adopted instances go straight to running.
        Pending => matches!(to, Pulling | Starting | Running | Failed),
        // Retried pulls report each failure, then pull again.
        Pulling => matches!(to, Pulling | Starting | Failed),
        Starting => matches!(to, Running | Failed),
        Running => matches!(to, Running | Failed | Stopped),
        // A failure is retried: fetched again, or restarted in place.
        Failed => matches!(to, Failed | Pulling | Starting | Running),
        // Exited for good under its restart policy.
        Stopped => false,
        Stopping | Lost => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [InstanceState; 8] = [
        Pending, Pulling, Starting, Running, Failed, Stopping, Stopped, Lost,
    ];

    #[test]
    fn the_paths_a_host_takes_are_allowed() {
        let paths: &[&[InstanceState]] = &[
            // A component from the object store.
            &[Pending, Pulling, Starting, Running],
            // A pull that failed twice, then a container that crashed and
            // was restarted, then exited cleanly for good.
            &[
                Pending, Pulling, Failed, Pulling, Failed, Pulling, Starting, Running, Failed,
                Running, Stopped,
            ],
            // Adopted after the host restarted.
            &[Pending, Running],
            // A first start that failed, restarted per the policy.
            &[Pending, Pulling, Starting, Failed, Running],
        ];
        for path in paths {
            for w in path.windows(2) {
                assert!(
                    allowed(w[0], w[1], false),
                    "{:?} -> {:?} in {path:?}",
                    w[0],
                    w[1]
                );
            }
        }
    }

    #[test]
    fn nothing_moves_an_instance_the_host_gave_up_on_or_that_stopped() {
        for to in ALL {
            assert!(!allowed(Failed, to, true), "given up, yet -> {to:?}");
            assert!(!allowed(Stopped, to, false), "stopped, yet -> {to:?}");
        }
    }

    #[test]
    fn a_host_never_reports_the_control_planes_states_nor_goes_back_to_pending() {
        for from in ALL {
            for to in [Pending, Lost, Stopping] {
                assert!(!allowed(from, to, false), "{from:?} -> {to:?}");
            }
        }
        assert!(
            !allowed(Running, Pulling, false),
            "a running instance is not pulled again"
        );
        assert!(!allowed(Starting, Pulling, false));
    }
}
