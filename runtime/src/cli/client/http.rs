//! The HTTP client wrapper: base URL, bearer token or request signer, and the
//! API's error shape.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

use super::ClientOpts;
use super::signer::Signer;

/// Why a client command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The API answered with an error (`{"error": {"code", "message"}}`).
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The server's error code (`not_found`, `idempotency_conflict`, ...);
        /// `None` when the body was not the API's error shape (a proxy's page).
        code: Option<String>,
        /// The server's message.
        message: String,
    },
    /// Anything else: unreachable server, unreadable file, invalid local input.
    Other(String),
    /// The waited-for job ended dead or cancelled; the error is already printed.
    JobFailed,
    /// Ctrl-C stopped a wait; what to do next is already printed.
    Interrupted,
    /// A local run (`jobs run`) ended with this exit code of `wasmq run`;
    /// its outcome is already printed.
    Exit(u8),
}

impl Failure {
    /// A local failure with this message.
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Failure::Other(message.into())
    }

    /// The failure of an error answer: the code and message of the API's
    /// [`ErrorBody`](crate::api::ErrorBody), or the body itself when it is not one.
    pub(crate) fn api(status: StatusCode, body: &str) -> Self {
        let (code, message) = match serde_json::from_str::<crate::api::ErrorBody>(body) {
            Ok(b) => (Some(b.error.code.into_owned()), b.error.message),
            Err(_) if body.trim().is_empty() => (None, "the server answered with an empty body".into()),
            Err(_) => (None, body.trim().chars().take(500).collect()),
        };
        Failure::Api { status, code, message }
    }
}

/// A client command's result.
pub(crate) type Outcome<T = ()> = Result<T, Failure>;

/// A successful answer: its status and its body as received.
pub(crate) struct Reply {
    /// 200, 201, ...
    pub(crate) status: StatusCode,
    /// The JSON body, as the server sent it.
    pub(crate) body: String,
}

impl Reply {
    /// The body as a typed value.
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Outcome<T> {
        serde_json::from_str(&self.body)
            .map_err(|e| Failure::other(format!("unexpected answer from the server ({e}): {}", self.body)))
    }

    /// Prints the body as received (for `-o json`), or as JSON Lines (for
    /// `-o jsonl`): an array's items, or the items of an object's one list
    /// (`{"jobs": [...], "next_cursor"}`: the cursor goes to stderr), one per
    /// line; anything else on one line.
    pub(crate) fn print_raw(&self) {
        if !JSON_LINES.load(std::sync::atomic::Ordering::Relaxed) {
            println!("{}", self.body.trim_end());
            return;
        }
        for line in json_lines(&self.body) {
            println!("{line}");
        }
    }
}

/// `-o jsonl` was chosen (set once, when the client is made).
static JSON_LINES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `body` as JSON Lines (see [`Reply::print_raw`]).
fn json_lines(body: &str) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return vec![body.trim_end().to_string()];
    };
    let items = match &value {
        serde_json::Value::Array(items) => Some(items),
        serde_json::Value::Object(map) => {
            let mut lists = map.values().filter_map(|v| v.as_array());
            match (lists.next(), lists.next()) {
                (Some(items), None) => {
                    if let Some(cursor) = map.get("next_cursor").and_then(|c| c.as_str()) {
                        eprintln!("note: more follow: --cursor {cursor}");
                    }
                    Some(items)
                }
                _ => None,
            }
        }
        _ => None,
    };
    match items {
        Some(items) => items.iter().map(|v| v.to_string()).collect(),
        None => vec![value.to_string()],
    }
}

/// Longest wait for a whole answer (long-polls ask for much less).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest silence on a connection; event streams send a comment every 15 s.
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Talks to one wasmq server.
pub(crate) struct Client {
    http: reqwest::Client,
    /// For event streams (no total timeout).
    streams: reqwest::Client,
    base: String,
    token: Option<String>,
    /// Signs each request when there is no token.
    signer: Option<Signer>,
    /// Print JSON instead of the human view.
    pub(crate) json: bool,
}

impl Client {
    /// A client for the server and token of `opts`; the `operator`'s token
    /// comes from `WASMQ_OPERATOR_TOKEN` (or `WASMQ_OPERATOR_TOKEN_FILE`, as
    /// the server reads it) instead of `WASMQ_TOKEN`. Without a token, a
    /// tenant's requests are signed with `WASMQ_KEY_ID` and `WASMQ_SECRET`
    /// when both are set (the operator has no signing key).
    pub(crate) fn new(opts: &ClientOpts, operator: bool) -> Outcome<Self> {
        let base = opts.server.trim_end_matches('/').to_string();
        match reqwest::Url::parse(&base) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            _ => {
                return Err(Failure::other(format!(
                    "the server URL (--server or WASMQ_URL) must be an http or https URL, got {base:?}"
                )));
            }
        }
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path)
                .map(|text| text.trim().to_string())
                .map_err(|e| Failure::other(format!("cannot read the token file {}: {e}", path.display())))
        };
        let env =
            |name: &str| std::env::var(name).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        let token = match &opts.token_file {
            Some(path) => Some(read(path)?),
            None if operator => match (env("WASMQ_OPERATOR_TOKEN"), env("WASMQ_OPERATOR_TOKEN_FILE")) {
                (Some(t), _) => Some(t),
                (None, Some(path)) => Some(read(path.as_ref())?),
                (None, None) => None,
            },
            None => env("WASMQ_TOKEN"),
        }
        .filter(|t| !t.is_empty());
        let signer = match (&token, operator, env("WASMQ_KEY_ID"), env("WASMQ_SECRET")) {
            (None, false, Some(key_id), Some(secret)) => Some(Signer::new(&key_id, &secret)?),
            (None, false, Some(_), None) => {
                return Err(Failure::other(
                    "WASMQ_KEY_ID is set but WASMQ_SECRET is not: signed requests need both",
                ));
            }
            // WASMQ_SECRET alone is the server's own setting (`wasmq serve`
            // reads it as the key `default`): it signs only with WASMQ_KEY_ID.
            _ => None,
        };
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                // The server closes a connection idle for its header timeout
                // (10 s by default): reusing one near that moment races the
                // close, so pooled connections are let go well before.
                .pool_idle_timeout(Duration::from_secs(4))
                .user_agent(concat!("wasmq-cli/", env!("CARGO_PKG_VERSION")))
        };
        let built = |r: reqwest::Result<reqwest::Client>| {
            r.map_err(|e| Failure::other(format!("cannot build the HTTP client: {e}")))
        };
        // A request is bounded as a whole (an upload may wait for its compile);
        // an event stream stays open as long as its job runs, so it is bounded
        // by silence instead (the server sends a keep-alive every 15 s).
        let http = built(builder().timeout(REQUEST_TIMEOUT).build())?;
        let streams = built(builder().read_timeout(STREAM_READ_TIMEOUT).build())?;
        let output = match (opts.output, opts.json) {
            (Some(chosen), _) => chosen,
            (None, true) => super::OutputFormat::Json,
            (None, false) => super::OutputFormat::Table,
        };
        JSON_LINES.store(output == super::OutputFormat::Jsonl, std::sync::atomic::Ordering::Relaxed);
        let json = output != super::OutputFormat::Table;
        Ok(Self { http, streams, base, token, signer, json })
    }

    /// A token or a signing key is configured.
    pub(crate) fn has_credentials(&self) -> bool {
        self.token.is_some() || self.signer.is_some()
    }

    /// A request to `path` (under the server URL), with the token (a signature
    /// is added when it is sent).
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.authorized(self.http.request(method, format!("{}{path}", self.base)))
    }

    /// A `GET` of the event stream at `path`, for [`Client::open`].
    pub(crate) fn stream_request(&self, path: &str) -> RequestBuilder {
        let r = self.streams.get(format!("{}{path}", self.base));
        self.authorized(r.header(reqwest::header::ACCEPT, "text/event-stream"))
    }

    fn authorized(&self, r: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> Outcome<Reply> {
        self.send(self.request(Method::GET, path)).await
    }

    /// `POST path` with a JSON body (or none).
    pub(crate) async fn post<B: Serialize + ?Sized>(&self, path: &str, body: Option<&B>) -> Outcome<Reply> {
        let r = self.request(Method::POST, path);
        self.send(match body {
            Some(b) => r.json(b),
            None => r,
        })
        .await
    }

    /// `GET path` of a binary body (a module's bytes).
    pub(crate) async fn get_bytes(&self, path: &str) -> Outcome<Vec<u8>> {
        let response = self.open(self.request(Method::GET, path)).await?;
        Ok(response.bytes().await.map_err(|e| self.transport(&e))?.to_vec())
    }

    /// `PUT path` with a JSON body.
    pub(crate) async fn put<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Outcome<Reply> {
        self.send(self.request(Method::PUT, path).json(body)).await
    }

    /// `DELETE path`.
    pub(crate) async fn delete(&self, path: &str) -> Outcome<Reply> {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// Sends a request and reads the whole answer; a non-2xx answer becomes
    /// [`Failure::Api`].
    pub(crate) async fn send(&self, request: RequestBuilder) -> Outcome<Reply> {
        let response = self.execute(request).await?;
        let status = response.status();
        let body = response.text().await.map_err(|e| self.transport(&e))?;
        if status.is_success() {
            return Ok(Reply { status, body });
        }
        Err(Failure::api(status, &body))
    }

    /// Sends a request whose answer is read as it comes (an event stream, from
    /// [`Client::stream_request`]): the response once its headers arrived, or
    /// [`Failure::Api`].
    pub(crate) async fn open(&self, request: RequestBuilder) -> Outcome<reqwest::Response> {
        let response = self.execute(request).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.map_err(|e| self.transport(&e))?;
        Err(Failure::api(status, &body))
    }

    /// Sends a request as built, signed last (the signature covers the final
    /// target and body).
    async fn execute(&self, request: RequestBuilder) -> Outcome<reqwest::Response> {
        let (client, request) = request.build_split();
        let request = request.map_err(|e| Failure::other(format!("cannot build the request: {e}")))?;
        match &self.signer {
            Some(signer) => signer.execute(&client, request, |e| self.transport(e)).await,
            None => client.execute(request).await.map_err(|e| self.transport(&e)),
        }
    }

    /// A transport error, naming the server it tried (and, when it could not
    /// connect, where that URL is set).
    pub(crate) fn transport(&self, e: &reqwest::Error) -> Failure {
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        let base = &self.base;
        if e.is_connect() {
            Failure::other(format!(
                "cannot connect to the wasmq server at {base}: {cause}\n\
                 hint: is `wasmq serve` running there? The URL comes from --server or WASMQ_URL"
            ))
        } else if e.is_timeout() {
            Failure::other(format!("the wasmq server at {base} did not answer in time"))
        } else {
            Failure::other(format!("request to the wasmq server at {base} failed: {cause}"))
        }
    }
}

/// Percent-encodes one path segment (alias names, job ids).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
