//! State grants: a host with its own NATS user asks on its grant subject
//! (which only it may publish to) for a JWT that reaches the component
//! state of the apps assigned to it; a server with the cluster's identity
//! makes the buckets of those apps and answers with a JWT for the key the
//! host names (a host naming another key gets nothing more than its own
//! apps' state). Servers share the work as a queue group.

use crate::identity::issuing::HostIssuer;
use async_nats::jetstream::kv;
use atoll_sdk::cluster::Assignment;
use atoll_sdk::protocol::{Names, StateGrant, StateGrantRequest};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What answering needs.
pub struct Granting {
    pub js: async_nats::jetstream::Context,
    pub names: Names,
    pub issuer: Arc<HostIssuer>,
    pub assignments: kv::Store,
    /// Replicas of the buckets it makes (the server's choice).
    pub replicas: usize,
}

/// Answers grant requests until the subscription ends.
pub async fn serve(g: Granting) {
    let subject = g.names.state_grant_all();
    let client = g.js.client().clone();
    let g = Arc::new(g);
    crate::host_requests::serve(client, subject, move |msg| {
        let g = g.clone();
        async move {
            let answer = match g.names.sender(&msg.subject) {
                Some(host) => g.answer(host, &msg.payload).await,
                None => refusal("not a grant subject".to_string()),
            };
            serde_json::to_vec(&answer).unwrap_or_default()
        }
    })
    .await;
}

fn refusal(error: String) -> StateGrant {
    StateGrant {
        jwt: None,
        apps: Vec::new(),
        error: Some(error),
    }
}

impl Granting {
    async fn answer(&self, host: &str, payload: &[u8]) -> StateGrant {
        let req: StateGrantRequest = match serde_json::from_slice(payload) {
            Ok(r) => r,
            Err(e) => return refusal(format!("malformed grant request: {e}")),
        };
        let apps = match crate::host_requests::assignment_of(&self.assignments, host).await {
            Ok(a) => a.as_ref().map(assigned_apps).unwrap_or_default(),
            Err(e) => return refusal(e),
        };
        for app in &apps {
            let cfg = atoll_sdk::nats::app_state_config(&self.names, app, self.replicas);
            if let Err(e) = atoll_sdk::nats::open_kv(&self.js, cfg).await {
                return refusal(format!("cannot make the state bucket of {app}: {e}"));
            }
        }
        match self.issuer.state_grant(host, &req.user, &apps) {
            Ok(jwt) => {
                tracing::debug!(%host, ?apps, "state granted");
                StateGrant {
                    jwt: Some(jwt),
                    apps: apps.into_iter().collect(),
                    error: None,
                }
            }
            Err(e) => {
                tracing::warn!(%host, error = %e, "state grant refused");
                refusal(e.to_string())
            }
        }
    }
}

/// The apps with an instance in `a`.
pub fn assigned_apps(a: &Assignment) -> BTreeSet<String> {
    a.instances.iter().map(|i| i.app.clone()).collect()
}
