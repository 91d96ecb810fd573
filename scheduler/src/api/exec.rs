//! `POST /v1/instances/{id}/exec`: runs a command in a running container
//! instance (`atoll exec`), through the host that runs it, and answers
//! with its exit status and output. The id may be a unique prefix, as
//! with `docker exec`.

use super::error::{ApiError, ApiResult};
use crate::auth::Caller;
use crate::cluster::Cluster;
use crate::snapshot::Snapshot;
use atoll_sdk::protocol::{EXEC_TIMEOUT_MAX_MS, ExecReply, ExecRequest, VERSION};
use axum::extract::{Extension, Json, Path, State};
use axum::http::StatusCode;
use std::sync::Arc;
use std::time::Duration;

/// How long the host may take beyond the command's own timeout.
const HOST_SLACK: Duration = Duration::from_secs(5);

/// What to run, and for how long at most (default 60 s).
#[derive(serde::Deserialize)]
pub(crate) struct ExecBody {
    argv: Vec<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

pub(crate) async fn exec(
    State(c): State<Arc<Cluster>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Json(body): Json<ExecBody>,
) -> ApiResult<Json<ExecReply>> {
    if body.argv.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no command given: atoll exec INSTANCE -- COMMAND [ARG…]",
        ));
    }
    let (host, instance, app) = find(&c.snapshot(), &id)?;
    may_touch(&caller, &app)?;
    let timeout_ms = body
        .timeout_ms
        .unwrap_or(60_000)
        .clamp(1, EXEC_TIMEOUT_MAX_MS);
    let req = ExecRequest {
        v: VERSION,
        instance: instance.clone(),
        argv: body.argv,
        timeout_ms,
        session: None,
    };
    let bytes = serde_json::to_vec(&req).map_err(|e| ApiError::internal("exec", e))?;
    let wait = Duration::from_millis(timeout_ms) + HOST_SLACK;
    let request = async_nats::Request::new()
        .payload(bytes.into())
        .timeout(Some(wait));
    let client = c.buckets.js.client();
    let subject = c.buckets.names.exec_requests(&host);
    let answer = client.send_request(subject, request).await.map_err(|e| {
        let m = match e.kind() {
            async_nats::RequestErrorKind::NoResponders => {
                format!("host {host} of instance {instance} does not answer (is it connected?)")
            }
            async_nats::RequestErrorKind::TimedOut => {
                format!("host {host} gave no answer within {}s", wait.as_secs())
            }
            _ => format!("cannot ask host {host}: {e}"),
        };
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m)
    })?;
    let reply: ExecReply = serde_json::from_slice(&answer.payload)
        .map_err(|e| ApiError::internal("reading the host's answer", e))?;
    if let Some(why) = reply.error {
        return Err(ApiError::new(StatusCode::CONFLICT, why));
    }
    Ok(Json(reply))
}

/// Whether the caller's token reaches `app`.
pub(super) fn may_touch(caller: &Caller, app: &str) -> ApiResult<()> {
    if caller.may_touch(app) {
        return Ok(());
    }
    let m = format!(
        "token {} is limited to app {}, not {app}",
        caller.id,
        caller.app.as_deref().unwrap_or_default()
    );
    Err(ApiError::new(StatusCode::FORBIDDEN, m))
}

/// The host, full id and app of the instance `id` names (exactly, or as a
/// unique prefix).
pub(super) fn find(snap: &Snapshot, id: &str) -> ApiResult<(String, String, String)> {
    let mut found = Vec::new();
    for (host, a) in &snap.assignments {
        for i in &a.instances {
            if i.id == id {
                return Ok((host.clone(), i.id.clone(), i.app.clone()));
            }
            if i.id.starts_with(id) {
                found.push((host.clone(), i.id.clone(), i.app.clone()));
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no instance {id} (atoll ps lists them)"),
        )),
        n => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{id} names {n} instances: give more of the id"),
        )),
    }
}
