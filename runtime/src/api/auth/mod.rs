//! Authentication: every `/v1` request is resolved to one [`Caller`], put in
//! the request's extensions, and handlers state the scope they need with the
//! [`Tenant`] extractor (`Tenant<Read>`, `Tenant<Dispatch>`, `Tenant<Admin>`)
//! or ask for the [`Operator`]. Nothing else decides which tenant a request
//! acts for.
//!
//! Sources of identity, in order:
//! 1. the operator token: manages tenants, and acts as any tenant (admin
//!    scope) that it names in `X-Wasmq-Tenant`;
//! 2. the single token of one-tenant installs (`WASMQ_TOKEN`): admin of `default`;
//! 3. a tenant token from the store, by the blake3 hash of its secret
//!    ([`tokens::TokenCache`] keeps recent lookups for a second);
//! 4. with no token, no operator token and no `WASMQ_SECRET` configured
//!    (loopback only), every request is admin of `default`.
//!
//! A request that carries `X-Wasmq-Key` and `X-Wasmq-Signature` instead of a
//! bearer token is verified by [`signed`] (HMAC-SHA256 of timestamp, method,
//! path and body with the key's secret; a 5-minute window; each signature
//! accepted once).
//!
//! Configured tokens are kept only as blake3 hashes, and `blake3::Hash`
//! equality is constant-time, so neither memory dumps nor timing reveal them.

mod caller;
pub mod signed;
pub mod tokens;

pub use caller::{Admin, Caller, ClusterReader, Dispatch, NeedsScope, Operator, Read, Tenant};
pub use tokens::{TokenCache, new_secret};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderName};
use axum::middleware::Next;
use axum::response::Response;

use super::{ApiError, AppState};
use crate::domain::{Scope, TenantId, time::now_ms};

/// The header an operator names the tenant it acts for with.
pub const TENANT_HEADER: HeaderName = HeaderName::from_static("x-wasmq-tenant");

/// Who may authenticate, as configured: hashes of the configured tokens, and
/// the store's tokens behind a short cache.
pub struct Authenticator {
    operator: Option<blake3::Hash>,
    single: Option<blake3::Hash>,
    /// Recent store lookups; revoke and tenant delete clear their entries.
    pub cache: TokenCache,
    /// The secret of the signing key `default` (`WASMQ_SECRET`), if configured.
    pub(super) default_key: Option<Vec<u8>>,
    /// Signatures accepted within the window (replays are refused).
    pub signatures: signed::SeenSignatures,
}

impl Authenticator {
    /// From the configured secrets (`None`: not configured).
    pub fn new(operator_token: Option<&str>, single_token: Option<&str>) -> Self {
        let hash = |t: &str| blake3::hash(t.trim().as_bytes());
        Self {
            operator: operator_token.map(hash),
            single: single_token.map(hash),
            cache: TokenCache::default(),
            default_key: None,
            signatures: signed::SeenSignatures::default(),
        }
    }

    /// With `secret` (`WASMQ_SECRET`) as the signing key `default`: admin of
    /// the `default` tenant.
    pub fn with_default_key(mut self, secret: Option<&str>) -> Self {
        self.default_key = secret.map(|s| s.trim().as_bytes().to_vec());
        self
    }

    /// Whether an operator token is configured (else the server has one
    /// tenant that matters, `default`, and its admin runs the server).
    pub fn has_operator(&self) -> bool {
        self.operator.is_some()
    }

    /// Whether nothing is configured (loopback-only, everyone admin of `default`).
    fn open(&self) -> bool {
        self.operator.is_none() && self.single.is_none() && self.default_key.is_none()
    }
}

/// The middleware: resolves the caller or answers 401.
pub(super) async fn authenticate(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (caller, mut req) = if !state.auth.open() && signed::is_signed(req.headers()) {
        signed::verify(&state, req).await?
    } else {
        (resolve(&state, req.headers()).await?, req)
    };
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let auth = &state.auth;
    if auth.open() {
        return Ok(Caller::Tenant { tenant: TenantId::default_tenant(), scope: Scope::Admin });
    }
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| blake3::hash(t.trim().as_bytes()))
        .ok_or_else(ApiError::unauthorized)?;
    if auth.operator == Some(presented) {
        return operator(state, headers).await;
    }
    if auth.single == Some(presented) {
        return Ok(Caller::Tenant { tenant: TenantId::default_tenant(), scope: Scope::Admin });
    }
    match auth.cache.lookup(state.store.as_ref(), &presented, now_ms()).await? {
        Some(grant) => Ok(Caller::Tenant { tenant: grant.tenant, scope: grant.scope }),
        None => Err(ApiError::unauthorized()),
    }
}

/// The operator, acting for the tenant its `X-Wasmq-Tenant` names (which must exist).
async fn operator(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let Some(value) = headers.get(TENANT_HEADER) else {
        return Ok(Caller::Operator { acting_as: None });
    };
    let id = value.to_str().ok().and_then(|v| TenantId::parse(v.trim()).ok()).ok_or_else(|| {
        ApiError::invalid("X-Wasmq-Tenant must name a tenant id ([a-z0-9][a-z0-9._-]{0,63})")
    })?;
    state.store.tenant_get(&id).await?;
    Ok(Caller::Operator { acting_as: Some(id) })
}
