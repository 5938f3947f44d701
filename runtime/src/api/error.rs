//! The one error type of the HTTP API: `{"error": {"code", "message"}}` with the
//! fitting status. 4xx show their message; 5xx show a generic one and log the
//! real error inside the request's span.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use crate::sandbox::LoadError;
use crate::store::StoreError;

/// An API failure.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds for `Retry-After` on a 429 or 503 (1 unless set).
    retry_after: Option<u64>,
}

/// The body of every error answer; the CLI client reads the same type.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error's code and message.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`invalid_field`, `not_found`, ...).
    #[schema(value_type = String)]
    pub code: Cow<'static, str>,
    /// What went wrong, naming the field or limit.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    /// What went wrong, as the client is told it.
    pub fn message(&self) -> String {
        self.message.clone()
    }

    /// 400: a field breaks its rule (the message names field and rule).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_field", message)
    }

    /// 400: the body is not valid JSON (or not the expected shape).
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    /// 400: the uploaded module cannot run.
    pub fn invalid_module(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_module", message)
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or invalid bearer token")
    }

    /// 401 saying why (a signed request's signature, key or timestamp).
    pub fn unauthorized_because(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: the caller is known but may not do this (scope, operator-only);
    /// the message says what is needed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 413.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    /// 429: too many jobs waiting; retry later.
    pub fn queue_full(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", message)
    }

    /// `quota_exceeded`: a tenant's quota refuses this (the message names the
    /// quota and its value). The status says what helps: 400 (the request
    /// asks more than the tenant may ever have), 413 (a module too large), 409
    /// (stored modules at their quota: delete some first; waiting does not
    /// help), 429 (a rate or a count of waiting work: retry later).
    pub fn quota_exceeded(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, "quota_exceeded", message)
    }

    /// The same error with `Retry-After: secs` (at least 1).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// 503: a shared resource (the compiler) is busy; retry after a second.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message)
    }

    /// 503: a server-wide cap on concurrent requests of a kind is reached
    /// (the message names the setting); retry later.
    pub fn at_capacity(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "at_capacity", message)
    }

    /// 415.
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
    }

    /// 408: the request body did not arrive in time. The connection is closed
    /// after the answer (the rest of the body is never read).
    pub fn request_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", message)
    }

    /// 503: the node cannot serve this now (not ready, shutting down).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500: logged; the client sees a generic message.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
    }

    /// The same error with `prefix: ` before its message (e.g. `jobs[3]: ...`).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after =
            self.status == StatusCode::TOO_MANY_REQUESTS || self.status == StatusCode::SERVICE_UNAVAILABLE;
        let body = ErrorBody { error: ErrorDetail { code: self.code.into(), message: self.message } };
        let mut response = (self.status, Json(body)).into_response();
        if retry_after {
            let secs = self.retry_after.unwrap_or(1);
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from(secs));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The unread rest of the body would otherwise be parsed as the next request.
            response.headers_mut().insert("connection", axum::http::HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict(msg) => ApiError::conflict(msg),
            StoreError::Limit(msg) => ApiError::quota_exceeded(StatusCode::CONFLICT, msg),
            e @ StoreError::IdempotencyConflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                format!("{e}: a key may only be repeated with the same alias, payload and options"),
            ),
            other => ApiError::internal(other),
        }
    }
}

impl From<LoadError> for ApiError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::InvalidModule(reason) => ApiError::invalid_module(reason),
            e @ LoadError::TooLarge { .. } => ApiError::too_large(e.to_string()),
            e @ (LoadError::CompileTimeout(_) | LoadError::CompileFailed(_)) => {
                ApiError::invalid_module(e.to_string())
            }
            e @ LoadError::Busy { .. } => ApiError::busy(e.to_string()),
            e @ LoadError::Internal(_) => ApiError::internal(e),
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
