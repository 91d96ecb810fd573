//! The atoll control plane.
//!
//! Decisions are plain functions over plain data: [`placement`] chooses a
//! host for an instance, [`reconcile`] turns desired and observed state into
//! a [`reconcile::Plan`] of per-host assignments, [`endpoints`] and
//! [`views`] derive what gateways and users see. The I/O shells around
//! them are the HTTP [`api`], the [`cluster`] view fed by JetStream and
//! heartbeats, the [`controller`] loop that applies plans, and the
//! leader [`lease`].

pub mod api;
pub mod artifacts;
pub mod autoscale;
pub mod cas;
pub mod cluster;
pub mod controller;
pub mod endpoints;
pub mod host_removal;
pub mod lease;
pub mod load_board;
pub mod load_report;
pub mod observed;
pub mod placement;
pub mod reconcile;
pub mod revisions;
pub mod server;
pub mod snapshot;
pub mod telemetry;
pub mod views;

pub use server::{ServerConfig, ServerError, run};
