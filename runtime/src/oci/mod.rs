//! Support for running OCI container images.
//!
//! The OCI driver pulls images into a content-addressed store and runs them
//! through an OCI runtime binary (youki by default). This module holds the
//! pieces that do not need a runtime: [`unpack`] turns an image's layer blobs
//! into a root filesystem without letting a hostile image write outside it.

pub mod unpack;
