//! Desired state: the one writer of the apps bucket.
//!
//! Every change of an app is a new **revision** in the bucket, whose
//! history keeps the last 16: a deploy of a new file, a promotion of a
//! canary, a rollback (an earlier revision's spec deployed again as a new
//! revision, as `kubectl rollout undo` does, so the history only grows and
//! every change is a rolling update). Removing an app deletes its key; the
//! history stays, so a later deploy of the name counts on from it.
//!
//! What a promotion or a rollback makes of the current spec is decided by
//! plain functions ([`next`]); [`put`] writes every new revision, with
//! compare-and-set on the KV revision the current one was read at, so two
//! servers (or two users) changing one app at once cannot both win.

mod import;
mod next;
mod operate;
pub(crate) use operate::settle;

use crate::cas::{CasError, compare_and_set};
use crate::cluster::Cluster;
use crate::placement::{PortConflict, check_ports, free_ports};
use async_nats::jetstream::kv;
use atoll_sdk::nats::Versioned;
use atoll_sdk::protocol::{AppRecord, VERSION, endpoints_key, now_ms};
use atoll_sdk::spec::App;
use futures::StreamExt;
pub(crate) use import::{Decision, decide as decide_import};
use next::{Next, NextError, promoted, rolled_back};
use std::time::Duration;

/// Why desired state was not changed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RevisionError {
    #[error("no app named {app}")]
    NoApp { app: String },
    #[error(transparent)]
    Next(#[from] NextError),
    #[error(transparent)]
    Ports(#[from] PortConflict),
    #[error(transparent)]
    NoFreePort(#[from] crate::placement::free_ports::NoFreePort),
    /// The revision asks for what this server's policy refuses.
    #[error("revision {revision} is refused by this server's policy: {}", .errors.join("; "))]
    Policy { revision: u64, errors: Vec<String> },
    #[error("encoding: {source}")]
    Encode { source: serde_json::Error },
    /// A deploy lost the race against another change of the same app.
    #[error("app {app} was changed by another deploy at the same time; deploy again ({source})")]
    Raced { app: String, source: CasError },
    /// A promotion or rollback lost the race against another change.
    #[error("app {app} changed meanwhile, try again: {source}")]
    Changed { app: String, source: CasError },
    #[error("deleting desired state: {source}")]
    Delete { source: kv::DeleteError },
    #[error("reading app {app} (try again): {message}")]
    Current { app: String, message: String },
    #[error("reading the history of app {app} (try again): {message}")]
    History { app: String, message: String },
    /// JetStream did not take the write within [`PATIENCE`].
    #[error("NATS JetStream did not take the change of app {app} (try again): {source}")]
    Unavailable { app: String, source: CasError },
}

impl RevisionError {
    /// Whether the bucket could not be read or written (rather than the
    /// change being refused).
    pub(crate) fn is_unavailable(&self) -> bool {
        matches!(
            self,
            RevisionError::Encode { .. }
                | RevisionError::Delete { .. }
                | RevisionError::Unavailable { .. }
                | RevisionError::History { .. }
                | RevisionError::Current { .. }
        )
    }

    /// Whether the same change may succeed in a moment: the bucket did
    /// not answer (nothing was refused).
    fn is_transient(&self) -> bool {
        matches!(
            self,
            RevisionError::Current { .. }
                | RevisionError::Unavailable { .. }
                | RevisionError::History { .. }
        )
    }
}

/// How long a change of desired state waits out JetStream not answering:
/// a stream elects a new leader within a few seconds of a node's loss.
const PATIENCE: Duration = Duration::from_secs(15);

/// Runs `change` until it succeeds, is refused, or [`PATIENCE`] runs out
/// with JetStream still not answering (bounded backoff). A deploy also
/// tries again after a lost race, twice: what it read may have come from
/// a replica that was behind.
async fn patiently<T, F, Fut>(mut change: F) -> Result<T, RevisionError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RevisionError>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut pause = Duration::from_millis(100);
    let mut races = 0;
    loop {
        match change().await {
            Err(e) if e.is_transient() && tokio::time::Instant::now() + pause < deadline => {
                tracing::info!(error = %e, ?pause, "desired state not written yet; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(RevisionError::Raced { .. }) if races < 2 => races += 1,
            other => return other,
        }
    }
}

/// What a deploy stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deployed {
    pub revision: u64,
    /// The file matched the current revision: nothing was written.
    pub unchanged: bool,
}

/// Deploys `app` (parsed from `compose`, its components resolved) as the
/// app's next revision, unless it is the current one already. Refused
/// when it would publish a port another app publishes. Answers once this
/// server's mirror has the new revision (read-your-writes: the caller's
/// next GET sees it).
pub(crate) async fn deploy(
    cluster: &Cluster,
    app: App,
    compose: String,
    warnings: Vec<String>,
) -> Result<Deployed, RevisionError> {
    patiently(|| deploy_once(cluster, app.clone(), compose.clone(), warnings.clone())).await
}

async fn deploy_once(
    cluster: &Cluster,
    app: App,
    compose: String,
    warnings: Vec<String>,
) -> Result<Deployed, RevisionError> {
    // One read of the apps serves the port check and the addresses.
    let records = all_records(cluster);
    let name = app.name.clone();
    let (previous, expected) = read_current(cluster, &name).await?;
    let mut app = app;
    let taken = free_ports::taken_by_others(records.iter().map(|r| &r.spec), &name);
    settle(&mut app, previous.as_ref().map(|p| &p.spec), &taken)?;
    check_ports(&app, records.iter().map(|r| &r.spec))?;
    // A stopped app deployed again starts, as `docker compose up` does.
    if let Some(prev) = &previous
        && prev.spec == app
        && !prev.stopped
    {
        return Ok(Deployed {
            revision: prev.revision,
            unchanged: true,
        });
    }
    let revision = match &previous {
        Some(p) => p.revision + 1,
        None => last_revision(cluster, &name).await? + 1,
    };
    let previous_vips = previous
        .as_ref()
        .map(|p| p.vips.clone())
        .unwrap_or_default();
    let vips = allocated(&records, &app, &previous_vips);
    let record = AppRecord {
        v: VERSION,
        revision,
        spec: app,
        compose,
        deployed_at_ms: now_ms(),
        warnings,
        rollback_of: None,
        cause: Some("deploy".into()),
        importing_since_ms: None,
        vips,
        stopped: false,
    };
    let kv_revision = put(cluster, &name, &record, expected)
        .await
        .map_err(|e| e.into_error(&name, |app, source| RevisionError::Raced { app, source }))?;
    cluster
        .wait_for_mirror(|c| c.apps.get(&name).is_some_and(|v| v.revision >= kv_revision))
        .await;
    let msg = format!("app {name} revision {revision} deployed");
    cluster.publish_event("deploy", Some(&name), msg).await;
    report_collisions(cluster, &name).await;
    Ok(Deployed {
        revision,
        unchanged: false,
    })
}

/// Makes `service`'s canary its version (`atoll promote`); the new
/// revision.
pub(crate) async fn promote(
    cluster: &Cluster,
    app: &str,
    service: &str,
) -> Result<u64, RevisionError> {
    let current = current(cluster, app)?;
    let next = promoted(&current.value, service)?;
    let revision = write(cluster, app, &current, next).await?;
    wait_for_revision(cluster, app, revision).await;
    let msg = format!("app {app}: canary of {service} promoted (revision {revision})");
    cluster.publish_event("promote", Some(app), msg).await;
    Ok(revision)
}

/// Which operator change [`operate`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation<'a> {
    Scale { service: &'a str, replicas: u32 },
    Restart { service: Option<&'a str> },
    Stop,
    Start,
}

impl Operation<'_> {
    /// Its event kind (and command name).
    fn kind(self) -> &'static str {
        match self {
            Operation::Scale { .. } => "scale",
            Operation::Restart { .. } => "restart",
            Operation::Stop => "stop",
            Operation::Start => "start",
        }
    }
}

/// `atoll scale`, `restart`, `stop`, `start`: the current revision changed
/// as an operator asks (see `operate.rs`), written as the next one; its
/// number, or `None` when nothing would change.
pub(crate) async fn operate(
    cluster: &Cluster,
    app: &str,
    op: Operation<'_>,
) -> Result<Option<u64>, RevisionError> {
    let current = current(cluster, app)?;
    let now = &current.value;
    let next = match op {
        Operation::Scale { service, replicas } => operate::scaled(now, service, replicas)?,
        Operation::Restart { service } => Some(operate::restarted(now, service, now_ms())?),
        Operation::Stop => operate::stopped(now, true),
        Operation::Start => operate::stopped(now, false),
    };
    let Some(next) = next else {
        return Ok(None);
    };
    let cause = next.cause.clone();
    let revision = write(cluster, app, &current, next).await?;
    wait_for_revision(cluster, app, revision).await;
    let msg = format!("app {app} revision {revision}: {cause}");
    cluster.publish_event(op.kind(), Some(app), msg).await;
    Ok(Some(revision))
}

/// A revision written by a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RolledBack {
    /// The revision whose spec it restores.
    pub restored: u64,
    pub revision: u64,
}

/// `atoll rollback`: revision `to` (the one before the current when
/// `None`) of the app, or of `service` only, deployed again as a new
/// revision (see [`next::rolled_back`]).
pub(crate) async fn rollback(
    cluster: &Cluster,
    app: &str,
    service: Option<&str>,
    to: Option<u64>,
) -> Result<RolledBack, RevisionError> {
    let current = current(cluster, app)?;
    let revisions = history(cluster, app).await?;
    let next = rolled_back(&current.value, &revisions, service, to)?;
    // An old revision must not get past a policy made stricter since.
    let refused = cluster
        .policy
        .check(&atoll_sdk::spec::privilege::of_app(&next.spec));
    if !refused.is_empty() {
        let errors = refused.iter().map(ToString::to_string).collect();
        return Err(RevisionError::Policy {
            revision: next.restored,
            errors,
        });
    }
    let (restored, cause) = (next.restored, next.cause.clone());
    let revision = write(cluster, app, &current, next).await?;
    wait_for_revision(cluster, app, revision).await;
    let msg = format!("app {app} revision {revision}: {cause}");
    cluster.publish_event("rollback", Some(app), msg).await;
    Ok(RolledBack { restored, revision })
}

/// A failed update's automatic rollback: to the revision before, unless
/// the current revision is itself a rollback (that one pauses instead).
/// The revision restored, if a rollback was made.
pub(crate) async fn restore_previous(
    cluster: &Cluster,
    app: &str,
    why: &str,
) -> Result<Option<u64>, RevisionError> {
    let Some(current) = cluster.apps.get(app) else {
        return Ok(None);
    };
    if current.value.rollback_of.is_some() {
        return Ok(None);
    }
    let revisions = history(cluster, app).await?;
    let mut next = rolled_back(&current.value, &revisions, None, None)?;
    next.cause = format!(
        "automatic rollback of revision {}: {why}",
        current.value.revision
    );
    let restored = next.restored;
    write(cluster, app, &current, next).await?;
    Ok(Some(restored))
}

/// Removes the app (its history stays, so a later deploy of the same name
/// keeps counting revisions up). Its autoscaling decisions go with it: a
/// new app of the same name starts from its file's counts.
pub(crate) async fn remove(cluster: &Cluster, app: &str) -> Result<(), RevisionError> {
    current(cluster, app)?;
    (cluster.buckets.apps.delete(app).await).map_err(|source| RevisionError::Delete { source })?;
    cluster.wait_for_mirror(|c| c.apps.get(app).is_none()).await;
    // Its running instances keep the values they were given.
    if let Err(e) = cluster.vault.remove_app(app).await {
        tracing::warn!(%app, error = %e, "cannot remove the app's secrets");
    }
    let prefix = endpoints_key(app, "");
    for key in (cluster.scale.all().into_keys()).filter(|k| k.starts_with(&prefix)) {
        // A leftover record is deleted by the autoscaler's next tick.
        let _ = cluster.buckets.scale.delete(&key).await;
    }
    let msg = format!("app {app} removed");
    cluster.publish_event("remove", Some(app), msg).await;
    Ok(())
}

/// The app's current revision as the stream's leader has it (not the
/// mirror, nor a replica that may be behind: a deploy or an import decides
/// on it), with the KV revision a write compares against.
pub(crate) async fn read_current(
    cluster: &Cluster,
    app: &str,
) -> Result<(Option<AppRecord>, Option<u64>), RevisionError> {
    let entry = leader_entry(cluster, app).await?;
    let record = (entry.as_ref()).and_then(|(value, _)| serde_json::from_slice(value).ok());
    Ok((record, entry.map(|(_, revision)| revision)))
}

/// Writes the revisions an import decided on for `app`
/// ([`decide_import`]), in order, each compare-and-set on the one before
/// from KV revision `expected`: so they land in the key's history (what
/// `atoll history` and `atoll rollback --to` read), and a deploy meanwhile
/// makes the import fail rather than be overwritten.
pub(crate) async fn write_imported(
    cluster: &Cluster,
    app: &str,
    records: &[AppRecord],
    mut expected: Option<u64>,
) -> Result<(), RevisionError> {
    for record in records {
        let kv_revision = put(cluster, app, record, expected)
            .await
            .map_err(|e| e.into_error(app, |app, source| RevisionError::Raced { app, source }))?;
        expected = Some(kv_revision);
    }
    if let (Some(last), Some(written)) = (records.last(), expected) {
        cluster
            .wait_for_mirror(|c| c.apps.get(app).is_some_and(|v| v.revision >= written))
            .await;
        let msg = format!(
            "app {app} imported: {} revision(s), revision {} deployed",
            records.len(),
            last.revision
        );
        cluster.publish_event("import", Some(app), msg).await;
    }
    Ok(())
}

/// Every revision of `app` still in the bucket's history, oldest first.
pub(crate) async fn history(cluster: &Cluster, app: &str) -> Result<Vec<AppRecord>, RevisionError> {
    patiently(|| history_once(cluster, app)).await
}

/// The app's history read once: whole, or an error (never a part of it:
/// a rollback or a new revision number would be decided on it).
async fn history_once(cluster: &Cluster, app: &str) -> Result<Vec<AppRecord>, RevisionError> {
    let unavailable = |message: String| RevisionError::History {
        app: app.to_string(),
        message,
    };
    let mut entries =
        (cluster.buckets.apps.history(app).await).map_err(|e| unavailable(e.to_string()))?;
    let mut out: Vec<AppRecord> = Vec::new();
    loop {
        let entry = match tokio::time::timeout(Duration::from_secs(2), entries.next()).await {
            Ok(None) => break,
            Ok(Some(Ok(entry))) => entry,
            Ok(Some(Err(e))) => return Err(unavailable(e.to_string())),
            Err(_) => return Err(unavailable("no answer within 2s".to_string())),
        };
        if let Ok(r) = serde_json::from_slice::<AppRecord>(&entry.value) {
            out.retain(|o| o.revision != r.revision);
            out.push(r);
        }
        if entry.delta == 0 {
            break;
        }
    }
    out.sort_by_key(|r| r.revision);
    Ok(out)
}

/// The app's key — its value and KV revision, `None` when it has none or
/// was deleted — as the stream's leader has it. (A direct get may be
/// answered by a replica that is behind; a compare-and-set decided on
/// what it said would fail, again and again.)
async fn leader_entry(
    cluster: &Cluster,
    app: &str,
) -> Result<Option<(bytes::Bytes, u64)>, RevisionError> {
    // A bucket deleted under the cluster is made again by the deploy or
    // import that restores it; the guard (`lost_state`, judged on every
    // server) says when, so other reads pay nothing for it.
    if cluster.telemetry.state_lost()
        && let Err(e) = cluster.buckets.ensure_apps(cluster.replicas).await
    {
        tracing::warn!(error = %e, "cannot make the apps bucket again");
    }
    match atoll_sdk::nats::leader_entry(&cluster.buckets.apps, app).await {
        Ok(entry) => Ok(entry.map(|e| (e.value, e.revision))),
        Err(e) => Err(RevisionError::Current {
            app: app.to_string(),
            message: e.to_string(),
        }),
    }
}

/// The revision of an app's last deploy still in history (0 for a new
/// name), so an app removed and deployed again keeps counting up and no
/// leftover status of its old life passes for the new one.
async fn last_revision(cluster: &Cluster, app: &str) -> Result<u64, RevisionError> {
    Ok((history_once(cluster, app).await?.last()).map_or(0, |r| r.revision))
}

/// The app's current revision, as this server's mirror has it.
pub(crate) fn current(cluster: &Cluster, app: &str) -> Result<Versioned<AppRecord>, RevisionError> {
    (cluster.apps.get(app)).ok_or_else(|| RevisionError::NoApp {
        app: app.to_string(),
    })
}

/// Writes `next` as the revision after `current`, unless the app changed
/// meanwhile; its number.
async fn write(
    cluster: &Cluster,
    app: &str,
    current: &Versioned<AppRecord>,
    next: Next,
) -> Result<u64, RevisionError> {
    let now = &current.value;
    let records = all_records(cluster);
    // An earlier revision's ports (a rollback) may have been taken since.
    check_ports(&next.spec, records.iter().map(|r| &r.spec))?;
    let vips = allocated(&records, &next.spec, &now.vips);
    let record = AppRecord {
        v: now.v,
        revision: now.revision + 1,
        spec: next.spec,
        compose: next.compose,
        deployed_at_ms: now_ms(),
        warnings: Vec::new(),
        rollback_of: next.rollback_of,
        cause: Some(next.cause),
        importing_since_ms: None,
        vips,
        stopped: next.stopped,
    };
    patiently(|| async {
        put(cluster, app, &record, Some(current.revision))
            .await
            .map_err(|e| e.into_error(app, |app, source| RevisionError::Changed { app, source }))
    })
    .await?;
    Ok(record.revision)
}

/// Service addresses for `app`, keeping `previous` where no other app
/// holds them (see `vips.rs`).
fn allocated(
    records: &[AppRecord],
    app: &App,
    previous: &std::collections::BTreeMap<String, std::net::Ipv4Addr>,
) -> std::collections::BTreeMap<String, std::net::Ipv4Addr> {
    let taken = crate::vips::taken_by_others(records.iter(), &app.name);
    crate::vips::allocate(app, previous, &taken)
}

/// Every app's current revision, as this server's mirror has it.
fn all_records(cluster: &Cluster) -> Vec<AppRecord> {
    (cluster.apps.all().into_values())
        .map(|v| v.value)
        .collect()
}

/// Two deploys racing on different servers may allocate one address
/// twice; the one that finds it so says so (deploying either app again
/// moves its service).
async fn report_collisions(cluster: &Cluster, app: &str) {
    let records = all_records(cluster);
    let prefix = format!("{app}/");
    for (vip, services) in crate::vips::collisions(records.iter()) {
        if services.iter().any(|s| s.starts_with(&prefix)) {
            let msg = format!(
                "service address {vip} is shared by {}: deploy one of these apps again to move it",
                services.join(" and ")
            );
            tracing::warn!(%vip, ?services, "service addresses collide");
            cluster
                .publish_event("address-collision", Some(app), msg)
                .await;
        }
    }
}

/// Why [`put`] failed.
enum PutError {
    Encode(serde_json::Error),
    Cas(CasError),
}

impl PutError {
    /// The [`RevisionError`] of a write to `app`; `raced` names a lost race.
    fn into_error(self, app: &str, raced: fn(String, CasError) -> RevisionError) -> RevisionError {
        match self {
            PutError::Encode(source) => RevisionError::Encode { source },
            PutError::Cas(source) if source.is_conflict() => raced(app.to_string(), source),
            PutError::Cas(source) => RevisionError::Unavailable {
                app: app.to_string(),
                source,
            },
        }
    }
}

/// The one write of the apps bucket: `record` as the value of `app`, if
/// its key is still at KV revision `expected` (`None`: the app has no
/// value).
async fn put(
    cluster: &Cluster,
    app: &str,
    record: &AppRecord,
    expected: Option<u64>,
) -> Result<u64, PutError> {
    let bytes = serde_json::to_vec(record).map_err(PutError::Encode)?;
    let kv = &cluster.buckets.apps;
    (compare_and_set(kv, app, bytes.into(), expected).await).map_err(PutError::Cas)
}

/// Until the mirror shows `revision` of the app (bounded), so that what the
/// caller reads next already knows it.
async fn wait_for_revision(cluster: &Cluster, app: &str, revision: u64) {
    cluster
        .wait_for_mirror(|c| (c.apps.get(app)).is_some_and(|r| r.value.revision >= revision))
        .await;
}
