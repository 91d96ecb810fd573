//! The atoll control plane: `atoll server`.
//!
//! Its public surface is [`run`] and its [`ServerConfig`] (and
//! [`ServerError`]); everything else is internal to the crate.
//!
//! Decisions are plain functions over plain data: [`placement`] chooses a
//! host for an instance (and checks published ports across the cluster),
//! [`reconcile`] turns desired and observed state into a
//! [`reconcile::Plan`] of per-host assignments, [`autoscale`] decides
//! replica counts from the [`load_board`], [`disconnect`] and
//! [`mass_loss`] say what a silent host's instances are taken for, and
//! [`endpoints`], [`views`]
//! and [`load_report`] derive what gateways and users see. Around them are
//! the I/O shells: the HTTP [`api`], the [`cluster`] view fed by JetStream
//! and heartbeats, [`revisions`] (the one writer of desired state),
//! [`backup`] (export and import of desired state), the
//! [`controller`] loop that applies plans, the autoscaler's loop and the
//! leader [`lease`].

mod api;
pub mod api_serve;
mod artifacts;
mod auth;
mod autoscale;
mod backup;
mod cas;
mod cluster;
mod controller;
mod disconnect;
mod dry_run;
mod endpoints;
mod grants;
mod host_availability;
mod host_removal;
mod host_requests;
pub mod identity;
mod lease;
mod load_board;
mod load_report;
mod lost_state;
mod mass_loss;
mod observed;
mod placement;
pub mod policy;
mod reconcile;
mod revisions;
mod secrets;
mod server;
mod servers;
mod snapshot;
mod telemetry;
mod tls_listener;
mod views;
mod vips;

pub use api_serve::ApiLimits;
pub use server::{ServerConfig, ServerError, run};
