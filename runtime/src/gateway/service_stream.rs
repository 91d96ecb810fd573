//! One connection to a service address, on whichever listener took it
//! (the service's own on a port, or the catch-all): HTTP is proxied per
//! request, anything else spliced to one instance.

use super::listeners::serve_http;
use super::{Gateway, read_body, text};
use http::StatusCode;
use std::sync::Arc;

/// Serves one connection to `service` of `app` at `port`: HTTP is proxied
/// per request; anything else is spliced to one instance.
pub(super) async fn serve(
    gw: Arc<Gateway>,
    stream: tokio::net::TcpStream,
    app: String,
    service: String,
    port: u16,
) {
    if !super::tcp::speaks_http(&stream).await {
        return gw.tcp_to_service(&app, &service, port, stream).await;
    }
    let timeout = gw.limits.header_timeout;
    serve_http(stream, timeout, move |req| {
        let (gw, app, service) = (gw.clone(), app.clone(), service.clone());
        async move {
            let req = match read_body(req, gw.limits.body_timeout).await {
                Ok(r) => r,
                Err(resp) => return resp,
            };
            match gw.call_service(&app, &service, port, req).await {
                Some(r) => r,
                None => text(
                    StatusCode::BAD_GATEWAY,
                    format!("app {app} has no service {service:?}"),
                ),
            }
        }
    })
    .await;
}
