//! A component's outgoing HTTP: `http://api/…` or `http://api:8080/…`
//! goes to service `api` of the component's own app, wherever its
//! instances run; anything else is refused with a 502 that says why
//! (capabilities are denied by default: no calls out of the app).

use std::future::Future;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::links::OutboundRoute;

/// Largest request body a component may send to a service.
pub const MAX_OUTGOING_BODY: usize = 16 * 1024 * 1024;

/// The wasi-http hooks of one request's store.
#[derive(Default)]
pub(crate) struct ServiceHooks {
    pub(crate) route: Option<OutboundRoute>,
}

type SendResult = wasmtime_wasi_http::Result<(
    Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)>;

impl WasiHttpHooks for ServiceHooks {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let route = self.route.clone();
        Box::new(async move {
            let resp = send(route, request).await?;
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((resp, done))
        })
    }
}

async fn send(
    route: Option<OutboundRoute>,
    request: Request<WasiBody>,
) -> wasmtime_wasi_http::Result<Response<WasiBody>> {
    let (parts, body) = request.into_parts();
    let service = parts.uri.host().unwrap_or_default().to_string();
    let port = parts.uri.port_u16().unwrap_or(80);
    let Some(route) = route else {
        return Ok(refusal(
            "outgoing HTTP is not available to this component".into(),
        ));
    };
    if service.contains('.') || service.is_empty() {
        let m = format!(
            "{service:?} is not a service of app {}: components may call their app's services only",
            route.app
        );
        return Ok(refusal(m));
    }
    let body = Limited::new(body, MAX_OUTGOING_BODY)
        .collect()
        .await
        .map_err(|e| Error::InternalError(Some(format!("request body: {e}"))))?
        .to_bytes();
    let req = Request::from_parts(parts, body);
    let app = route.app.clone();
    match route.to.call(app.clone(), service.clone(), port, req).await {
        Some(resp) => Ok(resp.map(|b| {
            b.map_err(|e| Error::InternalError(Some(e.to_string())))
                .boxed_unsync()
        })),
        None => Ok(refusal(format!("app {app} has no service {service:?}"))),
    }
}

/// A 502 from the host itself, naming why the call went nowhere.
fn refusal(message: String) -> Response<WasiBody> {
    let body = Full::new(Bytes::from(message + "\n"))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
