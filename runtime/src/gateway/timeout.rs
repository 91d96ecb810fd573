//! The service's request timeout: the whole of serving one request —
//! every attempt and retry round — runs within it, and past it the client
//! gets a 504 naming the service. Dropping the attempts' future cancels
//! whatever is still in flight.

use super::routes::Route;
use super::{ResponseBody, text};
use http::{Response, StatusCode};
use std::future::Future;

/// `serve`'s answer, or the 504 when it takes longer than `route`'s
/// timeout.
pub async fn within(
    route: &Route,
    serve: impl Future<Output = Response<ResponseBody>>,
) -> Response<ResponseBody> {
    match tokio::time::timeout(route.timeout, serve).await {
        Ok(resp) => resp,
        Err(_) => text(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "service {} of app {} did not answer within {:?}",
                route.service, route.app, route.timeout
            ),
        ),
    }
}
