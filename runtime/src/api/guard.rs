//! What every request passes through on its way to a handler: a deadline on
//! reading its body, and a net under the handler that turns a panic into a
//! logged 500 with the API's error body instead of a dropped connection.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use std::any::Any;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;
use tower_http::catch_panic::CatchPanicLayer;

use super::ApiError;

/// Adds the body deadline and the panic net to every route of `router`
/// (layers apply to the routes added before this call).
pub fn guard<S: Clone + Send + Sync + 'static>(router: Router<S>, body_timeout: Duration) -> Router<S> {
    router
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            next.run(req.map(|body| Body::new(DeadlineBody::new(body, body_timeout))))
        }))
        .layer(CatchPanicLayer::custom(panic_response))
}

/// The 500 for a handler that panicked; the panic's message goes to the log
/// (inside the request's span), never to the client.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::internal(format_args!("handler panicked: {message}")).into_response()
}

/// The request body was not received within the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// A request body that fails with [`BodyTimeout`] once `timeout` has passed
/// since the handler first read it. The deadline covers the whole body: a
/// client sending one byte a second cannot stretch it (tower-http's
/// `RequestBodyTimeout` restarts its timer at every frame, so it would).
struct DeadlineBody {
    inner: Body,
    timeout: Duration,
    /// Armed on the first read.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Body, timeout: Duration) -> Self {
        Self { inner, timeout, deadline: None }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let timeout = self.timeout;
        let deadline = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(timeout)))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error` (or anything in its source chain) is a [`BodyTimeout`].
pub(super) fn is_body_timeout<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyTimeout> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(t) = e.downcast_ref::<BodyTimeout>() {
            return Some(t);
        }
        current = e.source();
    }
    None
}
