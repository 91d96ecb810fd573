//! OCI images: getting them onto a host and knowing what they are.
//!
//! Nothing here runs a container (that is [`crate::container`]). [`pull`]
//! fetches images from registries into the host's content-addressed
//! [`store`], choosing the host's [`platform`] and taking credentials from
//! [`auth`]; [`kind`] tells a Wasm component from a container image;
//! [`unpack`] turns an image's layer blobs into a root filesystem without
//! letting a hostile image write outside it. [`push`] publishes components
//! and image layouts to registries; [`layout`] imports layouts and `docker
//! save` archives into the store for hosts without a registry; [`registry`]
//! names and reaches registries.

pub(crate) mod auth;
pub mod kind;
pub mod layout;
pub mod platform;
pub mod pull;
pub mod push;
pub(crate) mod registry;
pub mod store;
pub mod unpack;
