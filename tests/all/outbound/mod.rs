//! Plugins' outbound HTTP against real local servers (an axum app on
//! 127.0.0.1 per test): the grant, the address policy, redirects, budgets,
//! time limits and cancel, first on the engine, then through the API (job
//! view records, tenant usage, alias validation).

mod api;
mod sandbox;

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Notify;

/// A local upstream server: `/hello` (12 bytes of text/plain), `/bytes/{n}`,
/// `/redirect?to=URL` (302), `/hang` (never answers; `arrived` is notified),
/// `POST /echo` (answers the body's length).
pub struct Upstream {
    pub addr: SocketAddr,
    /// Notified when a request reaches `/hang`.
    pub arrived: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start() -> Self {
        let arrived = Arc::new(Notify::new());
        let on_hang = arrived.clone();
        let app = Router::new()
            .route("/hello", get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "hello, world") }))
            .route("/bytes/{n}", get(|Path(n): Path<usize>| async move { vec![b'y'; n] }))
            .route(
                "/redirect",
                get(|Query(q): Query<HashMap<String, String>>| async move {
                    (StatusCode::FOUND, [(header::LOCATION, q["to"].clone())]).into_response()
                }),
            )
            .route(
                "/hang",
                get(move || {
                    let on_hang = on_hang.clone();
                    async move {
                        on_hang.notify_one();
                        std::future::pending::<()>().await;
                        "never"
                    }
                }),
            )
            .route("/echo", post(|body: axum::body::Bytes| async move { body.len().to_string() }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, arrived, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }
}
