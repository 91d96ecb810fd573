//! Watching one key of a KV bucket through an ordered consumer that has a
//! name, so that its filter is part of the create subject
//! (`$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>`): what NATS
//! permissions can confine to that one key. `kv::Store::watch_with_history`
//! names no consumer and so creates it on the unfiltered subject, which a
//! user allowed it could use to read every key of the bucket.

use async_nats::jetstream::consumer::{DeliverPolicy, ReplayPolicy, push};
use async_nats::jetstream::kv::{self, Entry, Operation};
use futures::{Stream, StreamExt};

/// The consumer could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch key {key} of bucket {bucket}: {message}")]
pub struct KeyWatchError {
    pub bucket: String,
    pub key: String,
    pub message: String,
}

/// The last value of `key` (if any), then every change, as the entries
/// `watch_with_history` gives. `owner` names the consumer (a token: any
/// `.`, `*`, `>` or space in it is replaced); deliveries come to an inbox
/// of `client`, which must be the store's.
pub async fn watch_key(
    client: &async_nats::Client,
    store: &kv::Store,
    key: &str,
    owner: &str,
) -> Result<impl Stream<Item = Result<Entry, String>> + Unpin + use<>, KeyWatchError> {
    let fail = |message: String| KeyWatchError {
        bucket: store.name.clone(),
        key: key.to_string(),
        message,
    };
    let token: String = (owner.chars())
        .map(|c| match c {
            '.' | '*' | '>' => '_',
            c if c.is_whitespace() => '_',
            c => c,
        })
        .collect();
    // The inbox ends with a fresh unique token: the consumer's name too.
    let inbox = client.new_inbox();
    let unique = inbox.rsplit('.').next().unwrap_or_default();
    let consumer = store
        .stream
        .create_consumer(push::OrderedConfig {
            name: Some(format!("{token}-{unique}")),
            deliver_subject: inbox.clone(),
            description: Some("atoll key watch".to_string()),
            filter_subject: format!("{}{key}", store.prefix),
            replay_policy: ReplayPolicy::Instant,
            deliver_policy: DeliverPolicy::LastPerSubject,
            ..Default::default()
        })
        .await
        .map_err(|e| fail(e.to_string()))?;
    let messages = consumer.messages().await.map_err(|e| fail(e.to_string()))?;
    let (bucket, prefix) = (store.name.clone(), store.prefix.clone());
    Ok(messages.map(move |message| {
        let message = message.map_err(|e| e.to_string())?;
        let info = message.info().map_err(|e| e.to_string())?;
        let operation = match message.headers.as_ref().and_then(|h| h.get("KV-Operation")) {
            Some(v) if v.as_str() == "DEL" => Operation::Delete,
            Some(v) if v.as_str() == "PURGE" => Operation::Purge,
            _ => Operation::Put,
        };
        let key = (message.subject.strip_prefix(prefix.as_str()))
            .unwrap_or(message.subject.as_str())
            .to_string();
        Ok(Entry {
            bucket: bucket.clone(),
            key,
            value: message.payload.clone(),
            revision: info.stream_sequence,
            delta: info.pending,
            created: info.published,
            operation,
            seen_current: info.pending == 0,
        })
    }))
}
