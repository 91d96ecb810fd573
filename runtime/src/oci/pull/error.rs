//! Pull errors, and the mapping from what `oci-client` and `reqwest` report
//! to an error that says which image, which registry and what went wrong.

use std::io;
use std::time::Duration;

use oci_client::errors::OciDistributionError;

use super::super::auth::AuthError;
use super::super::kind::KindError;
use super::super::platform::PlatformError;
use super::super::registry::{self, Problem};
use super::super::store::StoreError;

/// Why a pull failed. Each variant names the image or registry involved.
#[derive(thiserror::Error, Debug)]
pub enum PullError {
    #[error("invalid image reference {reference:?}: {message}")]
    BadReference { reference: String, message: String },
    #[error("cannot reach registry {registry}: {message}")]
    Unreachable { registry: String, message: String },
    #[error(
        "TLS connection to registry {registry} failed: {message} (if {registry} serves plain HTTP, start the host with --insecure-registry {registry})"
    )]
    Tls { registry: String, message: String },
    #[error("image {reference} not found in registry {registry}")]
    NotFound { reference: String, registry: String },
    #[error("not authorized to pull {reference} from {registry}: {message}")]
    Unauthorized {
        reference: String,
        registry: String,
        message: String,
    },
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error("image {reference} failed verification: {message}")]
    Digest { reference: String, message: String },
    #[error("image {reference}: blob {digest} is larger than the limit of {limit} bytes")]
    TooLarge {
        reference: String,
        digest: String,
        limit: u64,
    },
    #[error("registry {registry} failed while pulling {reference}: {message}")]
    Registry {
        reference: String,
        registry: String,
        message: String,
    },
    #[error("image {reference} cannot be run: {source}")]
    Kind {
        reference: String,
        source: KindError,
    },
    #[error("credentials for registry {registry}: {source}")]
    Credentials { registry: String, source: AuthError },
    #[error("image {reference}: the local blob store failed: {source}")]
    Store {
        reference: String,
        source: StoreError,
    },
    #[error("cannot set up the registry client: {message}")]
    Client { message: String },
}

/// What was being fetched, for errors whose meaning depends on it: a 404
/// for the manifest means the image does not exist, for a blob that the
/// registry is broken.
#[derive(Clone, Copy)]
pub(super) enum Fetching<'a> {
    Manifest,
    Blob(&'a str),
}

/// Names the image and registry an error is about.
pub(super) struct Context<'a> {
    pub reference: &'a str,
    pub registry: &'a str,
    pub timeout: Duration,
}

impl Context<'_> {
    pub(super) fn timed_out(&self, what: Fetching<'_>) -> PullError {
        let what = match what {
            Fetching::Manifest => "the manifest".to_owned(),
            Fetching::Blob(digest) => format!("blob {digest}"),
        };
        PullError::Unreachable {
            registry: self.registry.to_owned(),
            message: format!("no answer for {what} within {:?}", self.timeout),
        }
    }

    pub(super) fn oci(&self, err: OciDistributionError, what: Fetching<'_>) -> PullError {
        match err {
            OciDistributionError::IoError(err) => self.io(err),
            OciDistributionError::DigestError(err) => PullError::Digest {
                reference: self.reference.to_owned(),
                message: err.to_string(),
            },
            err => self.problem(registry::classify(&err), what),
        }
    }

    /// A blob stream's errors arrive as `io::Error`: `oci-client` wraps
    /// digest failures and `reqwest` body errors in it.
    pub(super) fn io(&self, err: io::Error) -> PullError {
        if let Some(inner) = err.get_ref()
            && let Some(digest) = inner.downcast_ref::<oci_client::errors::DigestError>()
        {
            return PullError::Digest {
                reference: self.reference.to_owned(),
                message: digest.to_string(),
            };
        }
        // Anything else failing under a blob stream is the transfer itself:
        // reqwest's body errors (connection reset, read timeout).
        self.problem(registry::transport(&err, true), Fetching::Manifest)
    }

    /// A registry problem as a pull error. A 404 for the manifest means
    /// the image does not exist; for a blob, that the registry is broken.
    fn problem(&self, problem: Problem, what: Fetching<'_>) -> PullError {
        let registry_error = |message: String| PullError::Registry {
            reference: self.reference.to_owned(),
            registry: self.registry.to_owned(),
            message,
        };
        match problem {
            Problem::Tls(message) => PullError::Tls {
                registry: self.registry.to_owned(),
                message,
            },
            Problem::Unreachable(message) => PullError::Unreachable {
                registry: self.registry.to_owned(),
                message,
            },
            Problem::Unauthorized(message) => PullError::Unauthorized {
                reference: self.reference.to_owned(),
                registry: self.registry.to_owned(),
                message,
            },
            Problem::NotFound(message) => match what {
                Fetching::Manifest => PullError::NotFound {
                    reference: self.reference.to_owned(),
                    registry: self.registry.to_owned(),
                },
                Fetching::Blob(digest) => {
                    registry_error(format!("blob {digest} is missing: {message}"))
                }
            },
            Problem::Failed(message) => registry_error(message),
        }
    }

    pub(super) fn store(&self, err: StoreError) -> PullError {
        match err {
            StoreError::DigestMismatch { .. } | StoreError::SizeMismatch { .. } => {
                PullError::Digest {
                    reference: self.reference.to_owned(),
                    message: err.to_string(),
                }
            }
            StoreError::TooLarge { digest, limit } => PullError::TooLarge {
                reference: self.reference.to_owned(),
                digest,
                limit,
            },
            StoreError::Read { source, .. } => self.io(source),
            StoreError::InvalidDigest { .. } => PullError::Registry {
                reference: self.reference.to_owned(),
                registry: self.registry.to_owned(),
                message: format!("the manifest names an unusable blob: {err}"),
            },
            other => PullError::Store {
                reference: self.reference.to_owned(),
                source: other,
            },
        }
    }
}
