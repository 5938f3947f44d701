//! Request and response bodies counted against the run's byte budgets as they
//! stream: the frame that would pass a budget fails the write or the read
//! (with the wasi-http error for a body too large) and is recorded on the job.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use wasmtime_wasi_http::Error;

use super::session::Call;

/// Which way a body flows.
#[derive(Clone, Copy)]
pub(super) enum Direction {
    /// The guest's request body, sent.
    Sent,
    /// The server's response body, received.
    Received,
}

/// A body whose data frames are taken from a budget.
pub(super) struct Metered<B> {
    pub(super) inner: B,
    pub(super) budget: Budget,
}

/// A run's byte budget in one direction, and what to record when it runs out.
pub(super) struct Budget {
    pub(super) call: Arc<Call>,
    pub(super) direction: Direction,
    pub(super) limit: u64,
    /// The message recorded when the budget runs out.
    pub(super) over: Arc<str>,
    /// Set once a budget ran out (the send path reads it to name the cause).
    pub(super) tripped: Arc<std::sync::atomic::AtomicBool>,
}

impl<B> Body for Metered<B>
where
    B: Body<Data = Bytes, Error = Error> + Unpin,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let Metered { inner, budget: this } = &mut *self;
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                let fits = match this.direction {
                    Direction::Sent => this.call.sent(n, this.limit),
                    Direction::Received => this.call.received(n, this.limit),
                };
                if !fits {
                    this.tripped.store(true, std::sync::atomic::Ordering::Relaxed);
                    this.call.fail(&this.over);
                    return Poll::Ready(Some(Err(match this.direction {
                        Direction::Sent => Error::HttpRequestBodySize(Some(this.limit)),
                        Direction::Received => Error::HttpResponseBodySize(Some(this.limit)),
                    })));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.call.fail(&e.to_string());
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                if matches!(this.direction, Direction::Received) {
                    this.call.close();
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A hyper response body as a wasi-http one (its errors mapped).
pub(super) struct Incoming(pub(super) hyper::body::Incoming);

impl Body for Incoming {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        Pin::new(&mut self.0).poll_frame(cx).map_err(Error::from)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}
