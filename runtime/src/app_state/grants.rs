//! Component state for a host with its own NATS user. That user reaches no
//! state bucket (NATS cannot allow bucket names by prefix); a server
//! grants a short JWT for the buckets of the apps assigned to this host,
//! and state goes over a second connection with it. Asked again when an
//! app it does not cover needs state, or when half its life has passed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use atoll_sdk::protocol::{Names, StateGrant, StateGrantRequest};

use crate::joined::Joined;
use crate::wasm::links::StoreError;

/// A grant is asked for again after this long (it lives an hour).
const REFRESH_AFTER: Duration = Duration::from_secs(30 * 60);
/// Bound on asking for a grant, and on connecting with it: together under
/// a storage call's bound.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// What a host needs to ask for grants and use them.
pub struct Grants {
    client: Joined<async_nats::Client>,
    urls: Vec<async_nats::ServerAddr>,
    user: Arc<nkeys::KeyPair>,
    host: String,
    names: Names,
    current: tokio::sync::Mutex<Option<Current>>,
}

struct Current {
    apps: BTreeSet<String>,
    js: jetstream::Context,
    since: Instant,
    generation: u64,
}

impl Grants {
    pub fn new(
        client: Joined<async_nats::Client>,
        urls: Vec<async_nats::ServerAddr>,
        user: nkeys::KeyPair,
        host: &str,
        names: Names,
    ) -> Grants {
        Grants {
            client,
            urls,
            user: Arc::new(user),
            host: host.to_string(),
            names,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// A JetStream context that reaches `app`'s state, and the grant's
    /// generation (a new one: stores opened under the old are stale).
    pub async fn context_for(&self, app: &str) -> Result<(jetstream::Context, u64), StoreError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref()
            && c.apps.contains(app)
            && c.since.elapsed() < REFRESH_AFTER
        {
            return Ok((c.js.clone(), c.generation));
        }
        let unavailable = |reason: String| StoreError::Unavailable {
            app: app.to_string(),
            reason,
        };
        let client = (self.client.now())
            .ok_or_else(|| unavailable("this host has not reached NATS yet".to_string()))?;
        let ask = StateGrantRequest {
            user: self.user.public_key(),
        };
        let body = serde_json::to_vec(&ask).map_err(|e| unavailable(e.to_string()))?;
        let subject = self.names.state_grant(&self.host);
        let reply = tokio::time::timeout(ASK_TIMEOUT, client.request(subject, body.into()))
            .await
            .map_err(|_| unavailable("no server answered the state grant request".to_string()))?
            .map_err(|e| unavailable(format!("asking a server for a state grant: {e}")))?;
        let grant: StateGrant = serde_json::from_slice(&reply.payload)
            .map_err(|e| unavailable(format!("a malformed state grant: {e}")))?;
        let apps: BTreeSet<String> = grant.apps.into_iter().collect();
        let jwt = match (grant.jwt, grant.error) {
            (Some(jwt), _) if apps.contains(app) => jwt,
            (_, Some(e)) => return Err(unavailable(format!("the state grant was refused: {e}"))),
            _ => {
                return Err(unavailable(
                    "the app is not assigned to this host".to_string(),
                ));
            }
        };
        let user = self.user.clone();
        let state = async_nats::ConnectOptions::with_jwt(jwt, move |nonce| {
            let user = user.clone();
            async move { user.sign(&nonce).map_err(async_nats::AuthError::new) }
        })
        .name(format!("host-{}-state", self.host))
        .custom_inbox_prefix(atoll_sdk::nats::host_inbox(&self.host))
        .connection_timeout(ASK_TIMEOUT)
        .max_reconnects(None)
        .connect(self.urls.clone())
        .await
        .map_err(|e| unavailable(format!("connecting with the state grant: {e}")))?;
        let generation = current.as_ref().map_or(1, |c| c.generation + 1);
        let js = jetstream::new(state);
        tracing::info!(apps = ?apps, "component state granted");
        *current = Some(Current {
            apps,
            js: js.clone(),
            since: Instant::now(),
            generation,
        });
        Ok((js, generation))
    }
}
