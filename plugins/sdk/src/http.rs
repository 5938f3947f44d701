//! Outbound HTTP over `wasi:http` (the `wasip2` crate's bindings), in one line:
//!
//! ```ignore
//! let page = wasmq_plugin::http::get("https://api.example.com/items")?;
//! let made = wasmq_plugin::http::post("https://api.example.com/items", br#"{"a":1}"#.to_vec())?;
//! let custom = wasmq_plugin::http::Request::put("https://api.example.com/items/1")
//!     .header("content-type", "application/json")
//!     .body(b"{}".to_vec())
//!     .send()?;
//! ```
//!
//! The server decides what a plugin may reach: only the hosts its alias lists
//! in `allowed_hosts`, never private addresses unless the operator allows
//! them, and a per-job budget of requests and bytes. A refused request fails
//! with an [`Error`] naming the URL; the job's `http` records say why.
//!
//! `GET` and `HEAD` follow up to [`MAX_REDIRECTS`] redirects; each is a new
//! request, checked by the server like the first.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme, http_error_code,
};
use wasip2::io::streams::StreamError;

use crate::Error;

/// Redirects `GET` and `HEAD` follow before giving up.
pub const MAX_REDIRECTS: u32 = 5;
/// Bytes written to the request body per call (the stream's usual window).
const WRITE_CHUNK: usize = 4096;
/// Bytes asked for per read of the response body.
const READ_CHUNK: u64 = 64 * 1024;

/// A response, its body read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// The URL that answered (after redirects).
    pub url: String,
    /// Status code.
    pub status: u16,
    /// Headers, names lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<String, Error> {
        String::from_utf8(self.body.clone())
            .map_err(|_| Error::new(format!("the body of {} is not UTF-8", self.url)))
    }

    /// The body decoded from JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::new(format!("the body of {} is not the JSON expected: {e}", self.url)))
    }
}

/// `GET url`, following redirects.
pub fn get(url: &str) -> Result<Response, Error> {
    Request::get(url).send()
}

/// `POST url` with `body`.
pub fn post(url: &str, body: impl Into<Vec<u8>>) -> Result<Response, Error> {
    Request::post(url).body(body).send()
}

/// A request to build and send.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request with any method (`GET`, `PATCH`, ...).
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `GET url`.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// `POST url`.
    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }

    /// `PUT url`.
    pub fn put(url: &str) -> Self {
        Self::new("PUT", url)
    }

    /// `DELETE url`.
    pub fn delete(url: &str) -> Self {
        Self::new("DELETE", url)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends it and reads the whole response (following redirects for `GET`
    /// and `HEAD`).
    pub fn send(self) -> Result<Response, Error> {
        let follows = matches!(self.method.as_str(), "GET" | "HEAD");
        let mut url = self.url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let response = send_once(&self.method, &url, &self.headers, &self.body)?;
            let location = response.header("location").map(str::to_string);
            match location {
                Some(next) if follows && matches!(response.status, 301 | 302 | 303 | 307 | 308) => {
                    url = resolve(&url, &next);
                }
                _ => return Ok(response),
            }
        }
        Err(Error::new(format!("{} {}: more than {MAX_REDIRECTS} redirects", self.method, self.url)))
    }
}

/// One request, no redirects.
fn send_once(method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Result<Response, Error> {
    let what = || format!("{method} {url}");
    let parts = Url::parse(url).ok_or_else(|| Error::new(format!("{}: not an http(s) URL", what())))?;
    let fields: Vec<(String, Vec<u8>)> =
        headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec())).collect();
    let fields =
        Fields::from_list(&fields).map_err(|e| Error::new(format!("{}: bad header: {e:?}", what())))?;
    let request = OutgoingRequest::new(fields);
    let bad = |part: &str| Error::new(format!("{}: invalid {part}", what()));
    request.set_method(&method_of(method)).map_err(|()| bad("method"))?;
    request
        .set_scheme(Some(&if parts.https { Scheme::Https } else { Scheme::Http }))
        .map_err(|()| bad("scheme"))?;
    request.set_authority(Some(&parts.authority)).map_err(|()| bad("host"))?;
    request.set_path_with_query(Some(&parts.path)).map_err(|()| bad("path"))?;
    let outgoing = request.body().map_err(|()| bad("body"))?;
    let future = outgoing_handler::handle(request, None).map_err(|e| failed(&what(), &e))?;
    write_body(&outgoing, body).map_err(|e| e.into_error(&what(), "sending the body"))?;
    OutgoingBody::finish(outgoing, None).map_err(|e| failed(&what(), &e))?;

    future.subscribe().block();
    let incoming = match future.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(failed(&what(), &e)),
        Some(Err(())) | None => {
            return Err(Error::new(format!("{}: the response was already taken", what())));
        }
    };
    let status = incoming.status();
    let headers = incoming
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let body = incoming.consume().map_err(|()| Error::new(format!("{}: no response body", what())))?;
    let bytes = read_body(&body).map_err(|e| e.into_error(&what(), "reading the response"))?;
    Ok(Response { url: url.to_string(), status, headers, body: bytes })
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), BodyError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body.write().map_err(|()| BodyError::Other("no body stream".into()))?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream.blocking_write_and_flush(chunk).map_err(BodyError::from)?;
    }
    Ok(())
}

fn read_body(body: &IncomingBody) -> Result<Vec<u8>, BodyError> {
    let stream = body.stream().map_err(|()| BodyError::Other("no body stream".into()))?;
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(out),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Why a body stream failed: an HTTP error code when the host gave one.
enum BodyError {
    Http(ErrorCode),
    Other(String),
}

impl From<StreamError> for BodyError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Closed => Self::Other("the stream closed".into()),
            StreamError::LastOperationFailed(err) => match http_error_code(&err) {
                Some(code) => Self::Http(code),
                // wasmtime 48 passes a body's failure on as plain text (its
                // first line; a backtrace may follow).
                None => Self::Other(err.to_debug_string().lines().next().unwrap_or("").to_string()),
            },
        }
    }
}

impl BodyError {
    fn into_error(self, what: &str, doing: &str) -> Error {
        match self {
            Self::Http(code) => failed(&format!("{what}: {doing}"), &code),
            // A byte budget of the job ran out: another attempt spends it again.
            Self::Other(message) if message.contains("body size exceeds limit") => {
                Error::new(format!("{what}: {doing}: over the job's HTTP byte limit ({message})"))
            }
            Self::Other(message) => Error::retryable(format!("{what}: {doing}: {message}")),
        }
    }
}

/// The error for a failed request. Refusals by wasmq are final; network
/// trouble may pass, so it is retryable.
fn failed(what: &str, code: &ErrorCode) -> Error {
    match code {
        ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => Error::new(format!(
            "{what}: refused by wasmq ({code:?}); the job's http records say which setting"
        )),
        ErrorCode::HttpRequestBodySize(_) | ErrorCode::HttpResponseBodySize(_) => {
            Error::new(format!("{what}: over the job's HTTP byte limit ({code:?})"))
        }
        _ => Error::retryable(format!("{what}: {code:?}")),
    }
}

fn method_of(m: &str) -> Method {
    match m {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

/// The parts of an absolute http(s) URL the request needs.
struct Url {
    https: bool,
    authority: String,
    /// Path and query (never empty: `/` at least); the fragment dropped.
    path: String,
}

impl Url {
    fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        let rest = rest.split('#').next().unwrap_or("");
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
        Some(Self {
            https,
            authority: authority.to_string(),
            path: if path.is_empty() { "/".into() } else { path },
        })
    }
}

/// `location` resolved against `base` (absolute, scheme-relative,
/// host-relative or path-relative).
fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let Some(parts) = Url::parse(base) else { return location.to_string() };
    let scheme = if parts.https { "https" } else { "http" };
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{}{location}", parts.authority);
    }
    let dir = parts.path.split('?').next().unwrap_or("/");
    let dir = &dir[..=dir.rfind('/').unwrap_or(0)];
    format!("{scheme}://{}{dir}{location}", parts.authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_redirect_targets() {
        let u = Url::parse("http://127.0.0.1:8080?x=1#frag").unwrap();
        assert_eq!((u.https, u.authority.as_str(), u.path.as_str()), (false, "127.0.0.1:8080", "/?x=1"));
        assert!(Url::parse("ftp://x/").is_none() && Url::parse("http://u:p@x/").is_none());
        assert_eq!(resolve("https://a.com/x/y?q", "/z"), "https://a.com/z");
        assert_eq!(resolve("https://a.com/x/y?q", "z"), "https://a.com/x/z");
        assert_eq!(resolve("https://a.com/x", "//b.com/"), "https://b.com/");
        assert_eq!(resolve("https://a.com/x", "http://c.com/"), "http://c.com/");
    }
}
