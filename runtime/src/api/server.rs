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
//! - a connection limit: at most `max_connections` (further capped by
//!   `RLIMIT_NOFILE` minus a reserve, see `fd_reserve`) are open at once;
//!   beyond it the server stops accepting and new connections wait in the
//!   kernel's backlog,
//!   first come first served, until a slot frees (slow clients free theirs at
//!   the header deadline), so the descriptors the database, compiler children
//!   and callbacks need are never taken by clients;
//! - accept failures for lack of resources (`EMFILE`, `ENFILE`, `ENOMEM`) back
//!   off (5 ms doubling to 1 s) instead of spinning on a listener that stays
//!   readable.
//!
//! The body deadline is a layer (`api::guard`), since only the handler
//! knows when it reads a body.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Limits on what one client connection may hold.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Time a client has to send a request's headers (also the idle keep-alive timeout).
    pub header_timeout: Duration,
    /// Time a handler waits for a request's whole body before answering 408.
    pub body_timeout: Duration,
    /// Most open client connections (also capped by the descriptor budget).
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

/// How many client connections this process can hold: `wanted`, capped by
/// the descriptor limit (raised to its hard maximum first) minus the reserve.
pub fn connection_budget(wanted: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read RLIMIT_NOFILE; assuming 1024");
            1024
        }
    };
    let budget = limit.saturating_sub(fd_reserve(limit)).max(1);
    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    if budget < wanted {
        tracing::info!(
            max_connections = budget,
            nofile = limit,
            "connection limit lowered to fit the open-file limit (raise `ulimit -n` for more)"
        );
    }
    wanted.min(budget).max(1)
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops
/// accepting, lets open requests finish (idle connections close at once) for
/// at most `drain`, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: &HttpSettings,
    drain: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(connection_budget(settings.max_connections)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(settings.header_timeout);
    let graceful = GracefulShutdown::new();
    let mut backoff = Backoff::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first, then accept: at the limit, new clients wait in the backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
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
        let service = TowerToHyperService::new(router.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
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
        assert_eq!(connection_budget(3), 3);
        assert!(connection_budget(usize::MAX) < usize::MAX);
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
