//! The host's heartbeat: its info and the state of every instance, every
//! interval, and at once (debounced) when an instance changes state. Each
//! carries the run id of this host process in a header, so that a host
//! can tell its own heartbeats from another process's under its name
//! ([`duplicate`](super::duplicate)).

use std::sync::Arc;
use std::time::Duration;

use atoll_sdk::cluster::HostInfo;
use atoll_sdk::protocol::{HEARTBEAT_INTERVAL_MS, Heartbeat, VERSION};

use crate::supervisor::Supervisor;

/// The header naming the process that sent a heartbeat (a random `u64`
/// per run of `atoll host`, in decimal).
pub(super) const RUN_HEADER: &str = "Atoll-Run";

/// Every interval, and at once (debounced) when an instance changes state.
pub(super) async fn send(
    client: async_nats::Client,
    subject: String,
    info: HostInfo,
    supervisor: Arc<Supervisor>,
    run_id: u64,
) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(RUN_HEADER, run_id.to_string().as_str());
    let mut seq = 0u64;
    loop {
        seq += 1;
        let hb = Heartbeat {
            v: VERSION,
            host: info.clone(),
            seq,
            instances: supervisor.statuses(),
        };
        if let Ok(bytes) = serde_json::to_vec(&hb)
            && let Err(e) =
                (client.publish_with_headers(subject.clone(), headers.clone(), bytes.into())).await
        {
            tracing::warn!(error = %e, "heartbeat not sent");
        }
        tokio::select! {
            _ = supervisor.changed() => {
                // Batches a burst of changes; short, as a new instance
                // takes traffic only once the server has heard it runs.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            _ = tokio::time::sleep(Duration::from_millis(HEARTBEAT_INTERVAL_MS)) => {}
        }
    }
}
