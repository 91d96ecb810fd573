//! The atoll host agent.
//!
//! A host joins the cluster over NATS, heartbeats, watches its assignment
//! and makes what it runs match it ([`supervisor`]), and serves the
//! published ports of the whole cluster through its [`gateway`]. Drivers
//! run instances: [`wasm`] for components (wasmtime).

pub mod agent;
pub mod artifacts;
pub mod container;
pub mod gateway;
pub mod health;
pub mod host_info;
pub mod kv;
pub mod local;
pub mod logs;
pub mod metrics;
pub mod oci;
pub mod supervisor;
pub mod usage;
pub mod wasm;

pub use agent::{HostConfig, HostError, cleanup, run};
