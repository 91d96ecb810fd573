//! Pull errors, and the mapping from what `oci-client` and `reqwest` report
//! to an error that says which image, which registry and what went wrong.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciErrorCode};

use super::super::auth::AuthError;
use super::super::kind::KindError;
use super::super::platform::PlatformError;
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
        let registry_error = |message: String| PullError::Registry {
            reference: self.reference.to_owned(),
            registry: self.registry.to_owned(),
            message,
        };
        let unauthorized = |message: String| PullError::Unauthorized {
            reference: self.reference.to_owned(),
            registry: self.registry.to_owned(),
            message,
        };
        let not_found = |message: String| match what {
            Fetching::Manifest => PullError::NotFound {
                reference: self.reference.to_owned(),
                registry: self.registry.to_owned(),
            },
            Fetching::Blob(digest) => {
                registry_error(format!("blob {digest} is missing: {message}"))
            }
        };
        match err {
            OciDistributionError::RequestError(err) => {
                let unreachable =
                    err.is_timeout() || err.is_connect() || err.is_request() || err.is_body();
                self.transport(&err, unreachable)
            }
            OciDistributionError::IoError(err) => self.io(err),
            OciDistributionError::RegistryError { envelope, .. } => {
                let message = envelope.to_string();
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                if codes.iter().any(|code| {
                    matches!(
                        code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                            | OciErrorCode::BlobUnknown
                    )
                }) {
                    not_found(message)
                } else if codes
                    .iter()
                    .any(|code| matches!(code, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    unauthorized(message)
                } else {
                    registry_error(message)
                }
            }
            OciDistributionError::ServerError { code, message, .. } => match code {
                404 => not_found(message),
                401 | 403 => unauthorized(format!("HTTP {code}")),
                _ => registry_error(format!("HTTP {code}: {}", message.trim())),
            },
            OciDistributionError::UnauthorizedError { .. } => {
                unauthorized("the registry answered 401; check the docker config".to_owned())
            }
            OciDistributionError::AuthenticationFailure(message) => unauthorized(message),
            OciDistributionError::DigestError(err) => PullError::Digest {
                reference: self.reference.to_owned(),
                message: err.to_string(),
            },
            other => registry_error(other.to_string()),
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
        self.transport(&err, true)
    }

    /// A transport failure: TLS when rustls is in the chain, otherwise the
    /// registry is unreachable (connect, DNS, timeout, broken transfer) or,
    /// for anything else, at fault.
    fn transport(&self, err: &(dyn StdError + 'static), unreachable: bool) -> PullError {
        let message = chain(err);
        if is_tls(err) {
            return PullError::Tls {
                registry: self.registry.to_owned(),
                message,
            };
        }
        if unreachable {
            return PullError::Unreachable {
                registry: self.registry.to_owned(),
                message,
            };
        }
        PullError::Registry {
            reference: self.reference.to_owned(),
            registry: self.registry.to_owned(),
            message,
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

/// An error's message followed by its sources, skipping repeats (hyper and
/// reqwest often repeat their inner error in their own message).
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(err) = current {
        let text = err.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = source_of(err);
    }
    parts.join(": ")
}

/// Like `Error::source`, but steps into an `io::Error`'s payload, which
/// `io::Error::source` skips (that is where rustls errors sit).
fn source_of<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    if let Some(io_err) = err.downcast_ref::<io::Error>()
        && let Some(inner) = io_err.get_ref()
    {
        return Some(inner);
    }
    err.source()
}

/// Whether a transport error is a failed TLS handshake or certificate
/// check, e.g. speaking HTTPS to a registry that only serves plain HTTP.
fn is_tls(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        current = source_of(err);
    }
    false
}
