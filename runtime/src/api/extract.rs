//! Extractors that answer with the API's error shape, naming the offending field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body. Wrong content type -> 415, too large -> 413, bad JSON or a field
/// of the wrong type -> 400 naming the field (`priority: invalid type: ...`).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
        if !is_json {
            return Err(ApiError::unsupported_media("expected Content-Type: application/json"));
        }
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Reads the body, mapping the size limit to 413 and the body deadline to 408.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if let Some(timeout) = super::guard::is_body_timeout(&e) {
            ApiError::request_timeout(format!(
                "the request body was not received within the body timeout ({})",
                humantime::format_duration(timeout.0)
            ))
        } else if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!("request body exceeds the limit: {e}"))
        } else {
            ApiError::malformed(format!("could not read the request body: {e}"))
        }
    })
}

/// Deserializes JSON, naming the path of the field that fails.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = if path == "." { inner.to_string() } else { format!("{path}: {inner}") };
        if inner.is_data() { ApiError::invalid(msg) } else { ApiError::malformed(msg) }
    })?;
    de.end().map_err(|e| ApiError::malformed(format!("trailing characters after the JSON value: {e}")))?;
    Ok(value)
}

/// Query parameters, with errors naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|e| {
            let path = e.path().to_string();
            ApiError::invalid(format!("query parameter {path}: {}", e.into_inner()))
        })
    }
}

/// The request's W3C trace context (`traceparent` and `tracestate`), if it
/// has one (see `traces::incoming`).
pub struct TraceContext(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for TraceContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(TraceContext(crate::traces::incoming(&parts.headers)))
    }
}
