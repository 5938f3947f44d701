//! Bearer-token authentication. The token is kept only as its blake3 hash, and
//! `blake3::Hash` equality is constant-time, so neither memory dumps nor timing
//! reveal it.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::{ApiError, AppState};

pub(super) async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(expected) = state.token_hash {
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| blake3::hash(t.trim().as_bytes()));
        if presented != Some(expected) {
            return Err(ApiError::unauthorized());
        }
    }
    Ok(next.run(req).await)
}
