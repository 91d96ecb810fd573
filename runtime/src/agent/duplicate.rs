//! One live host per name. Two processes under one name would run the
//! same assignment twice and their heartbeats would interleave, so a
//! host listens on its own heartbeat subject: before its first heartbeat
//! (for a little more than one interval) any other process heard there
//! is already running, and this one gives way; later, when two hear each
//! other, the lower run id gives way, so exactly one stays whatever the
//! timing. No clocks are compared: each process has a random run id
//! (in its heartbeats and pulses), and a restarted host is a new
//! process whose predecessor is silent.

use atoll_sdk::nats::published_to;
use std::time::Duration;

use async_nats::{HeaderMap, Subscriber};
use atoll_sdk::protocol::{Beat, HEARTBEAT_INTERVAL_MS};
use futures::StreamExt;
use tokio::time::Instant;

use super::heartbeat::RUN_HEADER;

/// How long a joining host listens before its first heartbeat: more than
/// one heartbeat interval, so that a live host is heard.
pub(super) const LISTEN: Duration = Duration::from_millis(HEARTBEAT_INTERVAL_MS * 3 / 2);

/// Where the host stands when it hears another process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// It has not heartbeated yet: whoever was there first stays.
    Joining,
    /// Both heartbeat.
    Running,
}

/// Whether this process (run `mine`) must give way after hearing a
/// heartbeat from run `theirs` under its name (`None`: a sender that does
/// not say, which never gives way itself).
pub(super) fn must_yield(phase: Phase, mine: u64, theirs: Option<u64>) -> bool {
    match (phase, theirs) {
        (_, Some(t)) if t == mine => false,
        (Phase::Joining, _) => true,
        (Phase::Running, None) => true,
        (Phase::Running, Some(t)) => mine < t,
    }
}

/// The run a message on the heartbeat subject came from: `None` when it
/// is not a heartbeat of host `name`, `Some(None)` when it does not say
/// which run sent it.
pub(super) fn heard(
    payload: &[u8],
    headers: Option<&HeaderMap>,
    name: &str,
) -> Option<Option<u64>> {
    match Beat::decode(payload).ok()? {
        Beat::Pulse(p) => Some(Some(p.run)),
        Beat::Full(hb) if hb.host.name != name => None,
        Beat::Full(hb) => {
            let header = headers.and_then(|h| h.get(RUN_HEADER));
            let run = header.and_then(|v| v.as_str().parse().ok());
            // Hosts older than the payload's run say it in the header only.
            Some(run.or((hb.run != 0).then_some(hb.run)))
        }
    }
}

/// How long a joining host waits for a second heartbeat of a run it heard
/// once: a live host beats every interval, while a predecessor killed a
/// moment ago may still have one heartbeat in flight (NATS delivers what
/// it read from a connection before it noticed the connection closed).
const SECOND_BEAT: Duration = Duration::from_millis(HEARTBEAT_INTERVAL_MS * 2);

/// Listens until `until` (or until another process is heard twice): the
/// other's run when one was, which means this host must not join.
pub(super) async fn listen(
    sub: &mut Subscriber,
    subject: &str,
    name: &str,
    mine: u64,
    until: Instant,
) -> Option<Option<u64>> {
    let mut deadline = until;
    let mut once: Option<Option<u64>> = None;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
        if !published_to(&msg, subject) {
            continue;
        }
        let Some(theirs) = heard(&msg.payload, msg.headers.as_ref(), name) else {
            continue;
        };
        if !must_yield(Phase::Joining, mine, theirs) {
            continue;
        }
        if once == Some(theirs) {
            return Some(theirs);
        }
        once = Some(theirs);
        deadline = deadline.max(Instant::now() + SECOND_BEAT);
    }
    None
}

/// Follows the heartbeat subject while the host runs; returns the other
/// process's run when this one must give way to it.
pub(super) async fn watch(
    mut sub: Subscriber,
    subject: &str,
    name: &str,
    mine: u64,
) -> Option<Option<u64>> {
    while let Some(msg) = sub.next().await {
        if !published_to(&msg, subject) {
            continue;
        }
        let Some(theirs) = heard(&msg.payload, msg.headers.as_ref(), name) else {
            continue;
        };
        if must_yield(Phase::Running, mine, theirs) {
            return Some(theirs);
        }
        if theirs != Some(mine) {
            tracing::warn!(
                host = name,
                other_run = ?theirs,
                "another process heartbeats as this host; it gives way (lower run id)"
            );
        }
    }
    None
}

#[cfg(test)]
mod tests;
