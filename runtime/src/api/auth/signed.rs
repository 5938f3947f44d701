//! Signed requests, for systems that share a secret with wasmq instead of
//! holding a bearer token: `X-Wasmq-Key: <key id>` and
//! `X-Wasmq-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<METHOD>.<path>.<body>")>`.
//!
//! - `<path>` is the request target as sent: the path and, if there is one,
//!   `?` and the query string (`/v1/jobs/abc/wait?timeout_ms=5000`). The
//!   query is signed too, or a man in the middle could change it.
//! - The timestamp must be within [`WINDOW_S`] of the server's clock, in
//!   either direction, and a signature is accepted once: replays within the
//!   window are refused ([`SeenSignatures`]); older ones fall outside it.
//! - The body is buffered to be verified, bounded by the route's body limit
//!   (413 beyond it), then handed on to the handler unchanged.
//! - Keys: `default` is the server's `WASMQ_SECRET` (admin of the `default`
//!   tenant); the others are the operator's, per tenant and scope
//!   (`/v1/tenants/{id}/keys`), their secrets sealed at rest with the server's
//!   secret box and opened here, per request, so a revoked key fails at once.
//! - MACs are compared in constant time (`hmac`'s `verify_slice`).

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use super::super::{ApiError, AppState};
use super::Caller;
use crate::domain::{Scope, TenantId, time::now_ms};

/// The header naming the signing key.
pub const KEY_HEADER: HeaderName = HeaderName::from_static("x-wasmq-key");
/// The header carrying the signature.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-wasmq-signature");
/// How far a signature's timestamp may be from the server's clock, seconds
/// (either direction).
pub const WINDOW_S: i64 = 300;
/// The id of the key `WASMQ_SECRET` gives (admin of the `default` tenant).
pub const DEFAULT_KEY_ID: &str = "default";
/// Longest key id accepted in `X-Wasmq-Key` (ids are UUIDs or `default`);
/// a longer one is refused before any lookup, and never echoed.
pub const MAX_KEY_ID: usize = 64;
/// Shortest signing secret, bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// The message of the 401 a replayed signature gets: nothing was done, so a
/// client may sign the same request afresh (a later timestamp) and resend it.
pub const REPLAY_MESSAGE: &str = "this signature was used already (a replay): sign every request afresh";
/// Signatures remembered at most per tenant (about 330 signed requests a
/// second, sustained over the window); beyond, that tenant's signed requests
/// get 429 until its oldest leave the window. Per tenant, so that one tenant
/// (any holder of a valid key can fill its own share) never blocks another's
/// signed requests; memory stays bounded by the tenants the operator made.
const MAX_SEEN: usize = 100_000;

/// What the secret box binds a key's sealed secret to (its id, in its own
/// namespace: a sealed callback secret does not open as a key).
pub fn seal_owner(key_id: &str) -> String {
    format!("signing-key:{key_id}")
}

fn mac(secret: &[u8], t: i64, method: &str, path: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    for part in [t.to_string().as_bytes(), method.as_bytes(), path.as_bytes()] {
        mac.update(part);
        mac.update(b".");
    }
    mac.update(body);
    mac
}

/// The `X-Wasmq-Signature` value of a request, from the same MAC `verify`
/// checks: what the `wasmq` client's signer (and the tests) send.
pub fn sign(secret: &[u8], t: i64, method: &str, path: &str, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, method, path, body).finalize().into_bytes()))
}

/// The signatures seen within the window, so each is accepted once. In
/// memory, on this node; where several nodes share the store
/// ([`Store::shared`](crate::store::Store::shared)) each accepted tag is also
/// recorded there, so a replay sent to another node is refused too.
pub struct SeenSignatures {
    inner: Mutex<HashMap<TenantId, Seen>>,
    /// Signatures kept at most per tenant ([`MAX_SEEN`]).
    max: usize,
}

impl Default for SeenSignatures {
    fn default() -> Self {
        Self::with_capacity(MAX_SEEN)
    }
}

#[derive(Default)]
struct Seen {
    set: HashSet<[u8; 32]>,
    /// The same signatures by when they leave the window (unix seconds).
    by_expiry: BTreeSet<(i64, [u8; 32])>,
}

/// Why [`SeenSignatures::first_use`] refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Reuse {
    /// Seen before, within the window.
    Replay,
    /// The set is full of signatures still in the window.
    Full,
}

impl SeenSignatures {
    /// Remembering at most `max` signatures at once.
    pub fn with_capacity(max: usize) -> Self {
        Self { inner: Mutex::default(), max }
    }

    /// Records `tag` of a request of `tenant`, valid until `expires` (unix
    /// seconds); refuses a tag already seen. Forgets the tenant's tags whose
    /// window ended before `now`.
    pub fn first_use(&self, tenant: &TenantId, tag: [u8; 32], expires: i64, now: i64) -> Result<(), Reuse> {
        let mut all = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Tenants with nothing in the window hold no memory.
        if all.len() > 1 && all.values().any(|s| s.by_expiry.last().is_some_and(|&(at, _)| at < now)) {
            all.retain(|_, s| s.by_expiry.last().is_some_and(|&(at, _)| at >= now));
        }
        let seen = all.entry(tenant.clone()).or_default();
        while let Some(&(at, old)) = seen.by_expiry.first() {
            if at >= now {
                break;
            }
            seen.by_expiry.pop_first();
            seen.set.remove(&old);
        }
        if seen.set.contains(&tag) {
            return Err(Reuse::Replay);
        }
        if seen.set.len() >= self.max {
            return Err(Reuse::Full);
        }
        seen.set.insert(tag);
        seen.by_expiry.insert((expires, tag));
        Ok(())
    }
}

/// Whether the request presents a signature (or half of one).
pub(super) fn is_signed(headers: &HeaderMap) -> bool {
    headers.contains_key(KEY_HEADER) || headers.contains_key(SIGNATURE_HEADER)
}

/// Verifies a signed request; returns its caller and the request with its
/// body buffered back in.
pub(super) async fn verify(state: &AppState, req: Request) -> Result<(Caller, Request), ApiError> {
    let headers = req.headers();
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        return Err(ApiError::unauthorized_because(
            "send either a bearer token or a signature (X-Wasmq-Key and X-Wasmq-Signature), not both",
        ));
    }
    let header = |name: &HeaderName| {
        headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).ok_or_else(|| {
            ApiError::unauthorized_because(format!(
                "a signed request needs both X-Wasmq-Key and X-Wasmq-Signature; {name} is missing or not text"
            ))
        })
    };
    let key_id = header(&KEY_HEADER)?.to_string();
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID {
        return Err(ApiError::unauthorized_because(format!(
            "X-Wasmq-Key must be a key id of 1 to {MAX_KEY_ID} characters, got {}",
            key_id.len()
        )));
    }
    let (t, tag) = parse(header(&SIGNATURE_HEADER)?)?;
    let (tenant, scope, secret) = secret_of(state, &key_id).await?;
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or_else(|| parts.uri.path(), |p| p.as_str()).to_string();
    let bytes = buffer(body, body_limit(state, &parts.method, parts.uri.path()), &parts.headers).await?;
    mac(&secret, t, parts.method.as_str(), &path, &bytes).verify_slice(&tag).map_err(|_| {
        ApiError::unauthorized_because(
            "the signature does not match: it must be hex HMAC-SHA256(secret, \"<t>.<METHOD>.<path?query>.<body>\") \
             with this key's secret",
        )
    })?;
    let now = now_ms().div_euclid(1000);
    // Saturating: a correctly signed `t` near i64::MIN or MAX is refused as
    // old or future, not an overflow.
    let age = now.saturating_sub(t);
    if age > WINDOW_S {
        return Err(ApiError::unauthorized_because(format!(
            "signature timestamp is {age} s old; the window is {WINDOW_S} s"
        )));
    }
    if age.saturating_neg() > WINDOW_S {
        return Err(ApiError::unauthorized_because(format!(
            "signature timestamp is {} s in the future; the window is {WINDOW_S} s (check the clocks)",
            age.saturating_neg()
        )));
    }
    let tag: [u8; 32] = tag.try_into().expect("a verified SHA-256 tag is 32 bytes");
    match state.auth.signatures.first_use(&tenant, tag, t.saturating_add(WINDOW_S), now) {
        Ok(()) => {}
        Err(Reuse::Replay) => return Err(ApiError::unauthorized_because(REPLAY_MESSAGE)),
        Err(Reuse::Full) => {
            return Err(ApiError::quota_exceeded(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "this tenant sent more than {} signed requests within the {WINDOW_S} s replay window; \
                     retry in a few seconds",
                    state.auth.signatures.max
                ),
            )
            .retry_after(5));
        }
    }
    if state.store.shared() {
        let expires_ms = t.saturating_add(WINDOW_S).saturating_mul(1000);
        if !state.store.signature_first_use(&tenant, &hex::encode(tag), expires_ms).await? {
            return Err(ApiError::unauthorized_because(REPLAY_MESSAGE));
        }
    }
    Ok((Caller::Tenant { tenant, scope }, Request::from_parts(parts, Body::from(bytes))))
}

/// `t=<unix seconds>,v1=<64 hex digits>`. Each part at most once: with two
/// timestamps or two signatures it is ambiguous which one was verified, so
/// such a header is refused. Unknown parts (a later version) are ignored.
fn parse(value: &str) -> Result<(i64, Vec<u8>), ApiError> {
    let (mut t, mut v1): (Option<&str>, Option<&str>) = (None, None);
    for part in value.split(',') {
        let Some((name, v)) = part.trim().split_once('=') else { continue };
        let slot = match name {
            "t" => &mut t,
            "v1" => &mut v1,
            _ => continue,
        };
        if slot.replace(v).is_some() {
            return Err(ApiError::unauthorized_because("X-Wasmq-Signature must hold t= and v1= once each"));
        }
    }
    let t = t.and_then(|v| v.parse::<i64>().ok());
    let v1 = v1.and_then(|v| hex::decode(v).ok()).filter(|b| b.len() == 32);
    match (t, v1) {
        (Some(t), Some(v1)) => Ok((t, v1)),
        _ => Err(ApiError::unauthorized_because(
            "X-Wasmq-Signature must be t=<unix seconds>,v1=<64 hex digits of HMAC-SHA256>",
        )),
    }
}

/// The tenant, scope and secret of a key.
async fn secret_of(state: &AppState, key_id: &str) -> Result<(TenantId, Scope, Vec<u8>), ApiError> {
    let unknown = || ApiError::unauthorized_because(format!("unknown signing key {key_id:?}"));
    if key_id == DEFAULT_KEY_ID {
        let secret = state.auth.default_key.as_ref().ok_or_else(unknown)?;
        return Ok((TenantId::default_tenant(), Scope::Admin, secret.clone()));
    }
    let grant = state.store.key_lookup(key_id).await?.ok_or_else(unknown)?;
    let secret = state
        .callback_secrets
        .open(&grant.sealed, &seal_owner(&grant.id))
        .map_err(|e| ApiError::internal(format_args!("signing key {key_id}: {e} (key file replaced?)")))?;
    Ok((grant.tenant, grant.scope, secret.into_bytes()))
}

/// The body limit of the route: module uploads take the module size limit,
/// every other route the JSON one (as the router's `DefaultBodyLimit`s).
fn body_limit(state: &AppState, method: &axum::http::Method, path: &str) -> usize {
    if method == axum::http::Method::POST && path.trim_end_matches('/') == "/v1/modules" {
        usize::try_from(state.engine.settings().max_module_bytes).unwrap_or(usize::MAX)
    } else {
        state.max_body_bytes
    }
}

/// Reads the whole body, at most `limit` bytes (413 beyond), within the body
/// deadline (408).
async fn buffer(body: Body, limit: usize, headers: &HeaderMap) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::too_large(format!("request body exceeds the limit of {limit} bytes"));
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| match super::super::guard::is_body_timeout(&e) {
            Some(timeout) => ApiError::request_timeout(format!(
                "the request body was not received within the body timeout ({})",
                humantime::format_duration(timeout.0)
            )),
            None => ApiError::malformed(format!("could not read the request body: {e}")),
        })?;
        if out.len() + chunk.len() > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_method_path_and_body_with_a_known_vector() {
        // HMAC-SHA256("key", "1.POST./v1/jobs.{}") computed independently (Python hmac).
        assert_eq!(
            sign(b"key", 1, "POST", "/v1/jobs", b"{}"),
            "t=1,v1=ffdd3f5b1d786f35209dc958384bf2043c50caca9926a5e35c063f1e75659700"
        );
    }

    #[test]
    fn parses_the_header_and_refuses_other_shapes() {
        let good = sign(b"k", 5, "GET", "/", b"");
        let (t, tag) = parse(&good).unwrap();
        assert_eq!((t, tag.len()), (5, 32));
        for bad in ["", "t=5", "v1=00", "t=x,v1=00", &format!("t=5,v1={}", "0".repeat(62))] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let v1 = good.split_once(",v1=").unwrap().1;
        for twice in [format!("t=5,t=5,v1={v1}"), format!("t=5,v1={v1},v1={v1}"), format!("v1=zz,{good}")] {
            let e = parse(&twice).unwrap_err();
            assert!(format!("{e:?}").contains("once each"), "{twice:?}: {e:?}");
        }
        assert_eq!(parse(&format!("{good},v2=later")).unwrap().0, 5, "unknown parts are ignored");
    }

    #[test]
    fn a_full_seen_set_refuses_until_the_oldest_leave_the_window_then_recovers() {
        let seen = SeenSignatures::with_capacity(2);
        let a = TenantId::default_tenant();
        assert_eq!(seen.first_use(&a, [1; 32], 100, 0), Ok(()));
        assert_eq!(seen.first_use(&a, [2; 32], 200, 0), Ok(()));
        assert_eq!(seen.first_use(&a, [3; 32], 300, 50), Err(Reuse::Full));
        assert_eq!(seen.first_use(&a, [1; 32], 100, 50), Err(Reuse::Replay), "a replay is still a replay");
        // The first leaves its window at 100: room for one more, and no more.
        assert_eq!(seen.first_use(&a, [3; 32], 300, 101), Ok(()));
        assert_eq!(seen.first_use(&a, [4; 32], 300, 101), Err(Reuse::Full));
        assert_eq!(seen.first_use(&a, [4; 32], 400, 301), Ok(()));
        assert_eq!(seen.inner.lock().unwrap()[&a].set.len(), 1);
    }

    #[test]
    fn a_signature_is_accepted_once_while_in_the_window() {
        let seen = SeenSignatures::default();
        let a = TenantId::default_tenant();
        assert_eq!(seen.first_use(&a, [1; 32], 100, 0), Ok(()));
        assert_eq!(seen.first_use(&a, [1; 32], 100, 50), Err(Reuse::Replay));
        assert_eq!(seen.first_use(&a, [2; 32], 100, 50), Ok(()));
        // After its window the tag is forgotten (the timestamp check refuses it then).
        assert_eq!(seen.first_use(&a, [1; 32], 300, 101), Ok(()));
        assert_eq!(seen.inner.lock().unwrap()[&a].set.len(), 1);
    }

    #[test]
    fn one_tenant_filling_its_share_never_blocks_another() {
        let seen = SeenSignatures::with_capacity(1);
        let (a, b) = (TenantId::default_tenant(), TenantId::parse("other").unwrap());
        assert_eq!(seen.first_use(&a, [1; 32], 100, 0), Ok(()));
        assert_eq!(seen.first_use(&a, [2; 32], 100, 0), Err(Reuse::Full));
        assert_eq!(seen.first_use(&b, [2; 32], 100, 0), Ok(()), "b has its own share");
        assert_eq!(seen.first_use(&b, [1; 32], 100, 0), Err(Reuse::Full));
        // Once a's window ends, its share is free and b's empty entry goes too.
        assert_eq!(seen.first_use(&a, [3; 32], 300, 150), Ok(()));
        assert_eq!(seen.inner.lock().unwrap().len(), 1, "tenants with nothing in the window hold no memory");
    }
}
