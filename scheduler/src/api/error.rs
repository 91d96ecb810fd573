//! The one error type of the API's handlers: a status and an
//! [`ErrorBody`] that says what is wrong.

use atoll_sdk::api::ErrorBody;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An API error: a status and a message, with details for Compose files.
pub(super) struct ApiError(pub StatusCode, pub ErrorBody);

impl ApiError {
    pub fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        ApiError(
            status,
            ErrorBody {
                error: msg.into(),
                details: vec![],
            },
        )
    }
    pub fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, format!("{what}: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

pub(super) type ApiResult<T> = Result<T, ApiError>;
