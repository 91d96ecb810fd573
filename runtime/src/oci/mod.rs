//! Support for running OCI container images.
//!
//! The OCI driver pulls images into a content-addressed store and runs them
//! through an OCI runtime binary (youki by default). This module holds the
//! pieces that do not need a runtime: [`unpack`] turns an image's layer blobs
//! into a root filesystem without letting a hostile image write outside it.
//! [`pull`] fetches images into the host's [`store`], choosing the host's
//! [`platform`] and taking credentials from [`auth`]; [`kind`] tells a Wasm
//! component from a container image. [`push`] publishes components and
//! image layouts to registries; [`layout`] imports layouts and `docker save`
//! archives into the store for hosts without a registry.

pub mod auth;
pub mod kind;
pub mod layout;
pub mod network;
pub mod platform;
pub mod pull;
pub mod push;
pub mod registry;
pub mod rootfs;
pub mod runtime_spec;
pub mod store;
pub mod unpack;
pub mod youki;
