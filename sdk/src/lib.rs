//! The shared language of atoll.
//!
//! Everything the control plane, the hosts and the CLI must agree on lives
//! here: the Compose application model and its validation ([`spec`]), the
//! cluster model of hosts, instances and assignments ([`cluster`]), the NATS
//! protocol ([`protocol`]), load samples and their rates ([`metrics`]), the
//! Prometheus text format ([`prometheus`]), artifact digests ([`digest`]),
//! the HTTP API's types ([`api`]) and the file of `atoll export`
//! ([`export`]). Behind features: a typed client of
//! the server API (`client`), and the cluster's JetStream buckets, their
//! in-memory mirrors and the NATS connection (`nats`; with `testing`, a
//! real nats-server for tests).
//!
//! The model needs no async runtime: decision code in the scheduler and the
//! runtime works on these plain types.

pub mod api;
pub mod auth;
pub mod base64_bytes;
pub mod cluster;
pub mod digest;
pub mod exec_session;
pub mod export;
pub mod metrics;
pub mod prometheus;
pub mod protocol;
pub mod spec;
pub mod timestamps;

#[cfg(feature = "client")]
pub mod client;

#[cfg(feature = "nats")]
pub mod nats;
