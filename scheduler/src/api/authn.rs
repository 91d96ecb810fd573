//! Every request but the health check carries a token: the middleware
//! finds its caller (the admin token from the identity directory, or a
//! token from the tokens bucket), asks [`crate::auth`] whether it may,
//! and hands the caller to the handler (which narrows lists to a token's
//! app). No token, or a bad one: 401; not allowed: 403; each logged with
//! the peer's address. On a server started with `--insecure` everyone is
//! admin.

use super::error::ApiError;
use crate::auth::tokens::{self, Refused, TokenRecord};
use crate::auth::{self, Caller, Need};
use crate::tls_listener::Peer;
use async_nats::jetstream::kv;
use atoll_sdk::protocol::now_ms;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// How the API knows its callers.
pub(crate) enum Auth {
    /// `--insecure`: no tokens, everyone is admin.
    Open,
    Tokens {
        /// The cluster's admin token (from `admin.token`).
        admin: Box<TokenRecord>,
        tokens: Box<kv::Store>,
        /// Issuing hosts their identity (`/v1/join`).
        joining: Option<Box<Joining>>,
    },
}

/// What `/v1/join` needs.
pub(crate) struct Joining {
    pub issuer: Arc<crate::identity::issuing::HostIssuer>,
    /// Host name → its join: a name joins once.
    pub joined: kv::Store,
}

impl Auth {
    /// The caller a request's `Authorization` header makes.
    async fn caller(&self, headers: &HeaderMap) -> Result<Caller, Failure> {
        let Auth::Tokens { admin, tokens, .. } = self else {
            return Ok(Caller::insecure());
        };
        let token = bearer(headers).ok_or(Failure::Refused(Refused::Missing))?;
        let (id, _) =
            atoll_sdk::auth::split_token(token).ok_or(Failure::Refused(Refused::Malformed))?;
        let record = if id == admin.id {
            Some(TokenRecord::clone(admin))
        } else {
            (tokens::lookup(tokens, id).await).map_err(Failure::Unavailable)?
        };
        tokens::verify(token, record.as_ref(), now_ms()).map_err(Failure::Refused)
    }
}

enum Failure {
    Refused(Refused),
    /// The tokens bucket could not be read.
    Unavailable(String),
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub(crate) async fn authenticate(
    State(auth): State<Arc<Auth>>,
    matched: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    let route = matched.map_or_else(|| req.uri().path().to_string(), |m| m.as_str().to_string());
    let need = auth::need(req.method(), &route);
    let peer = (req.extensions().get::<ConnectInfo<Peer>>()).map_or_else(
        || "unknown".to_string(),
        |ConnectInfo(Peer(p))| p.to_string(),
    );
    if need == Need::Nothing {
        return next.run(req).await;
    }
    let caller = match auth.caller(req.headers()).await {
        Ok(caller) => caller,
        Err(Failure::Unavailable(e)) => {
            return ApiError::internal("cannot check the token", e).into_response();
        }
        Err(Failure::Refused(why)) => {
            tracing::warn!(%peer, method = %req.method(), path = req.uri().path(), %why, "API request refused");
            let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, why.to_string()).into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return resp;
        }
    };
    if let Err(denied) = auth::authorize(&caller, need, auth::path_app(req.uri().path())) {
        tracing::warn!(%peer, method = %req.method(), path = req.uri().path(), why = %denied, "API request forbidden");
        return ApiError::new(StatusCode::FORBIDDEN, denied.to_string()).into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}
