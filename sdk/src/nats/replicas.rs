//! How many copies JetStream keeps of the cluster's buckets. Only the
//! server decides ([`ensure`], at its start, before [`Buckets::open`]):
//! every bucket, the object store and the apps' state buckets get the same
//! count; a bucket with fewer is raised, none is ever lowered (that is an
//! operator's deliberate act, with the `nats` tool). Hosts create a missing
//! core bucket with one replica (the server raises it) and an app's state
//! bucket with the apps bucket's count ([`chosen`]).
//!
//! The decision is [`decide`], a pure function of how many JetStream
//! servers can hold a replica now and what `--replicas` asked for. The
//! count comes from placing a throwaway in-memory stream with R replicas
//! ([`peers`]): JetStream answers "no suitable peers for placement" when
//! fewer than R servers are online and enabled, and a standalone server
//! answers "replicas > 1 not supported in non-clustered mode". The account
//! info (`$JS.API.INFO`) says nothing about the cluster, the server's
//! `INFO` lists client URLs (one server may have several, and routes
//! that are down are missing), and the meta group (`jsz`) needs the
//! system account or the monitoring port.
//!
//! [`Buckets::open`]: super::Buckets::open

use super::{BucketError, Layout, kv_stream, objects_stream, open_kv, open_objects};
use crate::protocol::Names;
use async_nats::jetstream::{self, ErrorCode, kv, object_store, stream};
use futures::TryStreamExt;

/// JetStream keeps at most this many replicas of a stream.
pub const MAX_REPLICAS: usize = 5;
/// Replicas when `--replicas` is not given and the cluster can hold them.
pub const DEFAULT_REPLICAS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum ReplicasError {
    #[error("--replicas {0}: JetStream keeps 1 to {MAX_REPLICAS} replicas of a bucket")]
    OutOfRange(usize),
    #[error(
        "JetStream has {}; --replicas {requested} needs at least {requested} (start a {requested}-node NATS cluster, or use --replicas 1)",
        servers(*peers)
    )]
    TooFewPeers { peers: usize, requested: usize },
    #[error(transparent)]
    Nats(#[from] BucketError),
}

fn servers(peers: usize) -> String {
    match peers {
        1 => "1 server".to_string(),
        n => format!("{n} servers online"),
    }
}

/// The replicas of every bucket: `requested`, or by default
/// [`DEFAULT_REPLICAS`] when `peers` (the JetStream servers that can hold
/// a replica) are that many, else 1. Refuses a count the cluster cannot
/// hold.
pub fn decide(peers: usize, requested: Option<usize>) -> Result<usize, ReplicasError> {
    match requested {
        None if peers >= DEFAULT_REPLICAS => Ok(DEFAULT_REPLICAS),
        None => Ok(1),
        Some(n) if n == 0 || n > MAX_REPLICAS => Err(ReplicasError::OutOfRange(n)),
        Some(n) if n > peers => Err(ReplicasError::TooFewPeers {
            peers,
            requested: n,
        }),
        Some(n) => Ok(n),
    }
}

/// Whether buckets with these replicas (`None`: missing) need nothing for
/// `requested` (or the default), so that the cluster need not be asked.
pub fn settled(current: &[Option<usize>], requested: Option<usize>) -> bool {
    let want = requested.unwrap_or(DEFAULT_REPLICAS);
    current.iter().all(|c| c.is_some_and(|c| c >= want))
}

/// What becomes of one bucket once the count is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Create(usize),
    Raise { from: usize, to: usize },
    Keep,
}

pub fn step(current: Option<usize>, replicas: usize) -> Step {
    match current {
        None => Step::Create(replicas),
        Some(from) if from < replicas => Step::Raise { from, to: replicas },
        Some(_) => Step::Keep,
    }
}

/// One bucket [`ensure`] looks after.
enum Target {
    Kv(Box<kv::Config>),
    Objects(Box<object_store::Config>),
    /// An app's state bucket: raised when it exists, never created here.
    Existing(String),
}

impl Target {
    fn stream(&self) -> String {
        match self {
            Target::Kv(cfg) => kv_stream(&cfg.bucket),
            Target::Objects(cfg) => objects_stream(&cfg.bucket),
            Target::Existing(stream) => stream.clone(),
        }
    }
}

/// Server side, before [`super::Buckets::open`]: decides the replicas
/// ([`decide`]), creates the missing buckets with them and raises those
/// with fewer (the apps' state buckets too). When every bucket already has
/// enough, the cluster is not probed: a server restarting while one NATS
/// node is down still starts. Returns the count decided (or, when nothing
/// was to do, the smallest the buckets have).
pub async fn ensure(
    js: &jetstream::Context,
    names: &Names,
    requested: Option<usize>,
) -> Result<usize, ReplicasError> {
    if let Some(n) = requested {
        decide(MAX_REPLICAS, Some(n))?;
    }
    let layout = Layout::new(names);
    let mut targets: Vec<Target> = (layout.kv().into_iter())
        .map(|c| Target::Kv(Box::new(c.clone())))
        .collect();
    targets.push(Target::Objects(Box::new(layout.artifacts)));
    targets.extend(app_state_streams(js, names).await?.map(Target::Existing));
    let mut current = Vec::with_capacity(targets.len());
    for t in &targets {
        current.push(stream_replicas(js, &t.stream()).await?);
    }
    if settled(&current, requested) {
        return Ok(current.iter().flatten().copied().min().unwrap_or(1));
    }
    let peers = peers(js, requested.unwrap_or(DEFAULT_REPLICAS)).await?;
    let replicas = decide(peers, requested)?;
    for (target, current) in targets.into_iter().zip(current) {
        apply(js, target, current, replicas).await?;
    }
    Ok(replicas)
}

async fn apply(
    js: &jetstream::Context,
    target: Target,
    current: Option<usize>,
    replicas: usize,
) -> Result<(), ReplicasError> {
    let name = target.stream();
    match (step(current, replicas), target) {
        (Step::Keep, _) => Ok(()),
        (Step::Create(n), Target::Kv(cfg)) => {
            open_kv(
                js,
                kv::Config {
                    num_replicas: n,
                    ..*cfg
                },
            )
            .await?;
            after_create(js, &name, n).await
        }
        (Step::Create(n), Target::Objects(cfg)) => {
            open_objects(
                js,
                object_store::Config {
                    num_replicas: n,
                    ..*cfg
                },
            )
            .await?;
            after_create(js, &name, n).await
        }
        // Gone since it was listed (the app was removed): nothing to keep.
        (Step::Create(_), Target::Existing(_)) => Ok(()),
        (Step::Raise { from, to }, _) => raise(js, &name, from, to).await,
    }
}

/// A host may have created the bucket (with one replica) in between.
async fn after_create(
    js: &jetstream::Context,
    stream: &str,
    replicas: usize,
) -> Result<(), ReplicasError> {
    match stream_replicas(js, stream).await? {
        Some(from) if from < replicas => raise(js, stream, from, replicas).await,
        _ => Ok(()),
    }
}

async fn raise(
    js: &jetstream::Context,
    stream: &str,
    from: usize,
    to: usize,
) -> Result<(), ReplicasError> {
    let failed = |e: &dyn std::fmt::Display| BucketError {
        bucket: stream.to_string(),
        message: format!("cannot raise its replicas from {from} to {to}: {e}"),
    };
    let info = js.get_stream(stream).await.map_err(|e| failed(&e))?;
    let config = stream::Config {
        num_replicas: to,
        ..info.cached_info().config.clone()
    };
    js.update_stream(config).await.map_err(|e| failed(&e))?;
    tracing::info!(%stream, from, to, "raised the replicas of a JetStream stream");
    Ok(())
}

/// The replicas of `stream`, `None` when it does not exist.
async fn stream_replicas(
    js: &jetstream::Context,
    stream: &str,
) -> Result<Option<usize>, BucketError> {
    match js.get_stream(stream).await {
        Ok(s) => Ok(Some(s.cached_info().config.num_replicas.max(1))),
        Err(e) => match e.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(j)
                if j.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                Ok(None)
            }
            _ => Err(BucketError {
                bucket: stream.to_string(),
                message: e.to_string(),
            }),
        },
    }
}

/// The streams of the apps' state buckets (`KV_atoll-<cluster>-kv-<app>`)
/// whose app the apps bucket knows (another cluster's names can share the
/// prefix).
async fn app_state_streams(
    js: &jetstream::Context,
    names: &Names,
) -> Result<impl Iterator<Item = String>, BucketError> {
    let prefix = kv_stream(&names.app_kv_bucket(""));
    let listed: Vec<String> = (js.stream_names().try_collect().await).map_err(|e| BucketError {
        bucket: names.apps_bucket(),
        message: format!("cannot list the JetStream streams: {e}"),
    })?;
    let apps = js.get_key_value(names.apps_bucket()).await.ok();
    let mut ours = Vec::new();
    for stream in listed {
        let Some(app) = stream.strip_prefix(&prefix) else {
            continue;
        };
        if let Some(apps) = &apps
            && matches!(apps.get(app).await, Ok(Some(_)))
        {
            ours.push(stream);
        }
    }
    Ok(ours.into_iter())
}

/// The replicas the server chose: those of the apps bucket (1 when it
/// cannot be read). Hosts create an app's state bucket with them.
pub async fn chosen(js: &jetstream::Context, names: &Names) -> usize {
    let stream = kv_stream(&names.apps_bucket());
    (stream_replicas(js, &stream).await.ok().flatten()).unwrap_or(1)
}

/// How many JetStream servers can hold a replica now, counted up to
/// `want`: the largest R ≤ `want` for which a throwaway in-memory stream
/// with R replicas can be placed (1 without asking).
pub async fn peers(js: &jetstream::Context, want: usize) -> Result<usize, ReplicasError> {
    for r in (2..=want.min(MAX_REPLICAS)).rev() {
        if can_place(js, r).await? {
            return Ok(r);
        }
    }
    Ok(1)
}

async fn can_place(js: &jetstream::Context, replicas: usize) -> Result<bool, ReplicasError> {
    let id = probe_id();
    let name = format!("ATOLL_PEERS_{id}");
    let probe = stream::Config {
        name: name.clone(),
        subjects: vec![format!("atoll.peers-probe.{id}")],
        storage: stream::StorageType::Memory,
        max_messages: 1,
        num_replicas: replicas,
        ..Default::default()
    };
    let created = js.create_stream(probe).await;
    let placed = match created {
        Ok(s) => s.cached_info().config.num_replicas >= replicas,
        Err(e) => {
            return match e.kind() {
                jetstream::context::CreateStreamErrorKind::JetStream(j)
                    if [
                        ErrorCode::CLUSTER_NO_PEERS,
                        ErrorCode::INSUFFICIENT_RESOURCES,
                        ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED,
                    ]
                    .contains(&j.error_code()) =>
                {
                    Ok(false)
                }
                _ => Err(ReplicasError::Nats(BucketError {
                    bucket: name,
                    message: format!("cannot ask JetStream how many servers it has: {e}"),
                })),
            };
        }
    };
    if let Err(e) = js.delete_stream(&name).await {
        tracing::warn!(stream = %name, error = %e, "cannot delete the peer probe stream; delete it by hand");
    }
    Ok(placed)
}

/// Unique enough among servers starting together: the process and the
/// clock's nanoseconds.
fn probe_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{nanos:x}", std::process::id())
}

#[cfg(test)]
mod tests;
