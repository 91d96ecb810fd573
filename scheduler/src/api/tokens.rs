//! `/v1/tokens`: minting, listing and revoking API tokens (admin only, see
//! [`crate::auth::need`]). A token's secret is shown once, when minted.

use super::authn::Auth;
use super::error::{ApiError, ApiResult};
use crate::auth::tokens::{self, TokenRecord};
use async_nats::jetstream::kv;
use atoll_sdk::api::{CreateTokenRequest, CreatedToken, TokenView};
use atoll_sdk::auth::Role;
use atoll_sdk::protocol::now_ms;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::sync::Arc;

fn store(auth: &Auth) -> ApiResult<&kv::Store> {
    match auth {
        Auth::Tokens { tokens, .. } => Ok(tokens),
        Auth::Open => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "this server runs with --insecure: it has no tokens (start it with --identity DIR)",
        )),
    }
}

pub(super) async fn create(
    State(auth): State<Arc<Auth>>,
    Json(req): Json<CreateTokenRequest>,
) -> ApiResult<Json<CreatedToken>> {
    let kv = store(&auth)?;
    if req.app.is_some() && !matches!(req.role, Role::Deploy | Role::Read) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("--app limits deploy and read tokens only, not {}", req.role),
        ));
    }
    if let Some(app) = req
        .app
        .as_deref()
        .filter(|a| !atoll_sdk::spec::is_app_name(a))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("--app {app:?} is not an app name (lowercase letters, digits, - and _)"),
        ));
    }
    let (token, record) = tokens::mint(&mut rand::rng(), req.role, req.app, now_ms(), req.ttl_ms);
    let bytes =
        serde_json::to_vec(&record).map_err(|e| ApiError::internal("encoding the token", e))?;
    (kv.create(&record.id, bytes.into()).await)
        .map_err(|e| ApiError::internal("cannot store the token", e))?;
    tracing::info!(id = %record.id, role = %record.role, app = ?record.app, "token created");
    Ok(Json(CreatedToken {
        token,
        view: record.view(),
    }))
}

pub(super) async fn list(State(auth): State<Arc<Auth>>) -> ApiResult<Json<Vec<TokenView>>> {
    let kv = store(&auth)?;
    let entries = (atoll_sdk::nats::leader_entries(kv, "").await)
        .map_err(|e| ApiError::internal("cannot list the tokens", e))?;
    let mut out: Vec<TokenView> = (entries.iter())
        .filter_map(|(_, e)| serde_json::from_slice::<TokenRecord>(&e.value).ok())
        .map(|r| r.view())
        .collect();
    out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
    Ok(Json(out))
}

pub(super) async fn revoke(
    State(auth): State<Arc<Auth>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let kv = store(&auth)?;
    let found = (tokens::lookup(kv, &id).await)
        .map_err(|e| ApiError::internal("cannot read the token", e))?;
    if found.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no token {id}"),
        ));
    }
    (kv.purge(&id).await).map_err(|e| ApiError::internal("cannot revoke the token", e))?;
    tracing::info!(%id, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}
