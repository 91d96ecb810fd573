//! Retries of one request. Within a round, an instance that could not be
//! reached is replaced by another ([`Attempts`]): nothing was sent to it,
//! so a retry is safe. When every instance of the round answered that it
//! is not there, the routing table is behind a rolling update that just
//! moved on: after a short wait, another round runs on the table as it is
//! then, up to [`STALE_ROUNDS`]. After the last, an instance of the
//! service running on this host serves, if there is one.

use super::attempts::{Attempts, Outstanding};
use super::forward::Unsent;
use super::payload::copy_request;
use super::routes::{Route, Table};
use super::{Gateway, Payload, ResponseBody, VERSION_HEADER, Via, text};
use http::{Request, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;

/// Rounds over the routing table for one request when its instances all
/// turned out to be gone, and the wait for a newer table between rounds.
const STALE_ROUNDS: usize = 3;
const STALE_WAIT: Duration = Duration::from_millis(25);

impl Gateway {
    /// Serves `req` from one of the route's instances, retrying as above;
    /// 503 when none took it.
    pub(super) async fn attempt(
        &self,
        route: &Route,
        via: Via,
        req: &Request<Payload>,
    ) -> Response<ResponseBody> {
        // A tester pins a request to the canary with this header.
        let pinned = (req.headers().get(VERSION_HEADER)).is_some_and(|v| v.as_bytes() == b"canary");
        let mut fresh: Option<Arc<Table>> = None;
        for round in 0..STALE_ROUNDS {
            let current = match &fresh {
                Some(t) => t
                    .by_service
                    .get(&(route.app.clone(), route.service.clone())),
                None => Some(route),
            };
            let Some(current) = current else { break };
            match self.round(current, pinned, via, req).await {
                Ok(resp) => return resp,
                Err(Unsent::Absent) if round + 1 < STALE_ROUNDS => {
                    tokio::time::sleep(STALE_WAIT).await;
                    fresh = Some(self.table());
                }
                Err(_) => break,
            }
        }
        // Every instance the table names is gone and no newer table came:
        // the table is behind (its NATS watch stalled). An instance of the
        // service running here serves rather than a 503.
        if let Some(inst) = self.local.checkout_any(&route.app, &route.service)
            && let Some(copy) = copy_request(req)
            && let Some(resp) = self.serve_local(inst, via, copy).await
        {
            return resp;
        }
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no ready instance of service {} (app {}) could take the request",
                route.service, route.app
            ),
        )
    }

    /// One round over `route`'s instances: the first answer, or why none
    /// answered — [`Unsent::Absent`] when any instance said it is gone.
    async fn round(
        &self,
        route: &Route,
        pinned: bool,
        via: Via,
        req: &Request<Payload>,
    ) -> Result<Response<ResponseBody>, Unsent> {
        // Draws from the thread RNG, one call at a time: a `ThreadRng`
        // itself is not `Send`, and the attempts are held across awaits.
        let mut attempts = Attempts::new(route, pinned, rand::random::<u64>);
        let mut absent = false;
        while let Some((i, ep)) = attempts.next() {
            let _guard = Outstanding::enter(ep);
            match self.try_endpoint(ep, via, req).await {
                Ok(resp) => return Ok(resp),
                Err(why) => {
                    absent |= why == Unsent::Absent;
                    let host_down = why == Unsent::Unreachable && ep.endpoint.host != self.host;
                    attempts.failed(i, host_down);
                }
            }
        }
        Err(if absent {
            Unsent::Absent
        } else {
            Unsent::Unreachable
        })
    }
}
