//! The one error type of the API's handlers: a status and an
//! [`ErrorBody`] that says what is wrong. Library errors become one here,
//! each with the status that fits it.

use crate::artifacts::ArtifactError;
use crate::backup::ImportError;
use crate::host_removal::RemoveHostError;
use crate::revisions::RevisionError;
use atoll_sdk::api::ErrorBody;
use atoll_sdk::spec::SpecErrors;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An API error: a status and a message, with details for Compose files.
pub(super) struct ApiError(StatusCode, ErrorBody);

pub(super) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub(crate) fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        ApiError(
            status,
            ErrorBody {
                error: msg.into(),
                details: vec![],
            },
        )
    }

    /// The server cannot do its part now (NATS, the buckets).
    pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, format!("{what}: {e}"))
    }

    pub(crate) fn no_app(name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no app named {name}"))
    }

    /// A Compose file that does not parse or validate: one detail line per
    /// problem, each naming its path and line.
    /// A deploy's secrets or configs could not be kept.
    pub(crate) fn secrets(e: crate::secrets::VaultError) -> Self {
        use crate::secrets::VaultError as V;
        let status = match e {
            V::Missing { .. } | V::TooLarge { .. } => StatusCode::BAD_REQUEST,
            V::NoKey(_) => StatusCode::CONFLICT,
            V::Bucket(_) | V::Cipher(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.to_string())
    }

    pub(crate) fn invalid_compose(errors: SpecErrors) -> Self {
        ApiError(
            StatusCode::BAD_REQUEST,
            ErrorBody {
                error: "invalid Compose file".into(),
                details: errors.0.iter().map(|e| e.to_string()).collect(),
            },
        )
    }
}

impl From<RevisionError> for ApiError {
    fn from(e: RevisionError) -> Self {
        let status = match &e {
            RevisionError::NoApp { .. } => StatusCode::NOT_FOUND,
            e if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            // Refused as it stands (a port taken, no such revision), or
            // raced by another change: the caller may try again.
            _ => StatusCode::CONFLICT,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<ArtifactError> for ApiError {
    fn from(e: ArtifactError) -> Self {
        let status = match e.is_unavailable() {
            true => StatusCode::SERVICE_UNAVAILABLE,
            false => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<crate::host_availability::AvailabilityError> for ApiError {
    fn from(e: crate::host_availability::AvailabilityError) -> Self {
        use crate::host_availability::AvailabilityError as E;
        let status = match e {
            E::NoHost { .. } => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<RemoveHostError> for ApiError {
    fn from(e: RemoveHostError) -> Self {
        let status = match &e {
            RemoveHostError::NoHost { .. } => StatusCode::NOT_FOUND,
            RemoveHostError::Up { .. } => StatusCode::CONFLICT,
            RemoveHostError::Encode { .. } | RemoveHostError::Record { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Invalid(_) => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
            // One line per app that would be overwritten.
            ImportError::Refused(ref why) => ApiError(
                StatusCode::CONFLICT,
                ErrorBody {
                    error: e.to_string(),
                    details: why.clone(),
                },
            ),
            ImportError::Ports { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            ImportError::Revision(e) => e.into(),
            ImportError::Write { .. } | ImportError::Encode(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}
