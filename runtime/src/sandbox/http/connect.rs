//! Sending one permitted request: resolve the host here, check every address
//! against the [`crate::domain::NetPolicy`], connect to exactly the addresses
//! that passed (TLS over rustls with the webpki roots for https), and speak
//! HTTP/1.1 with hyper over that connection. Nothing resolves the name again
//! between the check and the connect.

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::body::{Budget, Direction, Incoming, Metered};
use super::session::Call;
use super::{Egress, IoFuture, Refusal, Target};

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Sends `request` (already permitted by the grant) and records how it went.
pub(super) async fn send(
    egress: Arc<Egress>,
    target: Target,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    call: Call,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let call = Arc::new(call);
    match exchange(&egress, &target, request, options, &call).await {
        Ok(ok) => Ok(ok),
        Err(refusal) => {
            call.fail(&refusal.message);
            Err(refusal.code)
        }
    }
}

async fn exchange(
    egress: &Egress,
    target: &Target,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    call: &Arc<Call>,
) -> Result<(http::Response<WasiBody>, IoFuture), Refusal> {
    let origin = target.origin();
    let connect_timeout = options.and_then(|o| o.connect_timeout);
    let first_byte_timeout = options.and_then(|o| o.first_byte_timeout);
    let stream = within(connect_timeout, &origin, open(egress, target)).await??;

    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, Metered<WasiBody>>(TokioIo::new(stream))
        .await
        .map_err(|e| failed(&origin, Error::Hyper(e), "HTTP handshake failed"))?;

    // The request line carries only the path: the authority and scheme are
    // for a proxy, and this is a direct connection.
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() =
        http::Uri::builder().path_and_query(path).build().map_err(|_| refused_uri(&origin))?;
    let grant = egress.grant.as_ref().expect("a request is sent only under a grant");
    let budget = |direction, limit, setting: &str| Budget {
        call: call.clone(),
        direction,
        limit,
        over: format!(
            "request to {origin} failed: the job's {} exceeded {limit} bytes (http.{setting} of alias {})",
            if matches!(direction, Direction::Sent) { "request bodies" } else { "response bodies" },
            egress.alias
        )
        .into(),
        tripped: Arc::new(AtomicBool::new(false)),
    };
    let sent = budget(Direction::Sent, grant.max_request_bytes, "max_request_bytes");
    let tripped = sent.tripped.clone();
    let request = request.map(|inner| Metered { inner, budget: sent });

    let mut conn = Box::pin(conn);
    let mut response = Box::pin(sender.send_request(request));
    let answered = within(first_byte_timeout, &origin, async {
        tokio::select! {
            biased;
            r = &mut response => r,
            c = &mut conn => match c {
                Ok(()) => (&mut response).await,
                Err(e) => Err(e),
            },
        }
    })
    .await?;
    let response = match answered {
        Ok(r) => r,
        Err(_) if tripped.load(Ordering::Relaxed) => {
            // The budget's message is already recorded.
            return Err(Refusal {
                code: Error::HttpRequestBodySize(Some(grant.max_request_bytes)),
                message: String::new(),
            });
        }
        Err(e) => return Err(failed(&origin, Error::Hyper(e), "no response")),
    };
    call.status(response.status().as_u16());
    let received = budget(Direction::Received, grant.max_response_bytes, "max_response_bytes");
    let response = response.map(|b| Metered { inner: Incoming(b), budget: received }.boxed_unsync());
    let io: IoFuture = Box::new(async move { conn.await.map_err(Error::from) });
    Ok((response, io))
}

/// Resolves, checks and connects (and speaks TLS for https).
async fn open(egress: &Egress, target: &Target) -> Result<Box<dyn Stream>, Refusal> {
    let origin = target.origin();
    let addrs = resolve(egress, target).await?;
    let mut last = None;
    let mut tcp = None;
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    let Some(tcp) = tcp else {
        let (addr, e) = last.expect("resolve returns at least one address");
        let code = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused,
            std::io::ErrorKind::TimedOut => Error::ConnectionTimeout,
            _ => Error::DestinationUnavailable,
        };
        return Err(Refusal {
            code,
            message: format!("request to {origin} failed: connecting to {addr}: {e}"),
        });
    };
    if !target.tls() {
        return Ok(Box::new(tcp));
    }
    let name = rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(|_| Refusal {
        code: Error::TlsProtocolError,
        message: format!("request to {origin} failed: not a TLS server name"),
    })?;
    let tls = tokio_rustls::TlsConnector::from(tls_config()).connect(name, tcp).await.map_err(|e| {
        Refusal { code: Error::TlsProtocolError, message: format!("request to {origin} failed: TLS: {e}") }
    })?;
    Ok(Box::new(tls))
}

/// The addresses of the target's host that the address policy accepts (at
/// least one), or the refusal naming the first that was refused.
async fn resolve(egress: &Egress, target: &Target) -> Result<Vec<SocketAddr>, Refusal> {
    let origin = target.origin();
    let policy = &egress.policy;
    let refused = |why: String| Refusal {
        code: Error::DestinationIpProhibited,
        message: format!(
            "request to {origin} refused: {why} is refused by the address policy (the server's --http-allow)"
        ),
    };
    let resolved: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => {
            policy.check_name(&target.host).map_err(|r| refused(r.to_string()))?;
            tokio::net::lookup_host((target.host.as_str(), target.port))
                .await
                .map_err(|e| Refusal {
                    code: Error::DnsError { rcode: Some("name not resolved".into()), info_code: None },
                    message: format!("request to {origin} failed: {} did not resolve: {e}", target.host),
                })?
                .collect()
        }
    };
    if policy.allows_host(&target.host) {
        return Ok(resolved);
    }
    let mut first_refusal = None;
    let passed: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|a| match policy.check_ip(a.ip()) {
            Ok(()) => true,
            Err(r) => {
                first_refusal.get_or_insert(r);
                false
            }
        })
        .collect();
    match (passed.is_empty(), first_refusal) {
        (false, _) => Ok(passed),
        (true, Some(r)) => Err(refused(r.to_string())),
        (true, None) => Err(Refusal {
            code: Error::DnsError { rcode: Some("no addresses".into()), info_code: None },
            message: format!("request to {origin} failed: {} resolved to no address", target.host),
        }),
    }
}

/// Runs `fut` within the guest's timeout, if it set one.
async fn within<T>(
    limit: Option<Duration>,
    origin: &str,
    fut: impl Future<Output = T>,
) -> Result<T, Refusal> {
    match limit {
        None => Ok(fut.await),
        Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| Refusal {
            code: Error::ConnectionTimeout,
            message: format!(
                "request to {origin} failed: no answer within the request's own timeout of {d:?}"
            ),
        }),
    }
}

fn failed(origin: &str, code: Error, what: &str) -> Refusal {
    let message = format!("request to {origin} failed: {what}: {code}");
    Refusal { code, message }
}

fn refused_uri(origin: &str) -> Refusal {
    Refusal {
        code: Error::HttpRequestUriInvalid,
        message: format!("request to {origin} refused: invalid path"),
    }
}

/// The client TLS configuration: ring, the webpki roots (no system store, so
/// the result does not depend on the machine), built once.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}
