//! What pulling and pushing share: the registry client, the credentials,
//! and telling what went wrong with a registry call. [`classify`] is a
//! plain function over the client's error; [`pull`](super::pull) and
//! [`push`](super::push) turn its [`Problem`] into their own errors.

use std::error::Error as StdError;
use std::io;
use std::path::Path;
use std::time::Duration;

use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use super::auth::{self, AuthError};

/// A client that speaks plain HTTP only to `insecure` registries, with
/// every connect and read bounded by `timeout`. One per operation: it
/// caches credentials per registry forever, and the docker config may
/// change between operations.
pub fn client(
    insecure: &[String],
    timeout: Duration,
) -> Result<Client, oci_client::errors::OciDistributionError> {
    Client::try_from(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(insecure.to_vec()),
        platform_resolver: None,
        connect_timeout: Some(timeout),
        read_timeout: Some(timeout),
        ..ClientConfig::default()
    })
}

/// Credentials for `registry` from a docker config file; anonymous
/// without one.
pub fn credentials(
    docker_config: Option<&Path>,
    registry: &str,
) -> Result<RegistryAuth, AuthError> {
    match docker_config {
        Some(path) => auth::load(path, registry),
        None => Ok(RegistryAuth::Anonymous),
    }
}

/// What went wrong with a registry call, with the message to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A TLS handshake or certificate check failed (often: HTTPS to a
    /// registry that only serves plain HTTP).
    Tls(String),
    /// Connect, DNS, timeout or a broken transfer.
    Unreachable(String),
    Unauthorized(String),
    /// The registry has no such manifest, blob or repository.
    NotFound(String),
    /// Anything else: the registry answered, wrongly.
    Failed(String),
}

/// Classifies an error of the registry client.
pub fn classify(err: &OciDistributionError) -> Problem {
    match err {
        OciDistributionError::RequestError(err) => {
            let unreachable =
                err.is_timeout() || err.is_connect() || err.is_request() || err.is_body();
            transport(err, unreachable)
        }
        OciDistributionError::IoError(err) => transport(err, true),
        OciDistributionError::RegistryError { envelope, .. } => {
            let message = envelope.to_string();
            let codes = || envelope.errors.iter().map(|e| &e.code);
            if codes().any(|code| {
                matches!(
                    code,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) {
                Problem::NotFound(message)
            } else if codes()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                Problem::Unauthorized(message)
            } else {
                Problem::Failed(message)
            }
        }
        OciDistributionError::ServerError { code, message, .. } => match code {
            404 => Problem::NotFound(message.clone()),
            401 | 403 => Problem::Unauthorized(format!("HTTP {code}")),
            _ => Problem::Failed(format!("HTTP {code}: {}", message.trim())),
        },
        OciDistributionError::UnauthorizedError { .. } => {
            Problem::Unauthorized("the registry answered 401; check the docker config".to_owned())
        }
        OciDistributionError::AuthenticationFailure(message) => {
            Problem::Unauthorized(message.clone())
        }
        other => Problem::Failed(other.to_string()),
    }
}

/// A transport failure: TLS when rustls is in the chain, otherwise
/// unreachable (when `unreachable`) or the registry's fault.
pub fn transport(err: &(dyn StdError + 'static), unreachable: bool) -> Problem {
    let message = chain(err);
    if is_tls(err) {
        Problem::Tls(message)
    } else if unreachable {
        Problem::Unreachable(message)
    } else {
        Problem::Failed(message)
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
/// check.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16, message: &str) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: "https://r.example/v2/app/manifests/1".into(),
            message: message.into(),
        }
    }

    #[test]
    fn http_answers_are_classified_by_status() {
        assert_eq!(
            classify(&server(404, "gone")),
            Problem::NotFound("gone".into())
        );
        assert_eq!(
            classify(&server(403, "no")),
            Problem::Unauthorized("HTTP 403".into())
        );
        assert_eq!(
            classify(&server(500, " boom\n")),
            Problem::Failed("HTTP 500: boom".into())
        );
        let unauthorized = OciDistributionError::UnauthorizedError {
            url: "https://r.example/v2/".into(),
        };
        assert!(matches!(classify(&unauthorized), Problem::Unauthorized(_)));
    }

    #[test]
    fn transport_errors_are_unreachable_unless_tls() {
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            transport(&refused, true),
            Problem::Unreachable("refused".into())
        );
        assert_eq!(
            transport(&refused, false),
            Problem::Failed("refused".into())
        );
        let tls = io::Error::other(rustls::Error::General("bad record".into()));
        assert!(matches!(transport(&tls, true), Problem::Tls(_)));
    }
}
