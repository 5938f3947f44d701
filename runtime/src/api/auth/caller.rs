//! [`Caller`], the identity of a request, and the extractors handlers take to
//! state what they need of it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::marker::PhantomData;

use super::super::ApiError;
use crate::domain::{Scope, TenantId};

/// Who sent a `/v1` request (set by the authentication middleware).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A tenant's token (also the single token and the no-token mode: admin of `default`).
    Tenant {
        /// Whose records the request reaches.
        tenant: TenantId,
        /// What it may do there.
        scope: Scope,
    },
    /// The operator token; it acts for the tenant named in `X-Wasmq-Tenant`, if any.
    Operator {
        /// The tenant it acts for (with admin scope).
        acting_as: Option<TenantId>,
    },
}

impl Caller {
    /// Whether it may see the cluster itself (nodes, `/metrics`, node and
    /// worker events): the operator; on a server with no operator token
    /// (`operator_configured` false), the admin of the `default` tenant, who runs it.
    pub fn sees_cluster(&self, operator_configured: bool) -> bool {
        match self {
            Caller::Operator { .. } => true,
            Caller::Tenant { tenant, scope } => {
                !operator_configured && *tenant == TenantId::default_tenant() && scope.allows(Scope::Admin)
            }
        }
    }
}

/// A scope a handler needs, as a type: [`Read`], [`Dispatch`], [`Admin`].
pub trait NeedsScope: Send + Sync + 'static {
    /// The least scope that passes.
    const SCOPE: Scope;
}

/// Reads: show, list, wait, events, status.
pub struct Read;
/// Dispatch, create jobs and batches, cancel, retry.
pub struct Dispatch;
/// Modules and aliases.
pub struct Admin;

impl NeedsScope for Read {
    const SCOPE: Scope = Scope::Read;
}
impl NeedsScope for Dispatch {
    const SCOPE: Scope = Scope::Dispatch;
}
impl NeedsScope for Admin {
    const SCOPE: Scope = Scope::Admin;
}

/// The tenant a request acts for, if its token has at least scope `S`;
/// else 403 naming the scope needed and the scope the token has.
pub struct Tenant<S: NeedsScope>(pub TenantId, PhantomData<S>);

impl<S: NeedsScope> Tenant<S> {
    /// The tenant.
    pub fn id(&self) -> &TenantId {
        &self.0
    }
}

impl<S: NeedsScope> std::ops::Deref for Tenant<S> {
    type Target = TenantId;

    fn deref(&self) -> &TenantId {
        &self.0
    }
}

fn caller(parts: &Parts) -> Result<&Caller, ApiError> {
    // Only routes behind the middleware take these extractors; a route that
    // forgot it must not act for anyone.
    parts.extensions.get::<Caller>().ok_or_else(ApiError::unauthorized)
}

impl<St: Send + Sync, S: NeedsScope> FromRequestParts<St> for Tenant<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ApiError> {
        match caller(parts)? {
            Caller::Tenant { tenant, scope } if scope.allows(S::SCOPE) => {
                Ok(Tenant(tenant.clone(), PhantomData))
            }
            Caller::Tenant { scope, .. } => Err(ApiError::forbidden(format!(
                "this operation needs a token with scope `{}`; this token has `{scope}`",
                S::SCOPE
            ))),
            Caller::Operator { acting_as: Some(tenant) } => Ok(Tenant(tenant.clone(), PhantomData)),
            Caller::Operator { acting_as: None } => Err(ApiError::forbidden(
                "the operator token acts for a tenant only when the X-Wasmq-Tenant header names it",
            )),
        }
    }
}

/// The operator (tenant management); any other caller gets 403.
pub struct Operator;

impl<St: Send + Sync> FromRequestParts<St> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ApiError> {
        match caller(parts)? {
            Caller::Operator { .. } => Ok(Operator),
            Caller::Tenant { .. } => Err(ApiError::forbidden("operator token required")),
        }
    }
}

/// Whoever may see the cluster itself (its nodes): the operator; on a server
/// with no operator token, the admin of the `default` tenant, who runs it.
/// A tenant's token on a shared server gets 403: the machines behind it are
/// the operator's.
pub struct ClusterReader;

impl FromRequestParts<crate::api::AppState> for ClusterReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &crate::api::AppState) -> Result<Self, ApiError> {
        let caller = caller(parts)?;
        if caller.sees_cluster(state.auth.has_operator()) {
            return Ok(ClusterReader);
        }
        match caller {
            Caller::Operator { .. } => Ok(ClusterReader),
            Caller::Tenant { .. } if state.auth.has_operator() => {
                Err(ApiError::forbidden("operator token required"))
            }
            Caller::Tenant { .. } => Err(ApiError::forbidden(
                "this operation needs the `default` tenant's admin token (or the operator token)",
            )),
        }
    }
}
