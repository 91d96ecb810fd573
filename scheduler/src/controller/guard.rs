//! The I/O of [`crate::lost_state`]: how the apps bucket's stream looks
//! now, as JetStream's stream leader answers.

use crate::cluster::Cluster;
use crate::lost_state::AppsStream;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::GetStreamErrorKind;

pub(super) async fn apps_stream(cluster: &Cluster) -> AppsStream {
    let name = atoll_sdk::nats::kv_stream(&cluster.buckets.names.apps_bucket());
    match cluster.buckets.js.get_stream(&name).await {
        Ok(stream) => {
            let state = &stream.cached_info().state;
            AppsStream::Present {
                messages: state.messages,
                last_seq: state.last_sequence,
            }
        }
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                AppsStream::Gone
            }
            // Unreachable, timed out, no stream leader yet: not a verdict.
            _ => AppsStream::Unknown,
        },
    }
}
