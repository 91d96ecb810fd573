//! Requests hosts send on subjects only their own NATS user may publish
//! to (state grants, secret values): servers take them as a queue group,
//! answer side by side, a bounded number at once, so one slow answer (a
//! bucket being made) holds up no other host.

use std::sync::Arc;

use futures::StreamExt;

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
