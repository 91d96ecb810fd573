//! One instance of a service: serves each request in a fresh `Store` and
//! turns every failure of the guest into an HTTP error response.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper::{Request, Response, StatusCode};
use tokio::sync::oneshot;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};

use super::body::GuestBody;
use super::engine::Prepared;
use super::error::chain;
use super::host::{HostState, MemoryLimitExceeded};
use super::{BodyError, DEFAULT_MEMORY_LIMIT, InstanceConfig, ResponseBody, WasmEngine};

/// Most bytes the guest may hand the host in one call (a body chunk, a
/// header list…). wasmtime's default is 128 MiB; the largest legitimate
/// transfer here is a 1 MiB body write.
const HOSTCALL_FUEL: usize = 16 * 1024 * 1024;

/// Extra wall-clock time before the host-side timer gives up on a request:
/// the epoch deadline normally fires first, this catches a guest blocked in
/// a host call (waiting on I/O), where no epoch check runs.
const WALL_CLOCK_GRACE: Duration = Duration::from_millis(100);

/// Longest deadline honoured, so that deadline arithmetic cannot overflow
/// (a `Duration::MAX` timeout would panic when added to an `Instant`).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// A scheduled instance of a service. Cheap to clone.
#[derive(Clone)]
pub struct WasmInstance {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    engine: WasmEngine,
    prepared: Prepared,
    env: Vec<(String, String)>,
    memory_limit: u64,
    timeout: Duration,
    log: Option<wasmtime_wasi::cli::OutputFile>,
    outbound: Option<super::OutboundRoute>,
    kv: Option<super::KvRoute>,
    config: std::sync::Arc<wasmtime_wasi_config::WasiConfigVariables>,
    usage: std::sync::Arc<Usage>,
}

/// Counts the time spent polling `inner` — the guest running, and the
/// host calls it makes — but not the time it waits (on an outgoing call,
/// say): the component's CPU time, near enough.
struct Timed<F> {
    inner: std::pin::Pin<Box<F>>,
    usage: std::sync::Arc<Usage>,
}

impl<F: std::future::Future> std::future::Future for Timed<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let started = Instant::now();
        let polled = self.inner.as_mut().poll(cx);
        let us = started.elapsed().as_micros() as u64;
        (self.usage.wasm_us).fetch_add(us, std::sync::atomic::Ordering::Relaxed);
        polled
    }
}

/// What a component's requests used, for the load metrics.
#[derive(Default)]
struct Usage {
    /// Time in the guest (instantiation and the handler), in µs.
    wasm_us: std::sync::atomic::AtomicU64,
    /// Linear memory of the last request's store, in bytes.
    memory: std::sync::atomic::AtomicU64,
}

/// Why a request produced no response from the guest.
enum Failure {
    /// The deadline passed (epoch interruption or the wall-clock backstop).
    Deadline,
    /// The guest asked for more memory than its limit.
    Memory(MemoryLimitExceeded),
    /// A trap, named by wasmtime.
    Trap(Trap),
    /// The pooling allocator has no free slot: the host is at capacity.
    Capacity(String),
    /// Anything else (instantiation or host-call error).
    Other(String),
    /// The guest returned without calling `response-outparam.set`.
    NoResponse,
}

impl WasmInstance {
    /// An instance running `prepared` with `cfg`'s environment and limits.
    pub fn new(engine: &WasmEngine, prepared: Prepared, cfg: InstanceConfig) -> Self {
        Self {
            inner: std::sync::Arc::new(Inner {
                engine: engine.clone(),
                prepared,
                env: cfg.env,
                memory_limit: cfg.memory_limit.unwrap_or(DEFAULT_MEMORY_LIMIT),
                timeout: cfg.timeout.min(MAX_TIMEOUT),
                log: (cfg.log.as_deref())
                    .and_then(|f| f.try_clone().ok())
                    .map(wasmtime_wasi::cli::OutputFile::new),
                outbound: cfg.outbound,
                kv: cfg.kv,
                config: cfg.config.0,
                usage: Default::default(),
            }),
        }
    }

    /// Time spent in the guest (µs, cumulative) and the memory of its
    /// last store (bytes).
    pub fn usage(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let u = &self.inner.usage;
        (u.wasm_us.load(Relaxed), u.memory.load(Relaxed))
    }

    /// Digest of the component this instance runs.
    pub fn digest(&self) -> &str {
        self.inner.prepared.digest()
    }

    /// Serves one request in a fresh store.
    ///
    /// Returns the component's response, its body streamed as the guest
    /// writes it, or an error response with a short `text/plain` reason:
    /// 504 when the deadline cut the guest off, 503 when the host has no
    /// free instance slot, 500 for a trap, the memory limit, or a guest
    /// that sent no response. Never panics, whatever the guest does. A
    /// failure after the headers were sent ends the body early with a
    /// [`super::GuestBodyError`].
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BodyError>,
    {
        let inner = &self.inner;
        let digest = inner.prepared.digest().to_string();
        let started = Instant::now();
        let mut store = self.new_store(started);
        let (tx, rx) = oneshot::channel();
        let resources = {
            let mut http = store.data_mut().http();
            http.new_incoming_request(Scheme::Http, with_authority(req).map(body_to_wasi))
                .and_then(|req| Ok((req, http.new_response_outparam(tx)?)))
        };
        let (guest_req, out) = match resources {
            Ok(resources) => resources,
            Err(e) => {
                tracing::warn!(digest, error = %chain(&e), "request cannot be passed to the component");
                return text_response(StatusCode::BAD_REQUEST, "bad request\n".to_string());
            }
        };

        // The guest runs in its own task: it may go on writing the body
        // after the headers have been returned from here.
        let pre = inner.prepared.pre().clone();
        let wall_clock = inner.timeout + WALL_CLOCK_GRACE;
        let task_digest = digest.clone();
        let (failure_tx, failure_rx) = oneshot::channel();
        let usage = inner.usage.clone();
        let task = tokio::spawn(async move {
            let run = async {
                let proxy = pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(|e| instantiate_failure(&e))?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, guest_req, out)
                    .await
                    .map_err(|e| guest_failure(&e))
            };
            let run = Timed {
                inner: Box::pin(run),
                usage: usage.clone(),
            };
            let result = match tokio::time::timeout(wall_clock, run).await {
                Ok(result) => result,
                Err(_) => Err(Failure::Deadline),
            };
            let memory = store.data().limiter.used();
            usage
                .memory
                .store(memory, std::sync::atomic::Ordering::Relaxed);
            // The limiter knows better than the error chain why the guest
            // stopped: the trap may surface as a plain host error.
            let result = match (result, store.data_mut().limiter.exceeded.take()) {
                (Err(_), Some(exceeded)) => Err(Failure::Memory(exceeded)),
                (result, _) => result,
            };
            if let Err(failure) = &result {
                let reason = failure.describe();
                tracing::warn!(digest = task_digest, elapsed = ?started.elapsed(), "component failed: {reason}");
                // Before the store goes: the body must find the failure
                // as soon as it sees its end (see `GuestBody`).
                let _ = failure_tx.send(reason);
            }
            // Dropping the store closes the response outparam and the body
            // stream, which ends any body the guest had started.
            drop(store);
            result
        });

        match rx.await {
            Ok(Ok(response)) => {
                response.map(|body| GuestBody::new(body, failure_rx).boxed_unsync())
            }
            Ok(Err(code)) => {
                tracing::warn!(digest, error = ?code, "component answered with an error code");
                text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("component error: {}\n", error_code_name(&code)),
                )
            }
            // The sender is gone: the guest ended without a response.
            Err(_) => match task.await {
                Ok(Ok(())) => failure_response(&Failure::NoResponse, inner.timeout),
                Ok(Err(failure)) => failure_response(&failure, inner.timeout),
                Err(e) => {
                    tracing::error!(digest, error = %e, "component task died");
                    text_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal error\n".to_string(),
                    )
                }
            },
        }
    }

    fn new_store(&self, started: Instant) -> Store<HostState> {
        let inner = &self.inner;
        let deadline = started + inner.timeout;
        let state = HostState::new(
            &inner.env,
            inner.memory_limit,
            deadline,
            inner.log.clone(),
            inner.outbound.clone(),
            inner.kv.clone(),
            inner.config.clone(),
        );
        let mut store = Store::new(inner.engine.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store.set_hostcall_fuel(HOSTCALL_FUEL);
        // Check at every epoch tick: past the deadline the guest traps;
        // before it, it yields so that a guest busy computing gives its
        // tokio worker back every tick instead of holding it for the whole
        // timeout (this host may have two cores).
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Deadline => "deadline exceeded".to_string(),
            Failure::Memory(e) => e.to_string(),
            Failure::Trap(trap) => format!("trap: {trap}"),
            Failure::Capacity(e) | Failure::Other(e) => e.clone(),
            Failure::NoResponse => "returned without sending a response".to_string(),
        }
    }
}

fn instantiate_failure(e: &wasmtime::Error) -> Failure {
    if e.is::<wasmtime::PoolConcurrencyLimitError>() {
        Failure::Capacity(chain(e))
    } else {
        guest_failure(e)
    }
}

/// Classifies an error from instantiating or running the guest.
fn guest_failure(e: &wasmtime::Error) -> Failure {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Failure::Deadline,
        Some(trap) => Failure::Trap(*trap),
        None => Failure::Other(chain(e)),
    }
}

fn failure_response(failure: &Failure, timeout: Duration) -> Response<ResponseBody> {
    let (status, text) = match failure {
        Failure::Deadline => (
            StatusCode::GATEWAY_TIMEOUT,
            format!("component exceeded its deadline of {timeout:?}\n"),
        ),
        Failure::Memory(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "component exceeded its memory limit of {} MiB\n",
                e.limit.div_ceil(1024 * 1024)
            ),
        ),
        Failure::Trap(trap) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("component trapped: {trap}\n"),
        ),
        Failure::Capacity(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "host is at its instance capacity\n".to_string(),
        ),
        Failure::Other(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "component failed\n".to_string(),
        ),
        Failure::NoResponse => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "component sent no response\n".to_string(),
        ),
    };
    text_response(status, text)
}

fn text_response(status: StatusCode, text: String) -> Response<ResponseBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The variant name of a wasi-http error code (`HttpRequestDenied`…),
/// without payloads that may be long or guest-controlled.
fn error_code_name(code: &ErrorCode) -> String {
    let debug = format!("{code:?}");
    let end = debug.find(['(', ' ', '{']).unwrap_or(debug.len());
    debug[..end].to_string()
}

/// wasi-http requires an authority: requests served by hyper carry only a
/// path, and HTTP/1.0 clients may send no `Host`.
fn with_authority<B>(mut req: Request<B>) -> Request<B> {
    if req.uri().authority().is_none() && !req.headers().contains_key(hyper::header::HOST) {
        req.headers_mut().insert(
            hyper::header::HOST,
            hyper::header::HeaderValue::from_static("localhost"),
        );
    }
    req
}

/// Adapts any request body to the error type wasi-http wants, keeping
/// hyper's errors typed (wasi-http maps them to precise error codes).
fn body_to_wasi<B>(body: B) -> impl Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BodyError>,
{
    body.map_err(|e| match e.into().downcast::<hyper::Error>() {
        Ok(hyper_error) => wasmtime_wasi_http::Error::Hyper(*hyper_error),
        Err(other) => wasmtime_wasi_http::Error::InternalError(Some(other.to_string())),
    })
}
