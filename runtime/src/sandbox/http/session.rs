//! One run's outbound HTTP bookkeeping: the requests recorded on the job (the
//! first [`MAX_RECORDED_CALLS`]) and what all of them cost ([`HttpUsage`]).
//!
//! Shared between the run and the tasks wasmtime-wasi-http spawns for each
//! request, so it sits behind a mutex (held for a few field updates, never
//! across an await). When the run ends, [`HttpSession::finish`] takes the
//! records; a request still in flight then is recorded as interrupted, and
//! whatever its task does afterwards (it is being aborted) changes nothing.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::domain::{HttpCall, HttpUsage, MAX_RECORDED_CALLS};

/// What an unfinished request is recorded as when the run ends.
const INTERRUPTED: &str = "interrupted: the run ended (time limit or cancel) while the request was in flight";

#[derive(Clone, Default)]
pub(crate) struct HttpSession {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    usage: HttpUsage,
    calls: Vec<Open>,
    finished: bool,
}

struct Open {
    call: HttpCall,
    started: Instant,
    done: bool,
}

impl Open {
    fn close(&mut self) {
        if !self.done {
            self.done = true;
            self.call.duration_ms = self.started.elapsed().as_millis() as u64;
        }
    }
}

impl HttpSession {
    /// Counts a new request and opens its record.
    pub(crate) fn start(&self, method: &str, origin: &str) -> Call {
        let mut s = self.lock();
        s.usage.requests += 1;
        let number = s.usage.requests;
        let index = (s.calls.len() < MAX_RECORDED_CALLS && !s.finished).then(|| {
            s.calls.push(Open {
                call: HttpCall {
                    method: method.to_string(),
                    origin: origin.to_string(),
                    status: None,
                    error: None,
                    sent_bytes: 0,
                    received_bytes: 0,
                    duration_ms: 0,
                },
                started: Instant::now(),
                done: false,
            });
            s.calls.len() - 1
        });
        Call { session: self.clone(), index, number }
    }

    /// The records and the usage; later updates are ignored.
    pub(crate) fn finish(&self) -> (Vec<HttpCall>, HttpUsage) {
        let mut s = self.lock();
        s.finished = true;
        for open in &mut s.calls {
            if !open.done && open.call.status.is_none() && open.call.error.is_none() {
                open.call.error = Some(INTERRUPTED.into());
            }
            open.close();
        }
        (s.calls.iter().map(|o| o.call.clone()).collect(), s.usage)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding it leaves plain counters: still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One request's record. Closed (its duration taken) when its response body
/// ends or is dropped, or when it fails.
pub(crate) struct Call {
    session: HttpSession,
    index: Option<usize>,
    number: u64,
}

impl Call {
    /// This request's number in the run, from 1.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    fn update(&self, f: impl FnOnce(&mut HttpUsage, Option<&mut Open>)) {
        let mut s = self.session.lock();
        if s.finished {
            return;
        }
        let s = &mut *s;
        let open = self.index.and_then(|i| s.calls.get_mut(i));
        f(&mut s.usage, open);
    }

    /// Records why the request failed, and closes it (the first reason stays).
    pub(crate) fn fail(&self, message: &str) {
        self.update(|_, open| {
            if let Some(o) = open {
                o.call.error.get_or_insert_with(|| message.to_string());
                o.close();
            }
        });
    }

    /// Records the response status.
    pub(crate) fn status(&self, status: u16) {
        self.update(|_, open| {
            if let Some(o) = open {
                o.call.status = Some(status);
            }
        });
    }

    /// Takes `n` bytes from the run's send budget of `limit`; false (nothing
    /// taken) when they do not fit.
    pub(crate) fn sent(&self, n: u64, limit: u64) -> bool {
        let mut fits = true;
        self.update(|usage, open| {
            if usage.sent_bytes + n > limit {
                fits = false;
                return;
            }
            usage.sent_bytes += n;
            if let Some(o) = open {
                o.call.sent_bytes += n;
            }
        });
        fits
    }

    /// Takes `n` bytes from the run's receive budget of `limit`, as
    /// [`Call::sent`].
    pub(crate) fn received(&self, n: u64, limit: u64) -> bool {
        let mut fits = true;
        self.update(|usage, open| {
            if usage.received_bytes + n > limit {
                fits = false;
                return;
            }
            usage.received_bytes += n;
            if let Some(o) = open {
                o.call.received_bytes += n;
            }
        });
        fits
    }

    /// The response body ended: closes the record.
    pub(crate) fn close(&self) {
        self.update(|_, open| {
            if let Some(o) = open {
                o.close();
            }
        });
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The guest dropped the response (or its body) unread, or the
        // request's task was aborted: the time until now is what it took.
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_records_and_interruptions() {
        let session = HttpSession::default();
        let a = session.start("GET", "http://a:80");
        assert!(a.sent(5, 10) && !a.sent(6, 10) && a.sent(5, 10));
        assert!(a.received(3, 3) && !a.received(1, 3));
        a.status(200);
        drop(a);
        let b = session.start("POST", "http://b:80");
        assert_eq!(b.number(), 2);
        let c = session.start("GET", "http://c:80");
        c.fail("refused");
        let (calls, usage) = session.finish();
        assert_eq!(usage, HttpUsage { requests: 3, sent_bytes: 10, received_bytes: 3 });
        assert_eq!((calls[0].status, calls[0].sent_bytes, calls[0].received_bytes), (Some(200), 10, 3));
        assert_eq!(calls[1].error.as_deref(), Some(INTERRUPTED));
        assert_eq!(calls[2].error.as_deref(), Some("refused"));
        // After the end, a late task changes nothing.
        b.fail("late");
        assert_eq!(session.finish().0[1].error.as_deref(), Some(INTERRUPTED));
    }
}
