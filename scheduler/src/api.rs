//! The HTTP API (`/v1/...`): thin handlers that parse the request, call
//! the cluster view or a library module ([`crate::revisions`] for desired
//! state, [`crate::backup`] for export and import, [`crate::artifacts`],
//! [`crate::host_removal`]) and answer. Every
//! error answers with an [`atoll_sdk::api::ErrorBody`] that says what is
//! wrong.

mod authn;
mod error;
mod exec;
mod exec_session;
mod join;
mod load;
mod logs;
mod operate;
mod tokens;

pub(crate) use authn::{Auth, Joining};

use crate::auth::Caller;
use crate::cluster::Cluster;
use crate::placement::free_ports;
use crate::{artifacts, backup, host_removal, revisions, views};
use atoll_sdk::api::{
    AppView, DeployRequest, DeployResponse, HostView, InstanceView, RevisionView, RollbackRequest,
    RollbackResponse,
};
use atoll_sdk::spec;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use error::{ApiError, ApiResult};
use futures::StreamExt;
use std::sync::Arc;

/// Largest component upload.
const MAX_ARTIFACT_BYTES: usize = 128 * 1024 * 1024;
/// Largest JSON request (a deploy carries its Compose text; an import its
/// export file, which may hold many revisions: that route has the
/// artifact's limit).
const MAX_JSON_BYTES: usize = 1024 * 1024;
/// Largest deploy: its Compose text with the values of its secrets and
/// configs, files shipped from the project folder included (10 MiB, in
/// base64).
const MAX_DEPLOY_BYTES: usize = 16 * 1024 * 1024;

/// Every route, behind [`authn::authenticate`] (which lets the health
/// check through).
pub(crate) fn router(cluster: Arc<Cluster>, auth: Arc<Auth>) -> Router {
    let tokens = Router::new()
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{id}", delete(tokens::revoke))
        .route("/v1/join", post(join::join))
        .layer(Extension(cluster.clone()))
        .with_state(auth.clone());
    Router::new()
        .route("/v1/health", get(|| async { "ok" }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/version", get(version))
        .route(
            "/v1/apps",
            get(list_apps)
                .post(deploy)
                .layer(DefaultBodyLimit::max(MAX_DEPLOY_BYTES)),
        )
        .route("/v1/apps/{name}", get(get_app).delete(delete_app))
        .route("/v1/apps/{name}/history", get(app_history))
        .route("/v1/apps/{name}/spec", get(get_app_spec))
        .route("/v1/apps/{name}/rollback", post(rollback))
        .route("/v1/apps/{name}/scale", post(operate::scale))
        .route("/v1/apps/{name}/restart", post(operate::restart))
        .route("/v1/apps/{name}/stop", post(operate::stop))
        .route("/v1/apps/{name}/start", post(operate::start))
        .route("/v1/apps/{name}/promote/{service}", post(promote))
        .route("/v1/export", get(export))
        .route(
            "/v1/import",
            post(import).layer(DefaultBodyLimit::max(MAX_ARTIFACT_BYTES)),
        )
        .route("/v1/instances", get(list_instances))
        .route(
            "/v1/instances/{id}/exec",
            post(exec::exec).get(exec_session::exec_session),
        )
        .route("/v1/hosts", get(list_hosts))
        .route("/v1/servers", get(list_servers))
        .route("/v1/hosts/{name}", delete(remove_host))
        .route("/v1/hosts/{name}/availability", put(set_availability))
        .route("/v1/events", get(events))
        .route("/v1/top", get(load::top))
        .route("/metrics", get(load::metrics))
        .route("/v1/logs/{app}", get(logs::app_logs))
        .route("/v1/logs/{app}/{service}", get(logs::service_logs))
        .route(
            "/v1/artifacts/{digest}",
            put(put_artifact)
                .layer(DefaultBodyLimit::max(MAX_ARTIFACT_BYTES))
                .head(head_artifact),
        )
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .layer(Extension(auth.clone()))
        .with_state(cluster)
        .merge(tokens)
        .route_layer(axum::middleware::from_fn_with_state(
            auth,
            authn::authenticate,
        ))
}

type Shared = State<Arc<Cluster>>;

async fn version() -> Json<atoll_sdk::api::VersionView> {
    Json(atoll_sdk::api::VersionView {
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// Every app the caller may see.
async fn list_apps(State(c): Shared, Extension(caller): Extension<Caller>) -> Json<Vec<AppView>> {
    let snap = c.snapshot();
    let statuses = c.statuses.all();
    let status = |name: &str| statuses.get(name).map(|s| &s.value);
    Json(
        (snap.apps.iter())
            .filter(|a| caller.may_touch(&a.spec.name))
            .map(|a| views::app(&snap, a, status(&a.spec.name)))
            .collect(),
    )
}

async fn get_app(State(c): Shared, Path(name): Path<String>) -> ApiResult<Json<AppView>> {
    let snap = c.snapshot();
    let record = snap.app(&name).ok_or_else(|| ApiError::no_app(&name))?;
    let status = c.statuses.get(&name).map(|s| s.value);
    Ok(Json(views::app(&snap, record, status.as_ref())))
}

/// The app's current revision as stored: its normalised spec (secrets and
/// configs as digests only) and Compose text, for `atoll inspect`.
async fn get_app_spec(
    State(c): Shared,
    Path(name): Path<String>,
) -> ApiResult<Json<atoll_sdk::protocol::AppRecord>> {
    let snap = c.snapshot();
    let record = snap.app(&name).ok_or_else(|| ApiError::no_app(&name))?;
    Ok(Json(record.clone()))
}

#[derive(serde::Deserialize)]
struct InstanceQuery {
    app: Option<String>,
}

/// The instances of an app (or all), of the apps the caller may see.
async fn list_instances(
    State(c): Shared,
    Extension(caller): Extension<Caller>,
    Query(q): Query<InstanceQuery>,
) -> ApiResult<Json<Vec<InstanceView>>> {
    let app = match (q.app, caller.app) {
        (Some(asked), Some(limit)) if asked != limit => {
            return Err(forbidden_app(&caller.id, &limit, &asked));
        }
        (asked, limit) => asked.or(limit),
    };
    Ok(Json(views::instances(&c.snapshot(), app.as_deref())))
}

fn forbidden_app(token: &str, limit: &str, app: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!("token {token} is limited to app {limit}, not {app}"),
    )
}

async fn list_hosts(State(c): Shared) -> Json<Vec<HostView>> {
    let snap = c.snapshot();
    let observed = c.observed();
    Json(views::hosts(&snap, |h| observed.last_seen_ms(h)))
}

async fn list_servers(State(c): Shared) -> Json<Vec<atoll_sdk::api::ServerView>> {
    Json(crate::servers::list(&c.buckets.leader).await)
}

/// The app's revisions still kept, oldest first.
async fn app_history(
    State(c): Shared,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<RevisionView>>> {
    let current = revisions::current(&c, &name)?;
    let kept = revisions::history(&c, &name).await?;
    Ok(Json(views::revisions(&kept, current.value.revision)))
}

/// Deploys an earlier revision (of the app, or of one service) again, as a
/// new revision: a rolling update back.
async fn rollback(
    State(c): Shared,
    Path(name): Path<String>,
    Json(req): Json<RollbackRequest>,
) -> ApiResult<Json<RollbackResponse>> {
    let done = revisions::rollback(&c, &name, req.service.as_deref(), req.to).await?;
    Ok(Json(RollbackResponse {
        revision: done.revision,
        restored: done.restored,
    }))
}

/// Makes a service's canary its version: a new revision, rolled out.
async fn promote(
    State(c): Shared,
    Path((name, service)): Path<(String, String)>,
) -> ApiResult<Json<DeployResponse>> {
    let revision = revisions::promote(&c, &name, &service).await?;
    Ok(Json(DeployResponse {
        name,
        revision,
        unchanged: false,
        warnings: Vec::new(),
    }))
}

/// The cluster's desired state, for `atoll import` into this cluster or
/// a new one.
async fn export(State(c): Shared) -> ApiResult<Json<atoll_sdk::export::ExportFile>> {
    Ok(Json(backup::export(&c).await?))
}

#[derive(serde::Deserialize)]
struct ImportQuery {
    #[serde(default)]
    force: bool,
}

/// Restores an export file: the body as sent, checked here so that every
/// error names what is wrong (see [`backup::import`]).
async fn import(
    State(c): Shared,
    Query(q): Query<ImportQuery>,
    body: Bytes,
) -> ApiResult<Json<atoll_sdk::api::ImportResponse>> {
    Ok(Json(backup::import(&c, &body, q.force).await?))
}

/// Retires a host that is down, so that its instances are placed
/// elsewhere (see [`host_removal`]).
async fn remove_host(
    State(c): Shared,
    Extension(auth): Extension<Arc<Auth>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    host_removal::remove_host(&c, &name).await?;
    // Its name may join again (its old NATS user stays valid until the
    // account revokes it: see docs/security.md).
    if let Auth::Tokens {
        joining: Some(j), ..
    } = auth.as_ref()
    {
        (j.joined.purge(&name).await)
            .map_err(|e| ApiError::internal("cannot forget the host's join", e))?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/hosts/{name}/availability` `{"availability": "drain"}`:
/// cordon, drain or uncordon a host (admin).
async fn set_availability(
    State(c): Shared,
    Path(name): Path<String>,
    Json(req): Json<atoll_sdk::api::AvailabilityRequest>,
) -> ApiResult<Json<atoll_sdk::api::AvailabilityResponse>> {
    let found = crate::host_availability::set(&c, &name, &req).await?;
    Ok(Json(atoll_sdk::api::AvailabilityResponse {
        host: name,
        availability: req.availability,
        instances: found.instances as u32,
        volume_services: found.volume_services,
    }))
}

/// Parses and checks the Compose file, stores its components' digests in
/// place of their paths, and stores it as the app's next revision.
/// With `dry_run`, answers the [`atoll_sdk::api::DeployPlan`] instead and
/// stores nothing.
async fn deploy(
    State(c): Shared,
    Extension(caller): Extension<Caller>,
    Json(req): Json<DeployRequest>,
) -> ApiResult<Response> {
    if req.compose.len() > MAX_JSON_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the Compose text is {} KiB: at most {} KiB (files shipped from the project folder travel beside it)",
                req.compose.len() / 1024,
                MAX_JSON_BYTES / 1024
            ),
        ));
    }
    let variables = |name: &str| req.variables.get(name).cloned();
    let parsed = spec::parse_with(&req.compose, &req.default_name, &variables, &req.profiles)
        .map_err(ApiError::invalid_compose)?;
    let refused = c.policy.check(&parsed.privileges);
    if !refused.is_empty() {
        return Err(ApiError::invalid_compose(spec::SpecErrors(refused)));
    }
    if let Some(limit) = caller.app.as_deref().filter(|l| *l != parsed.app.name) {
        return Err(forbidden_app(&caller.id, limit, &parsed.app.name));
    }
    // A deploy ends a lost-state hold (`lost_state`), and the controller
    // then acts on a bucket holding that one app: a token limited to one
    // app may not decide that for the others.
    if caller.app.is_some() && c.telemetry.state_lost() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "desired state is lost (see `atoll events`): only a token for every app may deploy \
             until it is restored with `atoll import`",
        ));
    }
    let mut app = parsed.app;
    artifacts::resolve_components(&c, &mut app, &req.artifacts).await?;
    let declared = crate::secrets::Declared {
        secrets: &parsed.secrets,
        configs: &parsed.configs,
    };
    let sent = crate::secrets::Sent {
        secrets: &req.secrets,
        configs: &req.configs,
    };
    if req.dry_run {
        // The values' digests, so that an unchanged value is no change.
        (c.vault.digests_for(&mut app, &declared, &sent).await).map_err(ApiError::secrets)?;
        let mut plan = dry_run_plan(&c, &app);
        plan.warnings = parsed.warnings;
        return Ok(Json(plan).into_response());
    }
    (c.vault.keep_for(&mut app, &declared, &sent).await).map_err(ApiError::secrets)?;
    let name = app.name.clone();
    let warnings = parsed.warnings;
    let done = revisions::deploy(&c, app, req.compose, warnings.clone()).await?;
    Ok(Json(DeployResponse {
        name,
        revision: done.revision,
        unchanged: done.unchanged,
        warnings,
    })
    .into_response())
}

/// What deploying `app` would change, against the snapshot.
fn dry_run_plan(c: &Cluster, app: &spec::App) -> atoll_sdk::api::DeployPlan {
    let snap = c.snapshot();
    let current = snap.app(&app.name).map(|r| (&r.spec, r.revision));
    // The ports the deploy would pick (a full range stays 0 here; the
    // deploy itself says why).
    let mut app = app.clone();
    let taken = free_ports::taken_by_others(snap.apps.iter().map(|r| &r.spec), &app.name);
    let _ = revisions::settle(&mut app, current.map(|(s, _)| s), &taken);
    let app = &app;
    let mut running = std::collections::BTreeMap::new();
    for i in snap.assignments.values().flat_map(|a| &a.instances) {
        if i.app == app.name && !i.canary {
            *running.entry(i.service.clone()).or_insert(0u32) += 1;
        }
    }
    let mut plan = crate::dry_run::plan(app, current, &running);
    plan.stopped = snap.app(&app.name).is_some_and(|r| r.stopped);
    plan
}

async fn delete_app(State(c): Shared, Path(name): Path<String>) -> ApiResult<StatusCode> {
    revisions::remove(&c, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn put_artifact(
    State(c): Shared,
    Path(claimed): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    match artifacts::store(&c, &claimed, &body).await? {
        artifacts::Stored::Existing => Ok(StatusCode::OK),
        artifacts::Stored::New => Ok(StatusCode::CREATED),
    }
}

async fn head_artifact(State(c): Shared, Path(digest): Path<String>) -> StatusCode {
    match artifacts::exists(&c, &digest).await {
        true => StatusCode::OK,
        false => StatusCode::NOT_FOUND,
    }
}

/// Newline-delimited JSON events, as they happen.
async fn events(State(c): Shared) -> ApiResult<Response> {
    let subject = c.buckets.names.events();
    let sub = (c.buckets.js.client())
        .subscribe(subject.clone())
        .await
        .map_err(|e| ApiError::internal("subscribing to events", e))?;
    let sent = move |m: &async_nats::Message| atoll_sdk::nats::published_to(m, &subject);
    let stream = sub.filter(move |m| std::future::ready(sent(m))).map(|m| {
        let mut line = m.payload.to_vec();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal("events", e))
}
