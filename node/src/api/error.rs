//! The API's one error type and its single mapping to status codes and JSON bodies.

use crate::orchestrator::spec::FieldError;
use crate::orchestrator::OrchestratorError;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
}

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: what.to_string(),
            field: None,
        }
    }

    /// A request the extractors refused before a handler ran (a body over the size limit, a
    /// path segment that is not UTF-8): the same JSON error as every other, naming the part.
    pub fn rejected(status: StatusCode, field: &str, message: String) -> Self {
        Self {
            status,
            message: format!("{field}: {message}"),
            field: Some(field.to_string()),
        }
    }

    /// A refusal about one part of the request (`field` names it: a body field or a header).
    pub fn with_field(status: StatusCode, message: &str, field: &str) -> Self {
        Self {
            status,
            message: message.to_string(),
            field: Some(field.to_string()),
        }
    }

    pub fn method_not_allowed() -> Self {
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "method not allowed on this path".into(),
            field: None,
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: e.to_string(),
            field: Some(e.field),
        }
    }
}

impl From<OrchestratorError> for ApiError {
    fn from(e: OrchestratorError) -> Self {
        let status = match &e {
            OrchestratorError::Invalid(f) => return f.clone().into(),
            OrchestratorError::NotFound(_) => StatusCode::NOT_FOUND,
            OrchestratorError::AlreadyExists(_)
            | OrchestratorError::Conflict(_)
            | OrchestratorError::Busy { .. } => StatusCode::CONFLICT,
            OrchestratorError::Bus(_) | OrchestratorError::Unrecorded(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            OrchestratorError::Store(why) => {
                // The database's own message stays in the log, not in the response.
                tracing::error!("metrics store: {why}");
                return Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "the orchestrator's metrics store failed; see its log".into(),
                    field: None,
                };
            }
        };
        Self {
            status,
            message: e.to_string(),
            field: None,
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        Self::rejected(r.status(), "body", r.body_text())
    }
}

/// A test's ID from the path, refused as a JSON error (axum's own rejection is plain text).
pub struct TestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TestId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(TestId(id)),
            Err(r) => Err(ApiError::rejected(r.status(), "id", r.body_text())),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.field {
            Some(field) => json!({ "error": self.message, "field": field }),
            None => json!({ "error": self.message }),
        };
        (self.status, Json(body)).into_response()
    }
}
