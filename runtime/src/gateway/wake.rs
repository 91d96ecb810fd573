//! Scale from zero: a request for a service that scales to zero and has no
//! ready instance is held while the control plane starts one, rather than
//! refused — bounded by [`WAKE_HOLD`], after which the client gets a 503
//! with `Retry-After`. The gateway only asks (through the [`Waker`]) and
//! watches its routing table; it never starts an instance itself.

use super::routes::{Route, Table};
use super::{Gateway, ResponseBody, text};
use http::{HeaderValue, Response, StatusCode};
use std::time::Duration;
use tokio::time::Instant;

/// How long a request for a service scaled to zero is held while an
/// instance starts; past it, 503 with `Retry-After`.
pub const WAKE_HOLD: Duration = Duration::from_secs(10);
/// A held request asks again this often, in case a wake-up was lost.
const WAKE_AGAIN: Duration = Duration::from_secs(1);

/// Asks the control plane for an instance of (app, service).
pub type Waker = Box<dyn Fn(&str, &str) + Send + Sync>;

/// Whether a request for `route` waits for an instance to start.
pub fn asleep(route: &Route) -> bool {
    route.endpoints.is_empty() && route.wake
}

impl Gateway {
    /// Sets how the gateway asks for an instance of a service scaled to
    /// zero (once; later calls are ignored).
    pub fn set_waker(&self, waker: Waker) {
        let _ = self.waker.set(waker);
    }

    /// Wakes the service of `route`, which is [`asleep`]: its route once
    /// it has an endpoint, or the 503 to answer when none came in time.
    pub(super) async fn wake(&self, route: &Route) -> Result<Route, Response<ResponseBody>> {
        match self.hold(&route.app, &route.service).await {
            Some(woken) => Ok(woken),
            None => {
                let mut resp = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "service {} of app {} is starting from zero and was not ready within {WAKE_HOLD:?}; retry",
                        route.service, route.app
                    ),
                );
                resp.headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
                Err(resp)
            }
        }
    }

    /// Asks for an instance of the service, and waits (bounded by
    /// [`WAKE_HOLD`]) for a table in which the service has an endpoint.
    async fn hold(&self, app: &str, service: &str) -> Option<Route> {
        let deadline = Instant::now() + WAKE_HOLD;
        let key = (app.to_string(), service.to_string());
        let mut asked: Option<Instant> = None;
        loop {
            // Listen before looking, so a table set in between wakes us.
            let changed = self.table_changed.notified();
            if let Some(route) = ready_in(&self.table(), &key) {
                return Some(route);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            if asked.is_none_or(|at| now >= at + WAKE_AGAIN) {
                if let Some(wake) = self.waker.get() {
                    wake(app, service);
                }
                asked = Some(now);
            }
            let until = deadline.min(now + WAKE_AGAIN);
            let _ = tokio::time::timeout_at(until, changed).await;
        }
    }
}

/// The service's route in `table` if it has an endpoint now.
fn ready_in(table: &Table, key: &(String, String)) -> Option<Route> {
    (table.by_service.get(key))
        .filter(|r| !r.endpoints.is_empty())
        .cloned()
}
