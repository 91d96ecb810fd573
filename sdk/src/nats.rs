//! The NATS side of the shared language: connecting ([`connect`]),
//! opening the cluster's JetStream buckets, and mirroring a KV bucket in
//! memory ([`Mirror`]). The server and the hosts both call
//! [`Buckets::open`]: whichever starts first creates the buckets, with the
//! same configuration, so start order does not matter.

mod mirror;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use mirror::{Mirror, MirrorView, Versioned};

use crate::protocol::Names;
use async_nats::jetstream::{self, kv, object_store};
use std::time::Duration;

/// How long the leader lease lives without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(5);

/// Handles on every bucket of one cluster.
#[derive(Clone)]
pub struct Buckets {
    pub js: jetstream::Context,
    pub names: Names,
    pub apps: kv::Store,
    pub assignments: kv::Store,
    pub endpoints: kv::Store,
    pub status: kv::Store,
    pub leader: kv::Store,
    pub removed_hosts: kv::Store,
    pub scale: kv::Store,
    pub artifacts: object_store::ObjectStore,
}

/// A bucket could not be opened or created.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot open JetStream bucket {bucket}: {message} (is JetStream enabled on the NATS server? start it with -js)"
)]
pub struct BucketError {
    pub bucket: String,
    pub message: String,
}

impl Buckets {
    pub async fn open(client: async_nats::Client, cluster: &str) -> Result<Buckets, BucketError> {
        let js = jetstream::new(client);
        let names = Names::new(cluster);
        let kv_cfg = |bucket: String, history: i64| kv::Config {
            bucket,
            history,
            ..Default::default()
        };
        let apps = open_kv(&js, kv_cfg(names.apps_bucket(), 16)).await?;
        let assignments = open_kv(&js, kv_cfg(names.assignments_bucket(), 4)).await?;
        let endpoints = open_kv(&js, kv_cfg(names.endpoints_bucket(), 1)).await?;
        let status = open_kv(&js, kv_cfg(names.status_bucket(), 1)).await?;
        let leader = open_kv(
            &js,
            kv::Config {
                max_age: LEASE_TTL,
                ..kv_cfg(names.leader_bucket(), 1)
            },
        )
        .await?;
        let removed_hosts = open_kv(&js, kv_cfg(names.removed_hosts_bucket(), 1)).await?;
        let scale = open_kv(&js, kv_cfg(names.scale_bucket(), 1)).await?;
        let artifacts = open_objects(&js, &names.artifacts_bucket()).await?;
        Ok(Buckets {
            js,
            names,
            apps,
            assignments,
            endpoints,
            status,
            leader,
            removed_hosts,
            scale,
            artifacts,
        })
    }
}

/// Opens a KV bucket, creating its stream when missing. The stream is
/// created directly (with the settings `create_key_value` would use) because
/// `create_key_value` first reads the account info, whose shape changed
/// after NATS 2.9 — and Debian ships 2.9.
pub async fn open_kv(js: &jetstream::Context, cfg: kv::Config) -> Result<kv::Store, BucketError> {
    if let Ok(store) = js.get_key_value(&cfg.bucket).await {
        return Ok(store);
    }
    let bucket = cfg.bucket.clone();
    let stream = jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: cfg.history.max(1),
        max_age: cfg.max_age,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    };
    let created = js.get_or_create_stream(stream).await;
    match js.get_key_value(&bucket).await {
        Ok(store) => Ok(store),
        Err(e) => Err(BucketError {
            bucket,
            message: created
                .err()
                .map_or_else(|| e.to_string(), |c| c.to_string()),
        }),
    }
}

async fn open_objects(
    js: &jetstream::Context,
    bucket: &str,
) -> Result<object_store::ObjectStore, BucketError> {
    if let Ok(store) = js.get_object_store(bucket).await {
        return Ok(store);
    }
    let cfg = object_store::Config {
        bucket: bucket.to_string(),
        ..Default::default()
    };
    match js.create_object_store(cfg).await {
        Ok(store) => Ok(store),
        Err(first) => js.get_object_store(bucket).await.map_err(|_| BucketError {
            bucket: bucket.to_string(),
            message: first.to_string(),
        }),
    }
}

/// The first connection to NATS failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {url}: {source}")]
pub struct ConnectError {
    pub url: String,
    pub source: async_nats::ConnectError,
}

/// Connects to NATS with bounded, named errors and unlimited reconnects
/// (a host must survive NATS restarts: edge autonomy).
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client, ConnectError> {
    async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(3))
        .max_reconnects(None)
        .connect(url)
        .await
        .map_err(|source| ConnectError {
            url: url.to_string(),
            source,
        })
}
