//! The host's heartbeat. The whole state (its info and every instance's)
//! goes out when it changes (at once, debounced), when a server asks for
//! it, and every [`FULL_EVERY`] otherwise; every other interval a
//! [`Pulse`] of a few dozen bytes says the host is alive and names the
//! full heartbeat it vouches for, so a server that missed one asks again
//! (see `atoll_sdk::protocol::pulse`). Full heartbeats carry the run id of
//! this host process in a header too, so that a host can tell its own
//! heartbeats from another process's under its name
//! ([`duplicate`](super::duplicate)).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use atoll_sdk::cluster::{HostInfo, InstanceStatus};
use atoll_sdk::protocol::{HEARTBEAT_INTERVAL_MS, Heartbeat, Pulse, VERSION, resync_subject};
use futures::StreamExt;
use tokio::time::Instant;

use crate::supervisor::Supervisor;

/// The header naming the process that sent a full heartbeat (a random
/// `u64` per run of `atoll host`, in decimal).
pub(crate) const RUN_HEADER: &str = "Atoll-Run";

/// The whole state goes out at least this often, even when nothing
/// changed and no server asked: a safety net only (a server that misses
/// a full heartbeat asks at the next pulse), so rare — at ten instances a
/// full heartbeat is ~3 KB, 5 B/s at this period.
pub(crate) const FULL_EVERY: Duration = Duration::from_secs(600);

/// What a heartbeat reports: the instances and when they change.
pub(crate) trait Instances: Send + Sync + 'static {
    fn statuses(&self) -> Vec<InstanceStatus>;
    /// Resolves at the next change of an instance's state.
    fn changed(&self) -> impl Future<Output = ()> + Send;
}

impl Instances for Supervisor {
    fn statuses(&self) -> Vec<InstanceStatus> {
        Supervisor::statuses(self)
    }
    async fn changed(&self) {
        Supervisor::changed(self).await
    }
}

/// The full heartbeat last sent: what it said and when.
pub(crate) struct Sent {
    pub instances: Vec<InstanceStatus>,
    pub at: Instant,
}

/// Whether the next beat must carry the whole state: none was sent yet,
/// it changed, a server asked, or [`FULL_EVERY`] has passed.
pub(crate) fn full_due(
    sent: Option<&Sent>,
    now: &[InstanceStatus],
    asked: bool,
    at: Instant,
) -> bool {
    match sent {
        None => true,
        Some(s) => asked || s.instances != now || at.duration_since(s.at) >= FULL_EVERY,
    }
}

/// Sends this host's heartbeats on `subject` until the task is dropped.
pub(crate) async fn send<I: Instances>(
    client: async_nats::Client,
    subject: String,
    info: HostInfo,
    instances: Arc<I>,
    run_id: u64,
) {
    let interval = Duration::from_millis(HEARTBEAT_INTERVAL_MS);
    let resync = resync_subject(&info.name);
    // Without the subscription the host still beats; servers that miss a
    // change then learn it at the next full heartbeat.
    let mut asks = match client.subscribe(resync.clone()).await {
        Ok(sub) => Some(sub),
        Err(e) => {
            tracing::warn!(error = %e, "cannot hear servers asking for the whole state");
            None
        }
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(RUN_HEADER, run_id.to_string().as_str());
    let (mut seq, mut full) = (0u64, 0u64);
    let mut sent: Option<Sent> = None;
    let mut asked = false;
    let mut next_beat = Instant::now();
    loop {
        let now = Instant::now();
        let statuses = instances.statuses();
        let whole = full_due(sent.as_ref(), &statuses, asked, now);
        if whole || now >= next_beat {
            seq += 1;
            next_beat = now + interval;
            // Plain data: encoding cannot fail.
            let published = match whole {
                true => {
                    full = seq;
                    let hb = Heartbeat {
                        v: VERSION,
                        host: info.clone(),
                        seq,
                        run: run_id,
                        instances: statuses,
                    };
                    let bytes = serde_json::to_vec(&hb).unwrap_or_default();
                    sent = Some(Sent {
                        instances: hb.instances,
                        at: now,
                    });
                    asked = false;
                    let to = subject.clone();
                    client
                        .publish_with_headers(to, headers.clone(), bytes.into())
                        .await
                }
                false => {
                    let pulse = Pulse {
                        v: VERSION,
                        seq,
                        full,
                        run: run_id,
                    };
                    let bytes = serde_json::to_vec(&pulse).unwrap_or_default();
                    let to = subject.clone();
                    client
                        .publish_with_reply(to, resync.clone(), bytes.into())
                        .await
                }
            };
            if let Err(e) = published {
                tracing::warn!(error = %e, "heartbeat not sent");
            }
        }
        tokio::select! {
            () = instances.changed() => {
                // Batches a burst of changes; short, as a new instance
                // takes traffic only once the server has heard it runs.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Some(_) = next_ask(&mut asks) => {
                // Several servers may ask at once: one answer serves all.
                tokio::time::sleep(Duration::from_millis(20)).await;
                asked = true;
            }
            () = tokio::time::sleep_until(next_beat) => {}
        }
    }
}

/// The next request for the whole state (never, without a subscription).
async fn next_ask(asks: &mut Option<async_nats::Subscriber>) -> Option<async_nats::Message> {
    match asks {
        Some(sub) => sub.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
