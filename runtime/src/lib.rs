//! The atoll host agent.
//!
//! A host joins the cluster over NATS, heartbeats, watches its assignment
//! and makes what it runs match it ([`supervisor`]), and serves the
//! published ports of the whole cluster through its [`gateway`]; cut off
//! from NATS, or started without it, it runs its cached assignment alone. Drivers
//! run instances behind one seam ([`driver`]): [`wasm`] runs components
//! in-process (wasmtime), [`container`] runs OCI containers through an OCI
//! runtime binary (youki, runc or crun). [`oci`] gets images onto the host.
//!
//! The public surface is what the CLI and the tests use: [`run`] and
//! [`cleanup`] with their [`HostConfig`], [`host_info`], the image tools of
//! [`oci`], the Wasm driver ([`wasm`]) and [`Subnet`]. Everything else is
//! internal to the host.

mod agent;
mod app_state;
mod artifacts;
mod container;
mod driver;
mod fd_limit;
mod file_values;
mod gateway;
mod health;
pub mod host_info;
pub mod identity;
mod joined;
mod local_instances;
mod logs;
mod metrics;
pub mod oci;
pub mod sim;
mod supervisor;
pub mod wasm;

pub use agent::{HostConfig, HostError, cleanup, run};
pub use container::network::{NetError, Subnet};
pub use container::userns::DEFAULT_BASE as USERNS_DEFAULT_BASE;
pub use gateway::ServerLimits;

/// The gateway's header parsing and routing table, for the fuzz targets in
/// `fuzz/` (feature `fuzzing`); not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use gateway::fuzzing;

/// Installs ring as rustls's process-wide crypto provider, once.
///
/// `oci-client` is built without a bundled TLS crypto provider (the default
/// one, aws-lc-rs, is a large C build); rustls then needs a process-wide
/// default, which is ring, the provider the rest of the tree already uses.
/// Installing fails harmlessly if one is already set. Called by the CLI at
/// start-up, and by the registry clients before they connect (so library
/// users need not remember it).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
