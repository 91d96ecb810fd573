//! The NATS side of the shared language: connecting ([`connect`], to one
//! server or a list — [`parse_urls`]), opening the cluster's JetStream
//! buckets, and mirroring a KV bucket in memory ([`Mirror`]). The server and
//! the hosts both call [`Buckets::open`]: whichever starts first creates the
//! buckets, with the same configuration, so start order does not matter.
//! How many replicas JetStream keeps of them only the server decides
//! ([`replicas::ensure`], before it opens them); hosts never change it.

mod host_buckets;
mod key_watch;
mod leader_read;
mod mirror;
pub mod replicas;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use host_buckets::HostBuckets;
pub use key_watch::{KeyWatchError, watch_key};
pub use leader_read::{LeaderEntry, ListError, leader_entries, leader_entry, leader_entry_of};
pub use mirror::{Mirror, MirrorView, Versioned};

use crate::protocol::Names;
pub use async_nats::ServerAddr;
use async_nats::ToServerAddrs;
use async_nats::jetstream::{self, kv, object_store};
use std::time::Duration;

/// How long the leader lease lives without renewal (`atoll server
/// --lease-ttl`, whose default this is, sets it on the bucket).
pub const LEASE_TTL: Duration = Duration::from_secs(4);

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
    pub availability: kv::Store,
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

/// The settings of the cluster's buckets, shared by [`Buckets::open`] and
/// [`replicas::ensure`]. Replicas are left unset (one): creating a bucket
/// with more is the server's decision.
pub(crate) struct Layout {
    pub apps: kv::Config,
    pub assignments: kv::Config,
    pub endpoints: kv::Config,
    pub status: kv::Config,
    pub leader: kv::Config,
    pub removed_hosts: kv::Config,
    pub availability: kv::Config,
    pub scale: kv::Config,
    pub tokens: kv::Config,
    pub joined: kv::Config,
    pub artifacts: object_store::Config,
}

impl Layout {
    pub fn new(names: &Names) -> Layout {
        let kv_cfg = |bucket: String, history: i64| kv::Config {
            bucket,
            history,
            ..Default::default()
        };
        Layout {
            apps: kv_cfg(names.apps_bucket(), 16),
            assignments: kv_cfg(names.assignments_bucket(), 4),
            endpoints: kv_cfg(names.endpoints_bucket(), 1),
            status: kv_cfg(names.status_bucket(), 1),
            leader: kv::Config {
                max_age: LEASE_TTL,
                ..kv_cfg(names.leader_bucket(), 1)
            },
            removed_hosts: kv_cfg(names.removed_hosts_bucket(), 1),
            availability: kv_cfg(names.availability_bucket(), 1),
            scale: kv_cfg(names.scale_bucket(), 1),
            tokens: kv_cfg(names.tokens_bucket(), 1),
            joined: kv_cfg(names.joined_bucket(), 1),
            artifacts: object_store::Config {
                bucket: names.artifacts_bucket(),
                ..Default::default()
            },
        }
    }

    /// Every KV bucket's settings.
    pub fn kv(&self) -> [&kv::Config; 10] {
        [
            &self.apps,
            &self.assignments,
            &self.endpoints,
            &self.status,
            &self.leader,
            &self.removed_hosts,
            &self.availability,
            &self.scale,
            &self.tokens,
            &self.joined,
        ]
    }
}

impl Buckets {
    /// Opens the cluster's buckets, creating missing ones with one replica
    /// (a host that starts before any server); an existing bucket is used
    /// as it is.
    pub async fn open(client: async_nats::Client, cluster: &str) -> Result<Buckets, BucketError> {
        let js = jetstream::new(client);
        let names = Names::new(cluster);
        let l = Layout::new(&names);
        Ok(Buckets {
            apps: open_kv(&js, l.apps).await?,
            assignments: open_kv(&js, l.assignments).await?,
            endpoints: open_kv(&js, l.endpoints).await?,
            status: open_kv(&js, l.status).await?,
            leader: open_kv(&js, l.leader).await?,
            removed_hosts: open_kv(&js, l.removed_hosts).await?,
            availability: open_kv(&js, l.availability).await?,
            scale: open_kv(&js, l.scale).await?,
            artifacts: open_objects(&js, l.artifacts).await?,
            js,
            names,
        })
    }
}

/// The buckets only servers open (hosts never do).
#[derive(Debug, Clone, Copy)]
pub enum ServersOnly {
    /// The API tokens ([`Names::tokens_bucket`]).
    Tokens,
    /// The hosts that joined ([`Names::joined_bucket`]).
    Joined,
}

/// Opens one of the servers' own buckets, creating it with `replicas`
/// replicas when missing.
pub async fn open_servers_only(
    js: &jetstream::Context,
    names: &Names,
    which: ServersOnly,
    replicas: usize,
) -> Result<kv::Store, BucketError> {
    let layout = Layout::new(names);
    let mut cfg = match which {
        ServersOnly::Tokens => layout.tokens,
        ServersOnly::Joined => layout.joined,
    };
    cfg.num_replicas = replicas;
    open_kv(js, cfg).await
}

impl Buckets {
    /// Makes the apps bucket again, with `replicas` replicas, when it is
    /// gone (its stream deleted under a running cluster); an existing one
    /// is left as it is. What the old one held is lost: the controller
    /// holds until desired state is written again (`atoll import`, or a
    /// deploy), which goes into the new one through the same handle.
    pub async fn ensure_apps(&self, replicas: usize) -> Result<(), BucketError> {
        let mut cfg = Layout::new(&self.names).apps;
        cfg.num_replicas = replicas;
        open_kv(&self.js, cfg).await.map(|_| ())
    }
}

/// Opens a KV bucket, creating its stream when missing. The stream is
/// created directly (with the settings `create_key_value` would use) because
/// `create_key_value` first reads the account info, whose shape changed
/// after NATS 2.9 — and Debian ships 2.9. A bucket it creates has
/// `cfg.num_replicas` replicas (at least one); an existing one is opened
/// as it is.
pub async fn open_kv(js: &jetstream::Context, cfg: kv::Config) -> Result<kv::Store, BucketError> {
    if let Ok(store) = js.get_key_value(&cfg.bucket).await {
        return Ok(store);
    }
    let bucket = cfg.bucket.clone();
    let stream = jetstream::stream::Config {
        name: kv_stream(&bucket),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: cfg.history.max(1),
        max_age: cfg.max_age,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: cfg.num_replicas.max(1),
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

/// Largest value a component may store (`wasi:keyvalue`).
pub const APP_STATE_MAX_VALUE: usize = 1 << 20;

/// The settings of app `app`'s component state bucket
/// ([`Names::app_kv_bucket`]): whoever makes it (a server granting a
/// host access to it, or a host of a lab cluster) makes it the same.
pub fn app_state_config(names: &Names, app: &str, replicas: usize) -> kv::Config {
    kv::Config {
        bucket: names.app_kv_bucket(app),
        history: 1,
        num_replicas: replicas,
        max_value_size: i32::try_from(APP_STATE_MAX_VALUE).unwrap_or(i32::MAX),
        ..Default::default()
    }
}

/// The JetStream stream behind KV bucket `bucket`.
pub fn kv_stream(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// The JetStream stream behind object store `bucket`.
pub fn objects_stream(bucket: &str) -> String {
    format!("OBJ_{bucket}")
}

/// Opens an object store, creating it (with `cfg.num_replicas` replicas)
/// when missing.
pub(crate) async fn open_objects(
    js: &jetstream::Context,
    cfg: object_store::Config,
) -> Result<object_store::ObjectStore, BucketError> {
    let bucket = cfg.bucket.clone();
    if let Ok(store) = js.get_object_store(&bucket).await {
        return Ok(store);
    }
    match js.create_object_store(cfg).await {
        Ok(store) => Ok(store),
        Err(first) => js.get_object_store(&bucket).await.map_err(|_| BucketError {
            bucket,
            message: first.to_string(),
        }),
    }
}

/// A `--nats` list with an entry that is not a NATS URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid NATS URL {url:?}: {message} (expected nats://HOST:PORT, several separated by commas)"
)]
pub struct UrlError {
    pub url: String,
    pub message: String,
}

/// Parses a comma-separated list of NATS URLs (`nats://a:4222,b:4222`; a
/// bare `host:port` means `nats://host:port`). The client fails over
/// between them. The error names the first malformed entry.
pub fn parse_urls(list: &str) -> Result<Vec<ServerAddr>, UrlError> {
    let mut urls = Vec::new();
    for url in list.split(',').map(str::trim) {
        if url.is_empty() {
            return Err(UrlError {
                url: list.to_string(),
                message: "an empty entry in the list".to_string(),
            });
        }
        let addr = url.parse::<ServerAddr>().map_err(|e| UrlError {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        urls.push(addr);
    }
    Ok(urls)
}

/// The first connection to NATS failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {url}: {source}")]
pub struct ConnectError {
    /// The URLs tried, comma-separated.
    pub url: String,
    pub source: async_nats::ConnectError,
}

/// Connects to NATS — one URL, or a list ([`parse_urls`]) the client fails
/// over between — with bounded, named errors and unlimited reconnects (a
/// host must survive NATS restarts: edge autonomy).
pub async fn connect<A: ToServerAddrs + ?Sized>(
    urls: &A,
    name: &str,
) -> Result<async_nats::Client, ConnectError> {
    connect_as(urls, name, None).await
}

/// [`connect`] with NATS user credentials (a `.creds` file: the user's
/// JWT and seed), as a NATS server with accounts wants.
pub async fn connect_as<A: ToServerAddrs + ?Sized>(
    urls: &A,
    name: &str,
    creds: Option<&std::path::Path>,
) -> Result<async_nats::Client, ConnectError> {
    connect_with_inbox(urls, name, creds, None).await
}

/// Whether `msg` was published to `subject`. A JetStream push consumer
/// delivers to the subject its creator names but keeps each message's own
/// subject, so a client allowed to make a consumer on some stream can
/// make deliveries arrive at another's exact subscription: a subscriber
/// that trusts what arrives checks the subject.
pub fn published_to(msg: &async_nats::Message, subject: &str) -> bool {
    msg.subject.as_str() == subject
}

pub use crate::protocol::host_inbox;

/// [`connect_as`] with replies and consumer deliveries under `inbox`
/// instead of `_INBOX.` ([`host_inbox`]).
pub async fn connect_with_inbox<A: ToServerAddrs + ?Sized>(
    urls: &A,
    name: &str,
    creds: Option<&std::path::Path>,
    inbox: Option<&str>,
) -> Result<async_nats::Client, ConnectError> {
    let shown = urls.to_server_addrs().map_or_else(
        |e| e.to_string(),
        |addrs| {
            let all: Vec<String> = addrs.map(|a| a.as_url_str().to_string()).collect();
            all.join(",")
        },
    );
    let options = match creds {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| ConnectError {
                url: shown.clone(),
                source: async_nats::ConnectError::with_source(
                    async_nats::ConnectErrorKind::Authentication,
                    format!("cannot read NATS credentials {}: {e}", path.display()),
                ),
            })?,
        None => async_nats::ConnectOptions::new(),
    };
    let options = match inbox {
        Some(prefix) => options.custom_inbox_prefix(prefix),
        None => options,
    };
    options
        .name(name)
        .connection_timeout(Duration::from_secs(3))
        .max_reconnects(None)
        .connect(urls)
        .await
        .map_err(|source| ConnectError { url: shown, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_urls_parses_in_order() {
        let urls = parse_urls("nats://127.0.0.1:4222, nats://127.0.0.2:4223,127.0.0.3:4224")
            .expect("a valid list");
        let shown: Vec<(&str, u16)> = urls.iter().map(|u| (u.host(), u.port())).collect();
        assert_eq!(
            shown,
            [
                ("127.0.0.1", 4222),
                ("127.0.0.2", 4223),
                ("127.0.0.3", 4224)
            ]
        );
    }

    #[test]
    fn a_malformed_url_is_named() {
        let err = parse_urls("nats://127.0.0.1:4222,http://127.0.0.2:4222").unwrap_err();
        assert_eq!(err.url, "http://127.0.0.2:4222");
        assert!(err.to_string().contains("http://127.0.0.2:4222"), "{err}");
    }

    #[test]
    fn an_empty_entry_is_refused() {
        for list in ["", "nats://a:4222,", "nats://a:4222,,nats://b:4222"] {
            let err = parse_urls(list).unwrap_err();
            assert!(err.message.contains("empty"), "{list:?}: {err}");
        }
    }
}
