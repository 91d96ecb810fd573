//! Errors of the Wasm driver. Each names the artifact (by digest) and the
//! step that failed, so `atoll deploy` and the host logs can say what is
//! wrong with an artifact without anyone reading a backtrace.

use std::path::PathBuf;

/// What went wrong while setting up the engine or preparing a component.
///
/// Request-time failures (traps, timeouts, memory limits) are not errors of
/// this type: [`super::WasmInstance::handle`] turns them into HTTP responses.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The wasmtime engine could not be created.
    #[error("creating the wasmtime engine failed: {reason}")]
    Engine { reason: String },

    /// The compiled-code cache directory could not be created.
    #[error("creating the component cache directory {} failed: {source}", path.display())]
    CacheDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The digest cannot name a cache file (empty, too long, or has
    /// characters other than ASCII letters, digits, `:`, `-`, `_`, `.`).
    #[error("artifact digest {digest:?} is not usable: {reason}")]
    InvalidDigest {
        digest: String,
        reason: &'static str,
    },

    /// The bytes are not a WebAssembly binary at all.
    #[error("artifact {digest} is not a WebAssembly binary: {detail}")]
    NotWasm { digest: String, detail: String },

    /// The bytes are a core Wasm module, which atoll cannot serve.
    #[error(
        "artifact {digest} is a core WebAssembly module, not a component: build it for \
         `wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule { digest: String },

    /// The component failed validation or compilation.
    #[error("compiling component {digest} failed: {reason}")]
    Compile { digest: String, reason: String },

    /// The component imports something the host does not provide, or does
    /// not export `wasi:http/incoming-handler`.
    #[error("component {digest} cannot run as an HTTP service: {reason}")]
    Link { digest: String, reason: String },

    /// A worker task died (a bug in the driver, not in the artifact).
    #[error("internal error while preparing component {digest}: {reason}")]
    Internal { digest: String, reason: String },
}

/// Renders a wasmtime error with its chain of causes on one line.
pub(crate) fn chain(e: &wasmtime::Error) -> String {
    format!("{e:#}")
}
