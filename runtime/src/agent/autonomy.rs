//! What a host runs while it is alone (without NATS): its whole
//! assignment, except the instances whose `x-atoll.disconnect.stop_after`
//! has run out — those it stops itself, and runs again once NATS is back.
//! Pure: the time is passed in.

use std::time::{Duration, Instant};

use atoll_sdk::cluster::Assignment;

/// Since when the host is alone, given whether it is connected now and
/// since when it was alone before (`None`: it was connected).
pub(super) fn alone_since(
    before: Option<Instant>,
    connected: bool,
    now: Instant,
) -> Option<Instant> {
    if connected {
        None
    } else {
        Some(before.unwrap_or(now))
    }
}

/// The part of `assignment` to run at `now` for a host alone since
/// `alone_since` (`None`: connected, it runs everything). An instance
/// goes once the host has been alone for longer than its `stop_after`.
pub(super) fn to_keep(
    alone_since: Option<Instant>,
    now: Instant,
    assignment: &Assignment,
) -> Assignment {
    let alone = alone_since.map(|since| now.saturating_duration_since(since));
    let instances = (assignment.instances.iter())
        .filter(|i| match (alone, i.disconnect.stop_after_ms) {
            (Some(alone), Some(limit)) => alone <= Duration::from_millis(limit),
            _ => true,
        })
        .cloned()
        .collect();
    Assignment {
        host: assignment.host.clone(),
        instances,
        epoch: assignment.epoch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::cluster::InstanceSpec;

    fn spec(id: &str, stop_after_ms: Option<u64>) -> InstanceSpec {
        let mut spec: InstanceSpec = serde_json::from_value(serde_json::json!({
            "id": id, "app": "a", "service": id, "revision": 1,
            "spec_hash": "h", "artifact": {"kind": "stored", "ref": "sha256:00"},
            "env": {}, "ports": [], "limits": {"memory": null, "cpus_milli": null},
            "reservations": {"memory": null, "cpus_milli": null}, "timeout_ms": 1000
        }))
        .expect("spec");
        spec.disconnect.stop_after_ms = stop_after_ms;
        spec
    }

    fn assignment() -> Assignment {
        Assignment {
            host: "h1".into(),
            instances: vec![
                spec("always", None),
                spec("short", Some(2_000)),
                spec("long", Some(60_000)),
            ],
            epoch: 0,
        }
    }

    fn kept(alone_since: Option<Instant>, now: Instant) -> Vec<String> {
        let a = to_keep(alone_since, now, &assignment());
        assert_eq!(a.host, "h1");
        a.instances.into_iter().map(|i| i.id).collect()
    }

    #[test]
    fn a_connected_host_runs_everything() {
        assert_eq!(kept(None, Instant::now()), ["always", "short", "long"]);
    }

    #[test]
    fn an_instance_goes_once_the_host_is_alone_for_longer_than_its_stop_after() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(kept(Some(t0), t0), ["always", "short", "long"]);
        assert_eq!(kept(Some(t0), at(2_000)), ["always", "short", "long"]);
        assert_eq!(kept(Some(t0), at(2_001)), ["always", "long"]);
        assert_eq!(kept(Some(t0), at(60_001)), ["always"]);
        // Back with NATS: all of it again.
        assert_eq!(kept(None, at(60_002)), ["always", "short", "long"]);
    }

    #[test]
    fn a_stop_after_of_zero_stops_at_once_and_a_clock_going_back_stops_nothing() {
        let t0 = Instant::now();
        let mut a = assignment();
        a.instances.push(spec("zero", Some(0)));
        let at = t0 + Duration::from_millis(1);
        let ids: Vec<String> = (to_keep(Some(t0), at, &a).instances.into_iter())
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["always", "short", "long"]);
        let before = to_keep(Some(at), t0, &a);
        assert_eq!(before.instances.len(), 4, "no time alone yet");
    }

    #[test]
    fn alone_since_the_first_moment_without_nats() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(alone_since(None, false, t0), Some(t0));
        assert_eq!(alone_since(Some(t0), false, t1), Some(t0), "kept");
        assert_eq!(alone_since(Some(t0), true, t1), None, "reset on reconnect");
    }
}
