//! Outbound HTTP (`wasi:http/outgoing-handler`) for job and command
//! components: wasmtime-wasi-http provides the WASI types and calls
//! [`OutboundHooks::send_request`] for every request a guest sends; that hook
//! is the only way out of the sandbox.
//!
//! Every request, in order:
//! 1. counted against `http.max_requests` (a refused one counts too);
//! 2. its `scheme://host:port` checked against the job's `allowed_hosts`
//!    (none: no network at all);
//! 3. the host resolved here and every address checked against the server's
//!    [`NetPolicy`] (`--http-allow`); the connection goes to exactly the
//!    addresses that passed, so a name answering differently at connect time
//!    (DNS rebinding) gains nothing (`connect`);
//! 4. request and response bodies counted against the job's byte budgets as
//!    they stream (`body`): past a budget the write or read fails.
//!
//! A refusal fails inside the plugin with a wasi-http `ErrorCode`
//! (`HTTP-request-denied`, `destination-IP-prohibited`, ...) and is recorded on
//! the job with a message naming the host and the setting. Redirects are not
//! followed here: a 3xx goes back to the guest, and following it is a new
//! request, checked again. Waiting counts toward the run's wall clock (the
//! run's guard stops it at the deadline or on cancel; dropping the store
//! aborts the request's task).

mod body;
mod connect;
mod session;

use http::uri::Scheme;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::domain::{HttpGrant, NetPolicy};
pub(crate) use session::HttpSession;

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendFuture = Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

/// What a run's requests are checked against.
#[derive(Clone)]
pub(crate) struct Egress {
    /// The job's grant (`None`: no network).
    pub(crate) grant: Option<Arc<HttpGrant>>,
    /// The server's address policy.
    pub(crate) policy: NetPolicy,
    /// The job's alias, named in refusals.
    pub(crate) alias: String,
}

/// The hooks of one run: its egress rules and its session (records, budgets).
pub(crate) struct OutboundHooks {
    pub(crate) egress: Arc<Egress>,
    pub(crate) session: HttpSession,
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let target = Target::of(&request);
        let method = request.method().to_string();
        let call = self.session.start(&method, &target.origin());
        if let Err(refusal) = self.check(&target, &call) {
            call.fail(&refusal.message);
            return Box::new(async move { Err(refusal.code) });
        }
        Box::new(connect::send(self.egress.clone(), target, request, options, call))
    }
}

impl OutboundHooks {
    /// The checks made before any I/O: the request budget and the grant.
    fn check(&self, target: &Target, call: &session::Call) -> Result<(), Refusal> {
        let alias = &self.egress.alias;
        let Some(grant) = &self.egress.grant else {
            return Err(Refusal::denied(format!(
                "request to {} refused: outbound HTTP is not granted (allowed_hosts of alias {alias} is empty)",
                target.origin()
            )));
        };
        if call.number() > u64::from(grant.max_requests) {
            return Err(Refusal::denied(format!(
                "request to {} refused: the job already sent {} requests, the limit (http.max_requests of alias {alias})",
                target.origin(),
                grant.max_requests
            )));
        }
        if target.host.is_empty() || !grant.permits(&target.scheme, &target.host, target.port) {
            return Err(Refusal::denied(format!(
                "request to {} refused: host {} is not in allowed_hosts of alias {alias}",
                target.origin(),
                target.host_for_url()
            )));
        }
        Ok(())
    }
}

/// A refused request: what the guest sees and what the job records.
pub(crate) struct Refusal {
    pub(crate) code: Error,
    pub(crate) message: String,
}

impl Refusal {
    fn denied(message: String) -> Self {
        Self { code: Error::HttpRequestDenied, message }
    }
}

/// Where a request goes.
pub(crate) struct Target {
    /// `http` or `https`.
    pub(crate) scheme: String,
    /// Lowercase host, no brackets, no trailing dot (empty if the URI has none).
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Target {
    fn of(request: &http::Request<WasiBody>) -> Self {
        let uri = request.uri();
        let tls = uri.scheme() == Some(&Scheme::HTTPS);
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Self { scheme, host, port }
    }

    pub(crate) fn tls(&self) -> bool {
        self.scheme == "https"
    }

    /// The host as written in a URL (IPv6 in brackets).
    pub(crate) fn host_for_url(&self) -> String {
        if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() }
    }

    pub(crate) fn origin(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host_for_url(), self.port)
    }
}
