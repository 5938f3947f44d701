//! `/v1/tenants/{id}/keys`: the operator manages a tenant's signing keys, the
//! shared secrets of signed requests (`api::auth::signed`). The secret is
//! answered once, when the key is made, and kept sealed with the server's
//! secret box: verifying an HMAC needs it, so a hash would not do.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Operator;
use super::auth::signed::{MIN_SECRET_BYTES, seal_owner};
use super::error::ErrorBody;
use super::extract::ApiJson;
use super::tenant_views::check_name;
use super::{ApiError, ApiResult, AppState};
use crate::domain::{Scope, TenantId, time::now_ms, time::rfc3339};
use crate::store::{KeyCreate, KeyRecord};

/// Longest signing secret, bytes.
pub const MAX_SECRET_BYTES: usize = 1024;

/// `POST /v1/tenants/{id}/keys` (also what `wasmq key create` sends).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// What requests signed with it may do: `read`, `dispatch` (and read), `admin`.
    pub scope: Scope,
    /// A label (at most 100 characters).
    #[schema(max_length = 100)]
    pub name: Option<String>,
    /// The secret, if the operator chooses it (32 to 1024 bytes, no control
    /// characters; printable ASCII is what every client can send as it is);
    /// by default the server makes one (256 random bits, in hex).
    #[schema(min_length = 32, max_length = 1024, pattern = r"^[\x20-\x7E]+$")]
    pub secret: Option<String>,
}

/// A signing key as listed: never its secret.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// Its id: send it as `X-Wasmq-Key`.
    pub id: String,
    /// A label.
    pub name: Option<String>,
    /// What requests signed with it may do.
    pub scope: Scope,
    /// RFC 3339.
    pub created_at: String,
}

impl From<KeyRecord> for KeyView {
    fn from(k: KeyRecord) -> Self {
        Self { id: k.id, name: k.name, scope: k.scope, created_at: rfc3339(k.created_at) }
    }
}

/// A new signing key: the secret is shown here, once, and never again.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct KeyCreated {
    /// The secret: sign requests with HMAC-SHA256 keyed by its bytes.
    pub secret: String,
    /// The key as it will be listed.
    #[serde(flatten)]
    pub view: KeyView,
}

/// A fresh secret: `wqs_` and 64 hex digits (256 bits) from the OS CSPRNG.
fn new_secret() -> String {
    use chacha20poly1305::aead::OsRng;
    use chacha20poly1305::aead::rand_core::RngCore;
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("wqs_{}", hex::encode(bytes))
}

fn check_secret(secret: Option<String>) -> ApiResult<String> {
    let Some(secret) = secret else { return Ok(new_secret()) };
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret.len()) || secret.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(format!(
            "secret must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes without control characters, got {} bytes",
            secret.len()
        )));
    }
    Ok(secret)
}

fn parse_tenant(id: &str) -> ApiResult<TenantId> {
    TenantId::parse(id).map_err(|e| ApiError::invalid(e.to_string()))
}

/// Makes a signing key for the tenant. The answer holds the secret, once.
#[utoipa::path(post, path = "/v1/tenants/{id}/keys", tag = "tenants", operation_id = "createKey",
    params(("id" = String, Path, description = "The tenant's id.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    request_body = KeyRequest,
    responses((status = 201, description = "Created: the secret, shown this once.", body = KeyCreated),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody)))]
pub(super) async fn create_key(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<KeyRequest>,
) -> ApiResult<(StatusCode, Json<KeyCreated>)> {
    let tenant = parse_tenant(&id)?;
    let secret = check_secret(req.secret)?;
    let key_id = uuid::Uuid::now_v7().to_string();
    let create = KeyCreate {
        sealed: state.callback_secrets.seal(&secret, &seal_owner(&key_id)),
        id: key_id,
        tenant,
        scope: req.scope,
        name: check_name(req.name)?,
        now: now_ms(),
    };
    let record = state.store.key_create(create).await?;
    Ok((StatusCode::CREATED, Json(KeyCreated { secret, view: record.into() })))
}

/// The tenant's signing keys, oldest first, without their secrets.
#[utoipa::path(get, path = "/v1/tenants/{id}/keys", tag = "tenants", operation_id = "listKeys",
    params(("id" = String, Path, description = "The tenant's id.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    responses((status = 200, description = "Its signing keys, oldest first.", body = Vec<KeyView>),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list_keys(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<KeyView>>> {
    let keys = state.store.key_list(&parse_tenant(&id)?).await?;
    Ok(Json(keys.into_iter().map(Into::into).collect()))
}

/// Revokes a signing key: requests signed with it are refused from the next one on.
#[utoipa::path(delete, path = "/v1/tenants/{id}/keys/{key_id}", tag = "tenants", operation_id = "revokeKey",
    params(("id" = String, Path, description = "The tenant's id.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"),
           ("key_id" = String, Path, description = "The key's id.")),
    responses((status = 204, description = "Revoked."),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn revoke_key(
    State(state): State<AppState>,
    _: Operator,
    Path((id, key_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.store.key_revoke(&parse_tenant(&id)?, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_made_or_bounded() {
        let made = check_secret(None).unwrap();
        assert!(made.starts_with("wqs_") && made.len() == 4 + 64, "{made}");
        assert_ne!(made, check_secret(None).unwrap());
        assert!(
            format!("{:?}", check_secret(Some("x".repeat(31))).unwrap_err()).contains("32 to 1024 bytes")
        );
        assert!(check_secret(Some("x".repeat(1025))).is_err());
        assert!(check_secret(Some(format!("{}\n", "x".repeat(40)))).is_err());
        assert_eq!(check_secret(Some("x".repeat(32))).unwrap(), "x".repeat(32));
    }
}
