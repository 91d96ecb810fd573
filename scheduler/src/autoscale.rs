//! Autoscaling, in two parts that follow the house rule:
//!
//! - [`decide`]: the decision, pure — how many instances a service with
//!   `x-atoll.autoscale` should run, from the load it had lately, and the
//!   autoscaler's memory of that load between ticks (`Histories`).
//! - [`run`]: the I/O loop around it — every second, on the leader, it
//!   gathers each autoscaled service's load from the load board, asks
//!   [`decide`] for a count and writes a changed count to the scale bucket
//!   (the controller then places or stops instances to match). It also
//!   answers the gateways' wake-ups for services scaled to zero.

mod decide;
mod run;

pub(crate) use decide::replicas;
pub(crate) use run::run;
