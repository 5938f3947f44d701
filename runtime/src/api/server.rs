//! The HTTP serving loop: accepts connections within a file-descriptor
//! budget, gives each client a deadline for its request headers, and drains
//! gracefully on shutdown.
//!
//! `axum::serve` has none of these knobs, so connections are served with
//! hyper's own HTTP/1 builder (as `axum::serve` does inside), plus:
//! - a header deadline (`header_read_timeout`): a client must deliver a
//!   request's complete headers within it, counted from the moment the server
//!   waits for them: after accepting, and after each response on a kept-alive
//!   connection, so it is also the idle keep-alive timeout;
//! - a connection limit: at most `max_connections` are served, plus a small
//!   overflow band that is shed (503, except `/healthz` and `/readyz`, which
//!   are answered so probes never starve); both together are capped by
//!   `RLIMIT_NOFILE` minus a reserve (`fd_reserve`), so the descriptors the
//!   database, compiler children and callbacks need are never taken by
//!   clients. Past both, the server stops accepting and new connections wait
//!   in the kernel's backlog, first come first served, until a slot frees
//!   (slow clients free theirs at the header deadline);
//! - accept failures for lack of resources (`EMFILE`, `ENFILE`, `ENOMEM`) back
//!   off (5 ms doubling to 1 s) instead of spinning on a listener that stays
//!   readable.
//!
//! The body deadline is a layer (`api::guard`), since only the handler
//! knows when it reads a body.

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::RETRY_AFTER;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::ApiError;

/// Limits on what one client connection may hold.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Time a client has to send a request's headers (also the idle keep-alive timeout).
    pub header_timeout: Duration,
    /// Time a handler waits for a request's whole body before answering 408.
    pub body_timeout: Duration,
    /// Most client connections served at once (also capped by the descriptor budget).
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// Descriptors kept back from clients for everything else the process opens:
/// the SQLite pool (database, WAL and shared-memory files per connection),
/// compiler children's pipes, callback and outbound sockets, artifact files,
/// the runtime's own. A quarter of the limit, between 64 and 512.
fn fd_reserve(limit: u64) -> u64 {
    (limit / 4).clamp(64, 512)
}

/// Connections accepted beyond the limit only to answer them at once: health
/// probes are served, everything else gets a 503 and the connection closes.
const OVERFLOW_SLOTS: usize = 32;

/// How many connections this process may hold: `(normal, overflow)`, where
/// `normal` is `wanted` and both together fit the descriptor limit (raised to
/// its hard maximum first) minus the reserve.
pub fn connection_budget(wanted: usize) -> (usize, usize) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read RLIMIT_NOFILE; assuming 1024");
            1024
        }
    };
    let budget = usize::try_from(limit.saturating_sub(fd_reserve(limit))).unwrap_or(usize::MAX).max(2);
    let overflow = OVERFLOW_SLOTS.min(budget / 2);
    let normal = wanted.min(budget - overflow).max(1);
    if normal < wanted {
        tracing::info!(
            max_connections = normal,
            nofile = limit,
            "connection limit lowered to fit the open-file limit (raise `ulimit -n` for more)"
        );
    }
    (normal, overflow)
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops
/// accepting, lets open requests finish (idle connections close at once) for
/// at most `drain`, and returns.
///
/// Beyond `max_connections`, up to [`OVERFLOW_SLOTS`] more connections are
/// accepted to be shed: `/healthz` and `/readyz` are answered (a probe never
/// starves behind long-polls and slow clients), anything else gets 503 with
/// `Retry-After`, and the connection closes after that one answer. Past both,
/// new connections wait in the backlog until a slot frees.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: &HttpSettings,
    drain: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let (normal, overflow) = connection_budget(settings.max_connections);
    let (slots, spare) = (Arc::new(Semaphore::new(normal)), Arc::new(Semaphore::new(overflow)));
    let shedding = router.clone().layer(axum::middleware::from_fn(move |req, next| shed(normal, req, next)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(settings.header_timeout);
    let mut http_once = http.clone();
    http_once.keep_alive(false);
    let graceful = GracefulShutdown::new();
    let mut backoff = Backoff::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first, then accept: past both bands, new clients wait in the backlog.
        let (slot, shed) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => (slot, false),
            slot = spare.clone().acquire_owned() => (slot, true),
        };
        let slot = slot.expect("the semaphores are never closed");
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    backoff.reset();
                    stream
                }
                Err(e) => {
                    backoff.after(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let io = TokioIo::new(stream);
        let conn = if shed {
            graceful.watch(http_once.serve_connection(io, TowerToHyperService::new(shedding.clone())))
        } else {
            graceful.watch(http.serve_connection(io, TowerToHyperService::new(router.clone())))
        };
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                // Header timeouts, resets, malformed requests: the client's problem.
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(?drain, "connections still open after the drain period; closing them");
    }
}

/// The answer on an overflow connection: health probes pass, the rest is shed.
async fn shed(limit: usize, req: Request, next: Next) -> Response {
    if matches!(req.uri().path(), "/healthz" | "/readyz") {
        return next.run(req).await;
    }
    let mut response = ApiError::unavailable(format!(
        "the server is at its connection limit ({limit} connections); retry shortly"
    ))
    .into_response();
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Pacing of `accept` after failures.
#[derive(Default)]
struct Backoff {
    delay: Option<Duration>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    fn reset(&mut self) {
        self.delay = None;
    }

    /// Errors of one connection (reset or aborted before it was accepted) are
    /// skipped; anything else is a lack of resources (descriptors, memory) and
    /// waits, doubling up to a second, so the loop does not spin on it.
    async fn after(&mut self, error: &io::Error) {
        if let Some(delay) = self.next(error) {
            tokio::time::sleep(delay).await;
        }
    }

    /// How long to wait after `error`, if at all.
    fn next(&mut self, error: &io::Error) -> Option<Duration> {
        use io::ErrorKind::*;
        if matches!(error.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted) {
            return None;
        }
        let delay = self.delay.map_or(Self::FIRST, |d| (d * 2).min(Self::MAX));
        if self.delay.is_none() || delay == Self::MAX {
            tracing::warn!(error = %error, retry_in = ?delay, "accepting connections failed");
        }
        self.delay = Some(delay);
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_scales_with_the_limit() {
        assert_eq!(fd_reserve(1024), 256);
        assert_eq!(fd_reserve(100), 64);
        assert_eq!(fd_reserve(1 << 20), 512);
    }

    #[test]
    fn the_budget_never_exceeds_the_wish() {
        assert_eq!(connection_budget(3), (3, OVERFLOW_SLOTS));
        let (normal, overflow) = connection_budget(usize::MAX);
        assert!(normal < usize::MAX && overflow <= OVERFLOW_SLOTS);
    }

    #[test]
    fn backoff_doubles_to_a_second_and_skips_per_connection_errors() {
        let mut b = Backoff::default();
        assert_eq!(b.next(&io::Error::from(io::ErrorKind::ConnectionAborted)), None);
        let emfile = io::Error::from_raw_os_error(24);
        assert_eq!(b.next(&emfile), Some(Backoff::FIRST));
        assert_eq!(b.next(&emfile), Some(Backoff::FIRST * 2));
        for _ in 0..20 {
            b.next(&emfile);
        }
        assert_eq!(b.next(&emfile), Some(Backoff::MAX));
        b.reset();
        assert_eq!(b.next(&emfile), Some(Backoff::FIRST));
    }
}
