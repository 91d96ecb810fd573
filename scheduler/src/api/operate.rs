//! `atoll scale`, `restart`, `stop` and `start`: the current revision
//! changed as the operator asks, answered like a deploy (the revision
//! written, or the current one with `unchanged`).

use super::error::ApiResult;
use crate::cluster::Cluster;
use crate::revisions::{self, Operation};
use atoll_sdk::api::{DeployResponse, RestartRequest, ScaleRequest};
use axum::extract::{Json, Path, State};
use std::sync::Arc;

type Shared = State<Arc<Cluster>>;

async fn answer(c: &Cluster, name: String, op: Operation<'_>) -> ApiResult<Json<DeployResponse>> {
    let done = revisions::operate(c, &name, op).await?;
    let revision = match done {
        Some(r) => r,
        None => revisions::current(c, &name)?.value.revision,
    };
    Ok(Json(DeployResponse {
        name,
        revision,
        unchanged: done.is_none(),
        warnings: Vec::new(),
    }))
}

pub(super) async fn scale(
    State(c): Shared,
    Path(name): Path<String>,
    Json(req): Json<ScaleRequest>,
) -> ApiResult<Json<DeployResponse>> {
    let op = Operation::Scale {
        service: &req.service,
        replicas: req.replicas,
    };
    answer(&c, name, op).await
}

pub(super) async fn restart(
    State(c): Shared,
    Path(name): Path<String>,
    Json(req): Json<RestartRequest>,
) -> ApiResult<Json<DeployResponse>> {
    let op = Operation::Restart {
        service: req.service.as_deref(),
    };
    answer(&c, name, op).await
}

pub(super) async fn stop(
    State(c): Shared,
    Path(name): Path<String>,
) -> ApiResult<Json<DeployResponse>> {
    answer(&c, name, Operation::Stop).await
}

pub(super) async fn start(
    State(c): Shared,
    Path(name): Path<String>,
) -> ApiResult<Json<DeployResponse>> {
    answer(&c, name, Operation::Start).await
}
