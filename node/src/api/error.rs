//! The API's one error type and its single mapping to status codes and JSON bodies.

use crate::orchestrator::spec::FieldError;
use crate::orchestrator::OrchestratorError;
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
            OrchestratorError::AlreadyExists(_) | OrchestratorError::Conflict(_) => {
                StatusCode::CONFLICT
            }
            OrchestratorError::Bus(_) => StatusCode::SERVICE_UNAVAILABLE,
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.field {
            Some(field) => json!({ "error": self.message, "field": field }),
            None => json!({ "error": self.message }),
        };
        (self.status, Json(body)).into_response()
    }
}
