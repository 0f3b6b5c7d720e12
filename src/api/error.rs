//! Why a registry API request fails, and how each transport says it: one
//! exhaustive mapping to an HTTP status with a JSON body and to a gRPC status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The one body of every 404: an unknown server and a server the caller may
/// not see are answered alike, so existence does not leak.
pub const NOT_FOUND_MESSAGE: &str = "no such server";

/// A failed registry API request.
#[derive(Debug)]
pub enum ApiError {
    /// No credential or an invalid one; carries the `WWW-Authenticate`
    /// challenge (RFC 6750, with the RFC 9728 `resource_metadata`).
    Unauthenticated { challenge: String, message: String },
    /// A request parameter is malformed; `param` names it.
    BadRequest {
        param: &'static str,
        message: String,
    },
    /// The caller may not ask this (for example about another identity).
    Forbidden(String),
    /// Unknown or not visible to the caller.
    NotFound,
}

impl ApiError {
    /// A bad value of the parameter `param`.
    pub fn bad(param: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            param,
            message: message.into(),
        }
    }

    fn parts(&self) -> (StatusCode, serde_json::Value) {
        match self {
            ApiError::Unauthenticated { message, .. } => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "unauthenticated", "message": message}),
            ),
            ApiError::BadRequest { param, message } => (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_parameter", "parameter": param,
                       "message": format!("{param}: {message}")}),
            ),
            ApiError::Forbidden(message) => (
                StatusCode::FORBIDDEN,
                json!({"error": "forbidden", "message": message}),
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                json!({"error": "not_found", "message": NOT_FOUND_MESSAGE}),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.parts();
        let mut r = (status, axum::Json(body)).into_response();
        if let ApiError::Unauthenticated { challenge, .. } = &self
            && let Ok(v) = HeaderValue::from_str(challenge)
        {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        let message = e.parts().1["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match e {
            ApiError::Unauthenticated { challenge, .. } => {
                let mut s = tonic::Status::unauthenticated(message);
                if let Ok(v) = challenge.parse() {
                    s.metadata_mut().insert("www-authenticate", v);
                }
                s
            }
            ApiError::BadRequest { .. } => tonic::Status::invalid_argument(message),
            ApiError::Forbidden(_) => tonic::Status::permission_denied(message),
            ApiError::NotFound => tonic::Status::not_found(message),
        }
    }
}
