//! Outbound HTTP for plugins: what an alias grants (`allowed_hosts` and the
//! per-job limits), the grant pinned on a job at dispatch, and what each
//! request a run made is recorded as.
//!
//! Deny by default: a job without a grant (an alias with no `allowed_hosts`)
//! has no network at all. A host pattern is one of
//! - `api.example.com`: that host, over https on 443 or http on 80;
//! - `*.example.com`: any subdomain of `example.com` (not `example.com`
//!   itself), on the same default ports;
//! - `https://api.example.com:8443`: exactly that scheme, host and port (the
//!   port defaults to the scheme's).
//!
//! Which addresses a permitted host may resolve to is the [`super::NetPolicy`]'s
//! business, checked at connection time.

use serde::{Deserialize, Serialize};

/// Most host patterns an alias may list.
pub const MAX_ALLOWED_HOSTS: usize = 64;
/// Requests recorded on a job (the first ones; every one is counted).
pub const MAX_RECORDED_CALLS: usize = 100;

/// An alias's outbound HTTP limits per job (each absent: the server's ceiling).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpLimits {
    /// Requests a job may send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_requests: Option<u32>,
    /// Bytes of request bodies a job may send, all requests together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_request_bytes: Option<u64>,
    /// Bytes of response bodies a job may receive, all requests together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_response_bytes: Option<u64>,
}

/// The server's ceilings on [`HttpLimits`], which are also what an alias
/// that sets none gets (`--http-max-requests`, `--http-max-request-size`,
/// `--http-max-response-size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpCeilings {
    /// Requests per job.
    pub max_requests: u32,
    /// Request body bytes per job.
    pub max_request_bytes: u64,
    /// Response body bytes per job.
    pub max_response_bytes: u64,
}

impl Default for HttpCeilings {
    fn default() -> Self {
        Self { max_requests: 100, max_request_bytes: 10 << 20, max_response_bytes: 50 << 20 }
    }
}

/// A job's outbound HTTP: the hosts and limits of its alias at dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGrant {
    /// Host patterns in normal form (see the module doc); never empty.
    pub allowed_hosts: Vec<String>,
    /// Requests the job may send.
    pub max_requests: u32,
    /// Request body bytes the job may send.
    pub max_request_bytes: u64,
    /// Response body bytes the job may receive.
    pub max_response_bytes: u64,
}

impl HttpGrant {
    /// The grant of an alias with `allowed_hosts` and `limits`: `None` (no
    /// network) when it lists no host. A limit above its ceiling is an error
    /// naming the field and the setting.
    pub fn of_alias(
        allowed_hosts: &[String],
        limits: Option<&HttpLimits>,
        ceilings: &HttpCeilings,
    ) -> Result<Option<Self>, String> {
        if allowed_hosts.is_empty() {
            return Ok(None);
        }
        let hosts = allowed_hosts
            .iter()
            .map(|h| HostPattern::parse(h).map(|p| p.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let limits = limits.cloned().unwrap_or_default();
        let pick = |field: &str, asked: Option<u64>, ceiling: u64, flag: &str| match asked {
            None => Ok(ceiling),
            Some(0) => Err(format!("http.{field} must be at least 1")),
            Some(v) if v > ceiling => {
                Err(format!("http.{field} must be at most {ceiling} (the server's --{flag}), got {v}"))
            }
            Some(v) => Ok(v),
        };
        Ok(Some(Self {
            allowed_hosts: hosts,
            max_requests: pick(
                "max_requests",
                limits.max_requests.map(u64::from),
                u64::from(ceilings.max_requests),
                "http-max-requests",
            )? as u32,
            max_request_bytes: pick(
                "max_request_bytes",
                limits.max_request_bytes,
                ceilings.max_request_bytes,
                "http-max-request-size",
            )?,
            max_response_bytes: pick(
                "max_response_bytes",
                limits.max_response_bytes,
                ceilings.max_response_bytes,
                "http-max-response-size",
            )?,
        }))
    }

    /// Whether a request to `scheme://host:port` is allowed (`scheme` is
    /// `http` or `https`, `host` lowercase without brackets or trailing dot).
    pub fn permits(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.allowed_hosts
            .iter()
            .filter_map(|h| HostPattern::parse(h).ok())
            .any(|p| p.matches(scheme, host, port))
    }
}

/// Checks an alias's `allowed_hosts` (count and each pattern) and returns
/// them in normal form; the error names the field and the entry.
pub fn check_allowed_hosts(hosts: &[String]) -> Result<Vec<String>, String> {
    if hosts.len() > MAX_ALLOWED_HOSTS {
        return Err(format!(
            "allowed_hosts must list at most {MAX_ALLOWED_HOSTS} hosts, got {}",
            hosts.len()
        ));
    }
    hosts
        .iter()
        .map(|h| HostPattern::parse(h).map(|p| p.to_string()).map_err(|e| format!("allowed_hosts: {e}")))
        .collect()
}

/// One entry of `allowed_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `api.example.com`: that host on the default ports.
    Host(String),
    /// `*.example.com`: subdomains of `example.com` on the default ports.
    Subdomains(String),
    /// `https://api.example.com:8443`: that scheme, host and port only.
    Origin {
        /// `http` or `https`.
        scheme: String,
        /// Lowercase host name or address.
        host: String,
        /// Port (the scheme's default when none was written).
        port: u16,
    },
}

impl HostPattern {
    /// Parses an entry (any case; a trailing dot is dropped).
    pub fn parse(entry: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            Err(format!(
                "{entry:?} {why}; expected a host (api.example.com), a wildcard (*.example.com) or an \
                 origin (https://api.example.com:8443)"
            ))
        };
        let entry_l = entry.trim().to_ascii_lowercase();
        if let Some((scheme, rest)) = entry_l.split_once("://") {
            if scheme != "http" && scheme != "https" {
                return bad("has a scheme other than http or https");
            }
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(':') && !p.contains(']') => match p.parse::<u16>() {
                    Ok(port) if port > 0 => (h, port),
                    _ => return bad("has an invalid port"),
                },
                _ => (rest, if scheme == "https" { 443 } else { 80 }),
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if !valid_host(host) {
                return bad("has an invalid host");
            }
            return Ok(Self::Origin { scheme: scheme.into(), host: normal(host), port });
        }
        if let Some(suffix) = entry_l.strip_prefix("*.") {
            if !valid_name(suffix) || !suffix.contains('.') {
                return bad("is not a wildcard over a domain with at least two labels");
            }
            return Ok(Self::Subdomains(normal(suffix)));
        }
        if !valid_host(&entry_l) {
            return bad("is not a host name or address");
        }
        Ok(Self::Host(normal(&entry_l)))
    }

    /// Whether a request to `scheme://host:port` matches.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let default_port = (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
        match self {
            Self::Host(h) => default_port && h == host,
            Self::Subdomains(suffix) => {
                default_port
                    && host.len() > suffix.len() + 1
                    && host.ends_with(suffix.as_str())
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
            Self::Origin { scheme: s, host: h, port: p } => s == scheme && h == host && *p == port,
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Host(h) => f.write_str(h),
            Self::Subdomains(s) => write!(f, "*.{s}"),
            Self::Origin { scheme, host, port } if host.contains(':') => {
                write!(f, "{scheme}://[{host}]:{port}")
            }
            Self::Origin { scheme, host, port } => write!(f, "{scheme}://{host}:{port}"),
        }
    }
}

fn normal(host: &str) -> String {
    host.trim_end_matches('.').to_string()
}

fn valid_host(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok() || valid_name(host)
}

fn valid_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok)
}

/// One outbound request a run made, as recorded on the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HttpCall {
    /// `GET`, `POST`, ...
    pub method: String,
    /// `scheme://host:port` it was sent to.
    pub origin: String,
    /// The response status, when one arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed (refused, limit, connection, interrupted), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Request body bytes sent.
    pub sent_bytes: u64,
    /// Response body bytes received.
    pub received_bytes: u64,
    /// From the request to the end of its response body (or its failure), in ms.
    pub duration_ms: u64,
}

/// What a run's outbound HTTP cost, for the tenant's usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpUsage {
    /// Requests sent (refused ones included: they count against the limit).
    pub requests: u64,
    /// Request body bytes sent.
    pub sent_bytes: u64,
    /// Response body bytes received.
    pub received_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(hosts: &[&str]) -> HttpGrant {
        let hosts: Vec<String> = hosts.iter().map(|s| s.to_string()).collect();
        HttpGrant::of_alias(&hosts, None, &HttpCeilings::default()).unwrap().unwrap()
    }

    #[test]
    fn hosts_wildcards_and_origins_match_what_they_say() {
        let g = grant(&["API.example.com.", "*.example.org", "http://127.0.0.1:8080", "https://[::1]"]);
        assert_eq!(
            g.allowed_hosts,
            ["api.example.com", "*.example.org", "http://127.0.0.1:8080", "https://[::1]:443"]
        );
        assert!(g.permits("https", "api.example.com", 443));
        assert!(g.permits("http", "api.example.com", 80));
        assert!(!g.permits("https", "api.example.com", 8443));
        assert!(!g.permits("https", "evil.api.example.com", 443));
        assert!(g.permits("https", "a.example.org", 443));
        assert!(g.permits("https", "a.b.example.org", 443));
        assert!(!g.permits("https", "example.org", 443));
        assert!(!g.permits("https", "badexample.org", 443));
        assert!(g.permits("http", "127.0.0.1", 8080));
        assert!(!g.permits("https", "127.0.0.1", 8080));
        assert!(!g.permits("http", "127.0.0.1", 80));
        assert!(g.permits("https", "::1", 443));
    }

    #[test]
    fn bad_patterns_and_limits_name_the_entry_and_the_setting() {
        for bad in
            ["", "*", "*.com", "ftp://x.com", "http://x.com:0", "http://x.com:99999", "a b.com", "x_y.com"]
        {
            assert!(check_allowed_hosts(&[bad.into()]).is_err(), "{bad:?}");
        }
        assert_eq!(HttpGrant::of_alias(&[], None, &HttpCeilings::default()).unwrap(), None);
        let limits = HttpLimits { max_requests: Some(1000), ..Default::default() };
        let err =
            HttpGrant::of_alias(&["a.com".into()], Some(&limits), &HttpCeilings::default()).unwrap_err();
        assert_eq!(err, "http.max_requests must be at most 100 (the server's --http-max-requests), got 1000");
        let many: Vec<String> = (0..=MAX_ALLOWED_HOSTS).map(|i| format!("h{i}.com")).collect();
        assert!(check_allowed_hosts(&many).unwrap_err().contains("at most 64"));
    }
}
