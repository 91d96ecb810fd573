//! Following this host's assignment key. Level-triggered: a missed update
//! is harmless, the next value is the whole truth. Each value goes to
//! `apply` with its KV revision ([`Assigned::offer`](super::assigned)
//! caches it, unless it is older than what the host runs, and runs it).

use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use atoll_sdk::cluster::Assignment;
use futures::StreamExt;

/// How often the watch is checked against the key itself: a watch whose
/// consumer was on a NATS node that died may stay silent for a while.
const STALL_CHECK: Duration = Duration::from_secs(3);

/// Whether the key holds a revision later than `last`, the watch's last.
async fn behind(kv: &kv::Store, host: &str, last: u64) -> bool {
    match kv.entry(host).await {
        Ok(Some(entry)) => entry.revision > last,
        _ => false,
    }
}

/// Follows this host's assignment key; level-triggered, so a missed
/// update is harmless: the next value is the whole truth. A deleted key
/// means run nothing.
pub(crate) async fn watch(
    client: async_nats::Client,
    kv: kv::Store,
    host: String,
    apply: impl Fn(Option<String>, u64, Assignment) + Send + 'static,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match atoll_sdk::nats::watch_key(&client, &kv, &host, &host).await {
            Ok(watch) => {
                backoff = Duration::from_millis(100);
                follow(&kv, &host, watch, &apply).await;
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch the assignment; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Applies what one watch delivers, until it breaks or falls behind the
/// key (checked every [`STALL_CHECK`]).
async fn follow(
    kv: &kv::Store,
    host: &str,
    mut watch: impl futures::Stream<Item = Result<kv::Entry, String>> + Unpin,
    apply: &impl Fn(Option<String>, u64, Assignment),
) {
    let mut bucket = birth(kv).await;
    let mut last = 0;
    let mut check = tokio::time::interval(STALL_CHECK);
    check.tick().await;
    loop {
        let entry = tokio::select! {
            entry = watch.next() => entry,
            _ = check.tick() => {
                if behind(kv, host, last).await {
                    tracing::warn!("the assignment watch fell behind its key; watching again");
                    return;
                }
                continue;
            }
        };
        let Some(Ok(entry)) = entry else { return };
        last = last.max(entry.revision);
        let Some(assignment) = decode(&entry) else {
            continue;
        };
        // Read again with each value: the watch outlives a NATS replaced
        // underneath it (its consumer is made again), and a bucket made
        // since it started, its revisions counting from 1 again, must not
        // pass for the old one.
        if let Some(now) = birth(kv).await {
            bucket = Some(now);
        }
        apply(bucket.clone(), entry.revision, assignment);
    }
}

/// The assignment an entry holds: none for a deleted key; `None` for a
/// value that does not decode (logged, skipped).
fn decode(entry: &kv::Entry) -> Option<Assignment> {
    match entry.operation {
        Operation::Delete | Operation::Purge => Some(Assignment::default()),
        Operation::Put => match serde_json::from_slice::<Assignment>(&entry.value) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::error!(error = %e, "ignoring an undecodable assignment");
                None
            }
        },
    }
}

/// Which bucket the revisions count in (when it was made): one made anew
/// (NATS restored from nothing, or from an export) counts from 1 again.
/// Asked of the server each time: `kv::Store::status` answers what the
/// handle cached when it was opened, the birth of a bucket since replaced.
async fn birth(kv: &kv::Store) -> Option<String> {
    match kv.stream.get_info().await {
        Ok(info) => Some(info.created.unix_timestamp_nanos().to_string()),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the assignments bucket's birth");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_sdk::nats::testing::TestNats;
    use std::sync::{Arc, Mutex};

    async fn seen_until(
        seen: &Arc<Mutex<Vec<Assignment>>>,
        what: &str,
        f: impl Fn(&[Assignment]) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if f(&seen.lock().expect("lock")) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited 10 s for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn every_assignment_is_applied_with_its_revision_and_a_deleted_key_means_nothing() {
        let nats = TestNats::start();
        let client = async_nats::connect(nats.url()).await.expect("connect");
        let js = async_nats::jetstream::new(client.clone());
        let cfg = kv::Config {
            bucket: "assignments".into(),
            ..Default::default()
        };
        let store = atoll_sdk::nats::open_kv(&js, cfg).await.expect("bucket");
        let seen = Arc::new(Mutex::new(Vec::<Assignment>::new()));
        let revisions = Arc::new(Mutex::new(Vec::<u64>::new()));
        let (record, record_rev) = (seen.clone(), revisions.clone());
        let task = tokio::spawn(watch(
            client.clone(),
            store.clone(),
            "h1".into(),
            move |_bucket, rev, a| {
                record_rev.lock().expect("lock").push(rev);
                record.lock().expect("lock").push(a)
            },
        ));

        let put = |host: &str| {
            let a = Assignment {
                host: host.into(),
                instances: Vec::new(),
                epoch: 0,
            };
            serde_json::to_vec(&a).expect("json")
        };
        let first = store.put("h1", put("h1").into()).await.expect("put");
        seen_until(&seen, "the first assignment", |s| !s.is_empty()).await;
        store.put("h2", put("h2").into()).await.expect("put other");
        store
            .put("h1", b"{garbage".to_vec().into())
            .await
            .expect("put garbage");
        let second = store.put("h1", put("h1-again").into()).await.expect("put");
        seen_until(&seen, "the second assignment", |s| s.len() >= 2).await;
        {
            let s = seen.lock().expect("lock");
            let hosts: Vec<&str> = s.iter().map(|a| a.host.as_str()).collect();
            assert_eq!(
                hosts,
                ["h1", "h1-again"],
                "its own key only; garbage skipped"
            );
        }
        assert_eq!(
            revisions.lock().expect("lock").clone(),
            [first, second],
            "with the revision each was written at"
        );

        store.delete("h1").await.expect("delete");
        seen_until(&seen, "the deletion", |s| s.len() >= 3).await;
        let last = seen.lock().expect("lock").last().cloned().expect("last");
        assert!(
            last.instances.is_empty() && last.host.is_empty(),
            "{last:?}"
        );
        task.abort();
    }

    #[tokio::test]
    async fn a_bucket_made_anew_under_a_running_watch_is_told_apart() {
        let nats = TestNats::start();
        let client = async_nats::connect(nats.url()).await.expect("connect");
        let js = async_nats::jetstream::new(client.clone());
        let cfg = kv::Config {
            bucket: "assignments".into(),
            ..Default::default()
        };
        let store = atoll_sdk::nats::open_kv(&js, cfg.clone())
            .await
            .expect("bucket");
        let seen = Arc::new(Mutex::new(Vec::<(Option<String>, u64)>::new()));
        let record = seen.clone();
        let task = tokio::spawn(watch(
            client.clone(),
            store.clone(),
            "h1".into(),
            move |bucket, rev, _| record.lock().expect("lock").push((bucket, rev)),
        ));
        let value = || serde_json::to_vec(&Assignment::default()).expect("json");
        // A watch whose stream went away notices it by missed heartbeats
        // (seconds) before its consumer is made again.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        let wait = |n: usize, what: &str| {
            let seen = seen.clone();
            let what = what.to_string();
            async move {
                while seen.lock().expect("lock").len() < n {
                    assert!(tokio::time::Instant::now() < deadline, "waited for {what}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        store.put("h1", value().into()).await.expect("put");
        wait(1, "the first value").await;
        store.put("h1", value().into()).await.expect("put");
        wait(2, "the second value").await;

        // NATS restored from nothing: the bucket is made again, its
        // revisions count from 1, under the running watch.
        js.delete_key_value("assignments")
            .await
            .expect("delete bucket");
        let again = atoll_sdk::nats::open_kv(&js, cfg).await.expect("again");
        again.put("h1", value().into()).await.expect("put");
        wait(3, "the new bucket's value").await;
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen[0].0, seen[1].0, "one bucket: {seen:?}");
        assert_eq!(seen[2].1, 1, "{seen:?}");
        assert!(
            seen[2].0.is_some() && seen[2].0 != seen[1].0,
            "the new bucket is told apart: {seen:?}"
        );
        task.abort();
    }
}
