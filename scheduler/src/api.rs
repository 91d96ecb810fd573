//! The HTTP API (`/v1/...`): thin handlers over the cluster view and the
//! desired-state store. Every error answers with an [`ErrorBody`] that says
//! what is wrong.

mod error;
mod load;
mod logs;

use crate::cluster::Cluster;
use crate::views;
use atoll_sdk::api::{DeployRequest, DeployResponse, ErrorBody};
use atoll_sdk::digest::{self, WasmKind};
use atoll_sdk::protocol::{AppRecord, RemovedHost, VERSION, artifact_object_name, now_ms};
use atoll_sdk::spec::{self, App, Artifact};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use error::{ApiError, ApiResult};
use futures::StreamExt;
use std::sync::Arc;

/// Largest component upload.
pub const MAX_ARTIFACT_BYTES: usize = 128 * 1024 * 1024;

pub fn router(cluster: Arc<Cluster>) -> Router {
    Router::new()
        .route("/v1/health", get(|| async { "ok" }))
        .route("/v1/apps", get(list_apps).post(deploy))
        .route("/v1/apps/{name}", get(get_app).delete(delete_app))
        .route("/v1/apps/{name}/history", get(app_history))
        .route("/v1/apps/{name}/rollback", post(rollback))
        .route("/v1/apps/{name}/promote/{service}", post(promote))
        .route("/v1/instances", get(list_instances))
        .route("/v1/hosts", get(list_hosts))
        .route("/v1/hosts/{name}", delete(remove_host))
        .route("/v1/events", get(events))
        .route("/v1/top", get(load::top))
        .route("/metrics", get(load::metrics))
        .route("/v1/logs/{app}", get(logs::app_logs))
        .route("/v1/logs/{app}/{service}", get(logs::service_logs))
        .route(
            "/v1/artifacts/{digest}",
            put(put_artifact).head(head_artifact),
        )
        .layer(DefaultBodyLimit::max(MAX_ARTIFACT_BYTES))
        .with_state(cluster)
}

async fn list_apps(State(c): State<Arc<Cluster>>) -> Json<Vec<atoll_sdk::api::AppView>> {
    let snap = c.snapshot();
    let statuses = c.statuses.all();
    Json(
        snap.apps
            .iter()
            .map(|a| views::app(&snap, a, statuses.get(&a.spec.name).map(|s| &s.value)))
            .collect(),
    )
}

async fn get_app(
    State(c): State<Arc<Cluster>>,
    Path(name): Path<String>,
) -> ApiResult<Json<atoll_sdk::api::AppView>> {
    let snap = c.snapshot();
    let record = snap
        .apps
        .iter()
        .find(|a| a.spec.name == name)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no app named {name}")))?;
    let status = c.statuses.get(&name).map(|s| s.value);
    Ok(Json(views::app(&snap, record, status.as_ref())))
}

#[derive(serde::Deserialize)]
struct InstanceQuery {
    app: Option<String>,
}

async fn list_instances(
    State(c): State<Arc<Cluster>>,
    Query(q): Query<InstanceQuery>,
) -> Json<Vec<atoll_sdk::api::InstanceView>> {
    Json(views::instances(&c.snapshot(), q.app.as_deref()))
}

async fn list_hosts(State(c): State<Arc<Cluster>>) -> Json<Vec<atoll_sdk::api::HostView>> {
    let snap = c.snapshot();
    let observed = c.observed();
    Json(views::hosts(&snap, |h| observed.last_seen_ms(h)))
}

/// The app's revisions still kept, oldest first.
async fn app_history(
    State(c): State<Arc<Cluster>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<atoll_sdk::api::RevisionView>>> {
    let Some(current) = c.apps.get(&name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no app named {name}"),
        ));
    };
    let revisions = crate::revisions::history(&c, &name).await;
    Ok(Json(
        revisions
            .iter()
            .map(|r| atoll_sdk::api::RevisionView {
                revision: r.revision,
                deployed_at_ms: r.deployed_at_ms,
                cause: r.cause.clone(),
                rollback_of: r.rollback_of,
                services: (r.spec.services.values())
                    .map(|s| (s.name.clone(), views::artifact_text(&s.artifact)))
                    .collect(),
                current: r.revision == current.value.revision,
            })
            .collect(),
    ))
}

/// Deploys an earlier revision (of the app, or of one service) again, as a
/// new revision: a rolling update back.
async fn rollback(
    State(c): State<Arc<Cluster>>,
    Path(name): Path<String>,
    Json(req): Json<atoll_sdk::api::RollbackRequest>,
) -> ApiResult<Json<atoll_sdk::api::RollbackResponse>> {
    if c.apps.get(&name).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no app named {name}"),
        ));
    }
    let done = crate::revisions::rollback(&c, &name, req.service.as_deref(), req.to)
        .await
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
    let (restored, revision) = (done.restored, done.revision);
    wait_for_revision(&c, &name, revision).await;
    let msg = format!("app {name} revision {revision}: {}", done.cause);
    c.publish_event("rollback", Some(&name), msg).await;
    Ok(Json(atoll_sdk::api::RollbackResponse {
        revision,
        restored,
    }))
}

/// Makes a service's canary its version: a new revision, rolled out.
async fn promote(
    State(c): State<Arc<Cluster>>,
    Path((name, service)): Path<(String, String)>,
) -> ApiResult<Json<DeployResponse>> {
    let revision = crate::revisions::promote(&c, &name, &service)
        .await
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
    wait_for_revision(&c, &name, revision).await;
    let msg = format!("app {name}: canary of {service} promoted (revision {revision})");
    c.publish_event("promote", Some(&name), msg).await;
    Ok(Json(DeployResponse {
        name,
        revision,
        unchanged: false,
        warnings: Vec::new(),
    }))
}

/// Until the mirror shows `revision` of the app (bounded), so that what the
/// caller reads next already knows it.
async fn wait_for_revision(c: &Cluster, name: &str, revision: u64) {
    c.wait_for_mirror(|c| {
        c.apps
            .get(name)
            .is_some_and(|r| r.value.revision >= revision)
    })
    .await;
}

/// Retires a host that is down, so that its instances — those with named
/// volumes too, whose data stays behind — are placed elsewhere. A host
/// that is up is refused: stop it first.
async fn remove_host(
    State(c): State<Arc<Cluster>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let snap = c.snapshot();
    let Some(host) = snap.host(&name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no host named {name}"),
        ));
    };
    if host.is_ready() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("host {name} is up: stop it first (its instances would keep running there)"),
        ));
    }
    let record = RemovedHost {
        name: name.clone(),
        removed_at_ms: now_ms(),
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| ApiError::internal("encoding", e))?;
    c.buckets
        .removed_hosts
        .put(&name, bytes.into())
        .await
        .map_err(|e| ApiError::internal("recording the removal", e))?;
    c.wait_for_mirror(|c| c.removed_hosts.get(&name).is_some())
        .await;
    // The controller re-places what ran there.
    c.observed_changed.notify_one();
    let moved = snap.assignments.get(&name).map_or(0, |a| a.instances.len());
    c.publish_event(
        "host-removed",
        None,
        format!("host {name} removed; {moved} instance(s) to place elsewhere"),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn deploy(
    State(c): State<Arc<Cluster>>,
    Json(req): Json<DeployRequest>,
) -> ApiResult<Json<DeployResponse>> {
    let parsed = spec::parse(&req.compose, &req.default_name).map_err(|errs| {
        ApiError(
            StatusCode::BAD_REQUEST,
            ErrorBody {
                error: "invalid Compose file".into(),
                details: errs.0.iter().map(|e| e.to_string()).collect(),
            },
        )
    })?;
    let mut app = parsed.app;
    resolve_components(&c, &mut app, &req).await?;
    check_ports(&c, &app)?;
    let name = app.name.clone();
    let current = c
        .buckets
        .apps
        .entry(&name)
        .await
        .map_err(|e| ApiError::internal("reading desired state", e))?;
    let current = current.filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put);
    let previous: Option<AppRecord> = current
        .as_ref()
        .and_then(|e| serde_json::from_slice(&e.value).ok());
    if let Some(prev) = &previous
        && prev.spec == app
    {
        return Ok(Json(DeployResponse {
            name,
            revision: prev.revision,
            unchanged: true,
            warnings: parsed.warnings,
        }));
    }
    let record = AppRecord {
        v: VERSION,
        revision: match &previous {
            Some(p) => p.revision + 1,
            None => last_revision(&c, &name).await + 1,
        },
        spec: app,
        compose: req.compose,
        deployed_at_ms: now_ms(),
        warnings: parsed.warnings.clone(),
        rollback_of: None,
        cause: Some("deploy".into()),
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| ApiError::internal("encoding", e))?;
    let written: Result<u64, String> = match &current {
        Some(e) => c
            .buckets
            .apps
            .update(&name, bytes.into(), e.revision)
            .await
            .map_err(|e| e.to_string()),
        None => c
            .buckets
            .apps
            .create(&name, bytes.into())
            .await
            .map_err(|e| e.to_string()),
    };
    let kv_revision = written.map_err(|e| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "app {name} was changed by another deploy at the same time; deploy again ({e})"
            ),
        )
    })?;
    // Read-your-writes: answer once this server's mirror has the new
    // revision, so the client's next GET sees it.
    c.wait_for_mirror(|c| c.apps.get(&name).is_some_and(|v| v.revision >= kv_revision))
        .await;
    c.publish_event(
        "deploy",
        Some(&name),
        format!("app {name} revision {} deployed", record.revision),
    )
    .await;
    Ok(Json(DeployResponse {
        name,
        revision: record.revision,
        unchanged: false,
        warnings: parsed.warnings,
    }))
}

/// Replaces each local component path with the digest the CLI uploaded.
async fn resolve_components(c: &Cluster, app: &mut App, req: &DeployRequest) -> ApiResult<()> {
    for svc in app.services.values_mut() {
        let name = svc.name.clone();
        let main = (
            &mut svc.artifact,
            format!("services.{name}.x-atoll.component"),
        );
        let canary = (svc.canary.as_mut()).map(|k| {
            let at = format!("services.{name}.x-atoll.canary.component");
            (&mut k.artifact, at)
        });
        for (artifact, at) in std::iter::once(main).chain(canary) {
            resolve_component(c, artifact, &at, req).await?;
        }
    }
    Ok(())
}

/// A local component (uploaded with the deploy) → its stored digest.
async fn resolve_component(
    c: &Cluster,
    artifact: &mut Artifact,
    at: &str,
    req: &DeployRequest,
) -> ApiResult<()> {
    let Artifact::Component(path) = &*artifact else {
        return Ok(());
    };
    let digest = req.artifacts.get(path).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{at}: {path} was not uploaded with the deploy (use `atoll deploy -f FILE`)"),
        )
    })?;
    let object = artifact_object_name(digest);
    if c.buckets.artifacts.info(&object).await.is_err() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "{at}: artifact {digest} for {path} is not in the artifact store; upload it first"
            ),
        ));
    }
    *artifact = Artifact::Stored(digest.clone());
    Ok(())
}

/// A published port belongs to one service in the whole cluster.
fn check_ports(c: &Cluster, app: &App) -> ApiResult<()> {
    for other in c.apps.all().into_values().map(|v| v.value) {
        if other.spec.name == app.name {
            continue;
        }
        for theirs in other.spec.services.values() {
            for mine in app.services.values() {
                for p in &mine.ports {
                    if theirs.ports.iter().any(|q| q.published == p.published) {
                        return Err(ApiError::new(
                            StatusCode::CONFLICT,
                            format!(
                                "services.{}.ports: port {} is already published by app {} (service {})",
                                mine.name, p.published, other.spec.name, theirs.name
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

async fn delete_app(
    State(c): State<Arc<Cluster>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if c.apps.get(&name).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no app named {name}"),
        ));
    }
    c.buckets
        .apps
        .delete(&name)
        .await
        .map_err(|e| ApiError::internal("deleting desired state", e))?;
    c.wait_for_mirror(|c| c.apps.get(&name).is_none()).await;
    // Its autoscaling decisions go with it: a new app of the same name
    // starts from its file's counts.
    let prefix = atoll_sdk::protocol::endpoints_key(&name, "");
    for key in c.scale.all().into_keys().filter(|k| k.starts_with(&prefix)) {
        let _ = c.buckets.scale.delete(&key).await;
    }
    c.publish_event("remove", Some(&name), format!("app {name} removed"))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn put_artifact(
    State(c): State<Arc<Cluster>>,
    Path(claimed): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    if !digest::is_valid(&claimed) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{claimed} is not a digest (expected sha256:<64 hex digits>)"),
        ));
    }
    let actual = digest::sha256(&body);
    if actual != claimed {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("upload does not match its digest: claimed {claimed}, got {actual}"),
        ));
    }
    match digest::wasm_kind(&body) {
        WasmKind::Component => {}
        WasmKind::CoreModule => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "this .wasm is a core module, not a component: build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)",
            ));
        }
        WasmKind::NotWasm => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "this file is not WebAssembly",
            ));
        }
    }
    let name = artifact_object_name(&claimed);
    if c.buckets.artifacts.info(&name).await.is_ok() {
        return Ok(StatusCode::OK);
    }
    let mut reader = std::io::Cursor::new(body.to_vec());
    c.buckets
        .artifacts
        .put(name.as_str(), &mut reader)
        .await
        .map_err(|e| ApiError::internal("storing the artifact", e))?;
    Ok(StatusCode::CREATED)
}

async fn head_artifact(State(c): State<Arc<Cluster>>, Path(d): Path<String>) -> StatusCode {
    match c.buckets.artifacts.info(artifact_object_name(&d)).await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::NOT_FOUND,
    }
}

/// Newline-delimited JSON events, as they happen.
async fn events(State(c): State<Arc<Cluster>>) -> ApiResult<Response> {
    let sub = c
        .buckets
        .js
        .client()
        .subscribe(c.buckets.names.events())
        .await
        .map_err(|e| ApiError::internal("subscribing to events", e))?;
    let stream = sub.map(|m| {
        let mut line = m.payload.to_vec();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal("events", e))
}

/// The revision of an app's last deploy still in history (0 for a new
/// name), so an app removed and deployed again keeps counting up and no
/// leftover status of its old life passes for the new one.
async fn last_revision(c: &Cluster, name: &str) -> u64 {
    let Ok(mut history) = c.buckets.apps.history(name).await else {
        return 0;
    };
    let mut last = 0;
    while let Ok(Some(Ok(entry))) =
        tokio::time::timeout(std::time::Duration::from_secs(2), history.next()).await
    {
        if let Ok(r) = serde_json::from_slice::<AppRecord>(&entry.value) {
            last = last.max(r.revision);
        }
        if entry.delta == 0 {
            break;
        }
    }
    last
}
