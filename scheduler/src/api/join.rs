//! `POST /v1/join`: a host presents a `host` token and gets its identity
//! (`HostIssuer::host`). A name joins once, and not at all while the
//! cluster knows a host of that name (refused until an operator removes
//! it); a token without a TTL is used up before anything is issued (two
//! joins racing on it: one wins), one with a TTL serves many hosts until
//! it ends.

use super::authn::Auth;
use super::error::{ApiError, ApiResult};
use crate::auth::Caller;
use crate::tls_listener::Peer;
use async_nats::jetstream::kv;
use atoll_sdk::api::{HostIdentity, JoinRecord, JoinRequest};
use atoll_sdk::protocol::now_ms;
use axum::Extension;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use std::sync::Arc;

/// Whether `name` can be a host's name: a NATS subject token and a DNS
/// label (its mesh certificate's name), lower case (certificate names
/// compare without case: `H1` must not pass for `h1`).
pub(crate) fn is_host_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && (name.bytes())
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn taken(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        format!(
            "a host named {name} has joined already or runs in the cluster; remove it first (atoll hosts rm {name}) or pick another --name"
        ),
    )
}

/// Uses up a token without an end (a second use fails, also when two
/// joins race); one with a TTL stays.
async fn use_up(tokens: &kv::Store, id: &str) -> ApiResult<()> {
    if id == "admin" {
        return Ok(());
    }
    let used_up = || ApiError::new(StatusCode::UNAUTHORIZED, format!("token {id} is used up"));
    let entry = (atoll_sdk::nats::leader_entry(tokens, id).await)
        .map_err(|e| ApiError::internal("cannot read the join token", e))?;
    let entry = entry.ok_or_else(used_up)?;
    let record: crate::auth::tokens::TokenRecord = serde_json::from_slice(&entry.value)
        .map_err(|e| ApiError::internal("the join token's record", e))?;
    if record.expires_ms.is_some() {
        return Ok(());
    }
    (tokens
        .delete_expect_revision(id, Some(entry.revision))
        .await)
        .map_err(|_| used_up())?;
    Ok(())
}

pub(super) async fn join(
    State(auth): State<Arc<Auth>>,
    Extension(caller): Extension<Caller>,
    Extension(cluster): Extension<Arc<crate::cluster::Cluster>>,
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
                "{:?} is not a host name (1 to 63 lowercase letters, digits, - and _)",
                req.name
            ),
        ));
    }
    // A name the cluster knows (joined, or heard from: a host made by
    // `atoll up`, or one that runs without joining) is not handed out.
    let joined = (joining.joined.entry(&req.name).await)
        .map_err(|e| ApiError::internal("cannot read the joins", e))?;
    if joined.is_some() || cluster.observed().knows(&req.name) {
        tracing::warn!(%peer, host = %req.name, token = %caller.id, "join refused: the name is taken");
        return Err(taken(&req.name));
    }
    use_up(tokens, &caller.id).await?;
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
        if e.kind() == kv::CreateErrorKind::AlreadyExists {
            tracing::warn!(%peer, host = %req.name, token = %caller.id, "join refused: the name has joined meanwhile");
            return Err(taken(&req.name));
        }
        return Err(ApiError::internal("cannot record the join", e));
    }
    tracing::info!(%peer, host = %req.name, token = %caller.id, "host joined");
    Ok(Json(identity))
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_names_are_lowercase_tokens() {
        for ok in ["h1", "edge-17", "a_b"] {
            assert!(super::is_host_name(ok), "{ok}");
        }
        for bad in ["", "H1", "a.b", "-x", "a b", "a*", ">", &"x".repeat(64)] {
            assert!(!super::is_host_name(bad), "{bad}");
        }
    }
}
