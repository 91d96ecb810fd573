//! Requests hosts send on subjects only their own NATS user may publish
//! to (state grants, secret values): servers take them as a queue group,
//! answer side by side, a bounded number at once, so one slow answer (a
//! bucket being made) holds up no other host.

use std::sync::Arc;

use futures::StreamExt;

/// The assignment of `host` as the stream's leader has it (a lagging
/// replica would miss an instance assigned a moment ago); `Ok(None)` when
/// nothing is assigned, `Err` saying why it cannot be read.
pub(crate) async fn assignment_of(
    assignments: &async_nats::jetstream::kv::Store,
    host: &str,
) -> Result<Option<atoll_sdk::cluster::Assignment>, String> {
    match atoll_sdk::nats::leader_entry(assignments, host).await {
        Ok(Some(entry)) => serde_json::from_slice(&entry.value)
            .map(Some)
            .map_err(|e| format!("the assignment of {host} is unreadable: {e}")),
        Ok(None) => Ok(None),
        Err(e) => Err(format!("cannot read the assignment of {host}: {e}")),
    }
}

/// Requests answered at once, at most.
const MAX_AT_ONCE: usize = 32;

/// Answers requests on `subject` with `answer` (the reply's bytes) until
/// the subscription ends.
pub(crate) async fn serve<F, Fut>(client: async_nats::Client, subject: String, answer: F)
where
    F: Fn(async_nats::Message) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<u8>> + Send + 'static,
{
    let mut sub = match client
        .queue_subscribe(subject.clone(), "atoll-servers".into())
        .await
    {
        Ok(sub) => sub,
        Err(e) => {
            tracing::error!(%subject, error = %e, "cannot take requests from hosts");
            return;
        }
    };
    let answer = Arc::new(answer);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_AT_ONCE));
    while let Some(msg) = sub.next().await {
        let Some(reply) = msg.reply.clone() else {
            continue;
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (answer, client) = (answer.clone(), client.clone());
        tokio::spawn(async move {
            let bytes = answer(msg).await;
            let _ = client.publish(reply, bytes.into()).await;
            drop(slot);
        });
    }
}
