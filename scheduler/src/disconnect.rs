//! What an instance on a silent host is taken for (`x-atoll.disconnect`).
//!
//! Silent is not dead: a host that stopped heartbeating is
//! `disconnected`, and its instances count as running until the service's
//! `lost_after` has passed since (on the server's clock). Then they are
//! lost — replaced elsewhere unless the service says not to, or cannot
//! move (global services run one per host; a named volume's data is on
//! that host). While the control plane holds (it lost NATS itself, or most
//! of the fleet went silent at once), nothing is lost. Pure.

use crate::snapshot::HostSnapshot;
use atoll_sdk::cluster::HostState;
use atoll_sdk::spec::{Disconnect, Mode, Service};

/// An instance, by what its host's silence means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// Its host is heard.
    Here,
    /// Its host is silent, and it still counts as running.
    Unconfirmed,
    /// Silent for longer than `lost_after`.
    Lost {
        /// How long its host has been silent.
        silent_ms: u64,
    },
}

/// How an instance on `host` stands at `now_ms` under `policy`.
pub(crate) fn presence(
    host: &HostSnapshot,
    policy: &Disconnect,
    now_ms: u64,
    holding: bool,
) -> Presence {
    if host.state == HostState::Ready {
        return Presence::Here;
    }
    // Silent since the server's start, when it never heard the host.
    let since = host.silent_since_ms.unwrap_or(0);
    let silent_ms = now_ms.saturating_sub(since);
    if holding || silent_ms < policy.lost_after_ms {
        Presence::Unconfirmed
    } else {
        Presence::Lost { silent_ms }
    }
}

/// Whether a lost instance of `service` gets a replacement elsewhere: not
/// for a global service, nor one with a named volume, nor when its policy
/// says to wait for the host.
pub(crate) fn replaceable(service: &Service) -> bool {
    service.disconnect.replace
        && service.deploy.mode != Mode::Global
        && !service.has_named_volumes()
}

/// How a host shows: silent hosts are `disconnected` while anything on
/// them still counts as running (or the control plane holds), `down`
/// once nothing does.
pub(crate) fn host_state(host: &HostSnapshot, any_unconfirmed: bool, holding: bool) -> HostState {
    match host.state {
        HostState::Ready => HostState::Ready,
        _ if any_unconfirmed || holding => HostState::Disconnected,
        _ => HostState::Down,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fixtures::{HostExt, host, service};
    use atoll_sdk::spec::{Disconnect, VolumeMount};

    fn policy(lost_after_ms: u64) -> Disconnect {
        Disconnect {
            lost_after_ms,
            ..Disconnect::default()
        }
    }

    #[test]
    fn silent_instances_count_as_running_until_lost_after() {
        let h = host("h1").silent_since(10_000);
        assert_eq!(
            presence(&host("h2"), &policy(30_000), 99_000, false),
            Presence::Here
        );
        assert_eq!(
            presence(&h, &policy(30_000), 39_999, false),
            Presence::Unconfirmed
        );
        assert_eq!(
            presence(&h, &policy(30_000), 40_000, false),
            Presence::Lost { silent_ms: 30_000 }
        );
        assert_eq!(
            presence(&h, &policy(0), 10_000, false),
            Presence::Lost { silent_ms: 0 },
            "the default: lost as soon as the host is down"
        );
        assert_eq!(
            presence(&h, &policy(0), 99_000, true),
            Presence::Unconfirmed,
            "nothing is lost while the control plane holds"
        );
    }

    #[test]
    fn global_named_volume_and_replace_false_services_are_not_replaced() {
        assert!(replaceable(&service("web")));
        let mut s = service("web");
        s.deploy.mode = Mode::Global;
        assert!(!replaceable(&s));
        let mut s = service("db");
        s.volumes = vec![VolumeMount {
            name: Some("data".into()),
            target: "/data".into(),
            read_only: false,
            nocopy: false,
        }];
        assert!(!replaceable(&s));
        s.volumes[0].name = None;
        assert!(
            replaceable(&s),
            "an anonymous volume does not tie it to its host"
        );
        let mut s = service("web");
        s.disconnect.replace = false;
        assert!(!replaceable(&s));
    }

    #[test]
    fn a_silent_host_is_disconnected_while_something_counts_on_it() {
        let h = host("h1").silent_since(0);
        assert_eq!(host_state(&host("h2"), false, false), HostState::Ready);
        assert_eq!(host_state(&h, true, false), HostState::Disconnected);
        assert_eq!(host_state(&h, false, true), HostState::Disconnected);
        assert_eq!(host_state(&h, false, false), HostState::Down);
    }
}
