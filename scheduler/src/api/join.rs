//! `POST /v1/join`: a host presents a `host` token and gets its identity
//! ([`HostIssuer::host`]). A name joins once (a second join of it is
//! refused until an operator removes the host); a token without a TTL is
//! used up by the join, one with a TTL serves many hosts until it ends.

use super::authn::Auth;
use super::error::{ApiError, ApiResult};
use crate::auth::Caller;
use crate::tls_listener::Peer;
use atoll_sdk::api::{HostIdentity, JoinRecord, JoinRequest};
use atoll_sdk::protocol::now_ms;
use axum::Extension;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use std::sync::Arc;

/// Whether `name` can be a host's name: a NATS subject token and a DNS
/// label (its mesh certificate's name).
pub(crate) fn is_host_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(super) async fn join(
    State(auth): State<Arc<Auth>>,
    Extension(caller): Extension<Caller>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    Json(req): Json<JoinRequest>,
) -> ApiResult<Json<HostIdentity>> {
    let Auth::Tokens {
        tokens,
        joining: Some(joining),
        ..
    } = auth.as_ref()
    else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "this server cannot issue host identities (it runs with --insecure, or its identity has no CA key)",
        ));
    };
    let peer = peer.map_or_else(
        || "unknown".to_string(),
        |Extension(ConnectInfo(Peer(p)))| p.to_string(),
    );
    if !is_host_name(&req.name) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "{:?} is not a host name (1 to 63 letters, digits, - and _)",
                req.name
            ),
        ));
    }
    let (identity, user) = (joining.issuer.host(&req.name))
        .map_err(|e| ApiError::internal("cannot issue the host's identity", e))?;
    let record = JoinRecord {
        token: caller.id.clone(),
        user,
        joined_ms: now_ms(),
    };
    let bytes =
        serde_json::to_vec(&record).map_err(|e| ApiError::internal("encoding the join", e))?;
    if let Err(e) = joining.joined.create(&req.name, bytes.into()).await {
        if e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists {
            tracing::warn!(%peer, host = %req.name, token = %caller.id, "join refused: the name has joined before");
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "a host named {} has joined already; remove it first (atoll hosts rm {}) or pick another --name",
                    req.name, req.name
                ),
            ));
        }
        return Err(ApiError::internal("cannot record the join", e));
    }
    // Used up: a token without an end joins one host.
    if caller.id != "admin" {
        match crate::auth::tokens::lookup(tokens, &caller.id).await {
            Ok(Some(t)) if t.expires_ms.is_none() => {
                if let Err(e) = tokens.purge(&caller.id).await {
                    tracing::warn!(token = %caller.id, error = %e, "cannot use up the join token");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(token = %caller.id, error = %e, "cannot read the join token"),
        }
    }
    tracing::info!(%peer, host = %req.name, token = %caller.id, "host joined");
    Ok(Json(identity))
}
