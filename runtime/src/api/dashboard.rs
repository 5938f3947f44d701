//! The dashboard at `/`: a single page (`assets/dashboard/`, built into the
//! binary: nothing from a CDN, works offline) that signs in with an API token
//! and then uses only the JSON API, so it can do exactly what the token may.
//!
//! Preact and htm (one vendored ES module, `scripts/vendor-dashboard.sh`)
//! give it components without a front-end build step: the files served are
//! the files in the repository. The pages are public (they hold no data);
//! every byte of data comes from `/v1` with the token.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ApiError, AppState};

const INDEX: &str = include_str!("../../assets/dashboard/index.html");

/// The page's files, by name under `/dashboard/`.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../assets/dashboard/app.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("../../assets/dashboard/app.css")),
    (
        "vendor/htm-preact.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard/vendor/htm-preact.js"),
    ),
];

/// Only this origin's scripts, styles and connections; never framed.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `/` and `/dashboard/*`.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/", get(index)).route("/dashboard/{*file}", get(asset))
}

async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => page(kind, body),
        None => ApiError::not_found(format!("no dashboard file {file:?}")).into_response(),
    }
}

fn page(kind: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Revalidated on every load: a new server version's page takes effect at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
