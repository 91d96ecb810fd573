//! The Wasm driver: runs HTTP services as WebAssembly components (wasmtime).
//!
//! One [`WasmEngine`] per host compiles each artifact once per digest (kept in
//! memory and as serialized machine code under a cache directory), links it
//! against WASI 0.2 and `wasi:http`, and hands out a [`Prepared`] component.
//! A [`WasmInstance`] is one scheduled instance of a service: the prepared
//! component plus that instance's environment and limits. Every request runs
//! in a fresh `Store`, so a trap, a timeout or a memory blow-up only ever
//! costs the request that caused it.
//!
//! Capabilities are denied by default: the guest sees only the environment
//! it is given, no preopened directories, no arguments, and sockets only to
//! its app's services (TCP, by service name: `names.rs`; what it may
//! reach at all is in `links.rs`). Its
//! stdout/stderr go to the instance's log file (`InstanceConfig::log`).
//!
//! Body types: [`WasmInstance::handle`] takes any `hyper::Request<B>` whose
//! body yields `Bytes` (so `hyper::body::Incoming`, `Full<Bytes>` or a boxed
//! body all work) and answers with [`ResponseBody`], an unsync boxed body
//! whose error is a boxed `std::error::Error`: hyper serves it as is, and it
//! keeps wasmtime's types out of the gateway.

mod body;
mod cache;
mod driver;
mod engine;
mod error;
mod host;
mod instance;
pub(crate) mod links;
mod names;
mod outbound;
mod wasi_keyvalue;

use std::path::PathBuf;
use std::time::Duration;

pub use body::GuestBodyError;
pub(crate) use driver::WasmDriver;
pub use engine::{CacheStats, KEEP_IDLE, Prepared, WasmEngine};
pub use error::WasmError;
pub use instance::WasmInstance;
pub(crate) use links::{ComponentLinks, KvRoute, Outbound, OutboundRoute};
pub use outbound::MAX_OUTGOING_BODY;

/// Error type of the bodies the driver hands out.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// Body of the responses from [`WasmInstance::handle`]. A component's body is
/// streamed as the guest writes it; if the guest fails after sending its
/// headers, the body ends there with a last [`GuestBodyError`] frame (so
/// hyper cuts the message off instead of passing it as complete).
pub type ResponseBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BodyError>;

/// Memory cap for an instance whose service sets no memory limit.
pub const DEFAULT_MEMORY_LIMIT: u64 = 256 * 1024 * 1024;

/// Host-wide settings of the Wasm driver.
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// Where compiled components are kept between runs, one file per digest.
    /// Created if missing. Must be writable only by the host agent: its files
    /// are loaded as trusted machine code.
    pub cache_dir: PathBuf,
}

/// Settings of one instance of a service.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    /// The guest's whole environment (nothing is inherited from the host).
    pub env: Vec<(String, String)>,
    /// Cap on the instance's linear memory, in bytes, summed over all its
    /// memories; [`DEFAULT_MEMORY_LIMIT`] when `None`.
    pub memory_limit: Option<u64>,
    /// Deadline for one request, from the start of instantiation until the
    /// guest returns (including the time spent streaming the body). Capped
    /// at 24 hours.
    pub timeout: Duration,
    /// Where the guest's stdout and stderr go (`atoll logs`); discarded
    /// when `None`.
    pub log: Option<std::sync::Arc<std::fs::File>>,
    /// Where its outgoing HTTP goes (the app's services); refused when
    /// `None`.
    pub outbound: Option<OutboundRoute>,
    /// Its key-value storage; `wasi:keyvalue` is denied when `None`.
    pub kv: Option<KvRoute>,
    /// What `wasi:config/store` answers: the service's secrets and
    /// configs, by name.
    pub config: ConfigValues,
}

/// The values `wasi:config/store` gives an instance (its secrets among
/// them: printing it names none).
#[derive(Clone, Default)]
pub struct ConfigValues(pub std::sync::Arc<wasmtime_wasi_config::WasiConfigVariables>);

impl std::fmt::Debug for ConfigValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigValues(..)")
    }
}
