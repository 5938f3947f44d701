//! What a callback may be: an `http(s)` URL whose host the [`NetPolicy`]
//! accepts, a bounded set of well-formed extra headers that cannot override the
//! ones wasmq sets, and a bounded secret. Checked at dispatch (a 400 naming the
//! field) and again before every delivery (rows stored before a policy change,
//! or by an older version, get no way around it).

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use std::fmt;
use std::net::IpAddr;

use crate::domain::{Callback, NetPolicy, Refused};

/// Longest callback URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Most extra headers per callback.
pub const MAX_HEADERS: usize = 32;
/// Longest header name plus value, in bytes.
pub const MAX_HEADER_BYTES: usize = 4096;
/// Longest signing secret, in characters (as JSON Schema's `maxLength` counts).
pub const MAX_SECRET_CHARS: usize = 1024;

/// Headers wasmq sets itself or that change how the request is framed or
/// routed; a client may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "proxy-authorization",
    "proxy-connection",
];

/// The part of a callback a check failed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `callback.url`.
    Url,
    /// `callback.headers`.
    Headers,
    /// `callback.secret`.
    Secret,
}

/// A callback that may not be used; the message names the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    /// Which part.
    pub field: Field,
    /// The rule, phrased to follow the field's name (`must ...`); the caller
    /// names the field as the client spelled it.
    pub message: String,
    /// Whether the address policy refused it (as opposed to a malformed value).
    pub refused_by_policy: bool,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn invalid(field: Field, message: String) -> TargetError {
    TargetError { field, message, refused_by_policy: false }
}

fn refused(r: Refused) -> TargetError {
    TargetError {
        field: Field::Url,
        message: format!(
            "must not target {r}: refused by the address policy (an operator can allow ranges with \
             --callback-allow, or per tenant with its callback_allow)"
        ),
        refused_by_policy: true,
    }
}

/// Checks a callback a client gives (URL, headers, secret); returns its parsed URL.
pub fn check(c: &Callback, policy: &NetPolicy) -> Result<Url, TargetError> {
    let url = check_stored(c, policy)?;
    if let Some(secret) = &c.secret
        && (secret.is_empty() || secret.chars().count() > MAX_SECRET_CHARS)
    {
        return Err(invalid(
            Field::Secret,
            format!("must be between 1 and {MAX_SECRET_CHARS} characters, got {}", secret.chars().count()),
        ));
    }
    Ok(url)
}

/// Checks a stored callback before a delivery: URL and headers (its secret
/// is stored sealed, and was checked at dispatch); returns its parsed URL.
pub fn check_stored(c: &Callback, policy: &NetPolicy) -> Result<Url, TargetError> {
    let url = check_url(&c.url, policy)?;
    if c.headers.len() > MAX_HEADERS {
        return Err(invalid(
            Field::Headers,
            format!("must hold at most {MAX_HEADERS} headers, got {}", c.headers.len()),
        ));
    }
    for (name, value) in &c.headers {
        if name.len() + value.len() > MAX_HEADER_BYTES {
            return Err(invalid(
                Field::Headers,
                format!(
                    "must not exceed {MAX_HEADER_BYTES} bytes per header (name and value); {name:?} does"
                ),
            ));
        }
        let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            invalid(Field::Headers, format!("must have valid header names; {name:?} is not one"))
        })?;
        if RESERVED_HEADERS.contains(&parsed.as_str()) || parsed.as_str().starts_with("x-wasmq-") {
            return Err(invalid(
                Field::Headers,
                format!("must not set {name:?}: wasmq sets it, or it changes how the request is framed"),
            ));
        }
        HeaderValue::from_str(value).map_err(|_| {
            invalid(
                Field::Headers,
                format!("must have values without control characters (such as CR or LF); the value of {name:?} has one"),
            )
        })?;
    }
    Ok(url)
}

/// Checks a URL: syntax, scheme, length, and its host against the policy when
/// the host is an address (in any spelling the URL parser accepts) or a
/// `localhost` name. Other names are checked on the addresses they resolve to,
/// when a delivery connects.
pub fn check_url(raw: &str, policy: &NetPolicy) -> Result<Url, TargetError> {
    if raw.len() > MAX_URL_BYTES {
        return Err(invalid(Field::Url, format!("must be at most {MAX_URL_BYTES} bytes, got {}", raw.len())));
    }
    let not_http = || invalid(Field::Url, format!("must be an http or https URL with a host, got {raw:?}"));
    let url = Url::parse(raw).map_err(|_| not_http())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(not_http());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            Field::Url,
            "must not carry credentials (user:password@); send them in headers".into(),
        ));
    }
    match url.host() {
        Some(url::Host::Ipv4(v4)) => policy.check_ip(IpAddr::V4(v4)).map_err(refused)?,
        Some(url::Host::Ipv6(v6)) => policy.check_ip(IpAddr::V6(v6)).map_err(refused)?,
        Some(url::Host::Domain(name)) if !name.is_empty() => policy.check_name(name).map_err(refused)?,
        _ => return Err(not_http()),
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn callback(url: &str, headers: &[(&str, &str)]) -> Callback {
        Callback {
            url: url.into(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            secret: None,
        }
    }

    #[test]
    fn every_spelling_of_a_refused_address_is_refused() {
        let policy = NetPolicy::default();
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://127.0.0.1./",
            "http://017700000001/",
            "http://0x7f.0.0.1/",
            "http://%31%32%37.0.0.1/",
            "http://\u{ff11}\u{ff12}\u{ff17}.0.0.1/",
            "http://[::127.0.0.1]/",
            "http://[0:0:0:0:0:ffff:7f00:1]/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0xa9fea9fe/",
            "http://10.0.0.1:8080/",
            "http://[fd00::1]/",
            "http://0.0.0.0/",
            "http://0/",
            "http://localhost/",
            "http://LocalHost./",
            "http://api.localhost/",
            "https://localhost:8443/",
        ] {
            let err = check(&callback(url, &[]), &policy).unwrap_err();
            assert_eq!(err.field, Field::Url, "{url}");
            assert!(err.refused_by_policy, "{url}: {err}");
        }
        assert!(check(&callback("https://hooks.example.com/x?a=1", &[]), &policy).is_ok());
        let open = NetPolicy::new(NetPolicy::parse_allow("127.0.0.0/8").unwrap());
        assert!(check(&callback("http://2130706433/", &[]), &open).is_ok());
        assert!(check(&callback("http://localhost:9/", &[]), &open).is_ok());
    }

    #[test]
    fn malformed_urls_headers_and_secrets_name_their_field() {
        let policy = NetPolicy::default();
        for url in
            ["http://", "ftp://example.com/", "example.com", "http://u:p@example.com/", "file:///etc/passwd"]
        {
            let err = check(&callback(url, &[]), &policy).unwrap_err();
            assert_eq!((err.field, err.refused_by_policy), (Field::Url, false), "{url}: {err}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert_eq!(check(&callback(&long, &[]), &policy).unwrap_err().field, Field::Url);
        let ok = "https://example.com/";
        for headers in [
            vec![("bad header", "x")],
            vec![("x-ok", "a\r\nx-injected: 1")],
            vec![("x-ok", "a\nb")],
            vec![("Host", "internal")],
            vec![("content-length", "0")],
            vec![("Transfer-Encoding", "chunked")],
            vec![("X-Wasmq-Signature", "t=1,v1=00")],
        ] {
            let err = check(&callback(ok, &headers), &policy).unwrap_err();
            assert_eq!(err.field, Field::Headers, "{headers:?}: {err}");
        }
        let many: Vec<(String, String)> =
            (0..=MAX_HEADERS).map(|i| (format!("x-h{i}"), "v".into())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(check(&callback(ok, &many), &policy).unwrap_err().field, Field::Headers);
        assert!(check(&callback(ok, &[("authorization", "Bearer x"), ("x-team", "blue")]), &policy).is_ok());
        let mut c = callback(ok, &[]);
        c.secret = Some(String::new());
        assert_eq!(check(&c, &policy).unwrap_err().field, Field::Secret);
        // Stored, the secret is sealed (longer than the bound): deliveries do not re-check it.
        c.secret = Some("s".repeat(MAX_SECRET_CHARS * 3));
        assert!(check_stored(&c, &policy).is_ok());
    }
}
