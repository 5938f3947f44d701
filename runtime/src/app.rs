//! Wiring: builds the store, engine, worker pool, callback sender and HTTP
//! server from [`Settings`], and runs them until a shutdown signal.

use anyhow::{Context, bail};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::capabilities::Grants;
use crate::config::{Role, Settings};
use crate::queue::{NodeInfo, Observers, Queue, QueueTasks};
use crate::sandbox::Engine;
use crate::store::Store;

/// A built node, listening (unless it is a worker) but not yet serving.
pub struct App {
    /// The HTTP API's listener (`None`: a worker node has no API).
    listener: Option<TcpListener>,
    state: AppState,
    tasks: QueueTasks,
    callbacks: tokio::task::JoinHandle<()>,
    /// How long open requests may take to finish once shutdown starts.
    drain: std::time::Duration,
}

impl App {
    /// Binds the listener (not for a worker), opens the database (migrating
    /// it), registers the node and starts the workers and the callback
    /// sender. Refuses to listen beyond loopback without a token.
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let serves_api = settings.role != Role::Worker;
        if serves_api
            && !settings.listen.ip().is_loopback()
            && settings.token.is_none()
            && settings.operator_token.is_none()
            && settings.signing_secret.is_none()
        {
            bail!(
                "refusing to listen on {} without a token: set WASMQ_TOKEN or `token` in the config file, \
                 or an operator token (WASMQ_OPERATOR_TOKEN, WASMQ_OPERATOR_TOKEN_FILE or `operator_token`) \
                 (only loopback addresses may run without auth)",
                settings.listen
            );
        }
        // Before the store: a database that needs a key file is refused untouched.
        let callback_secrets = crate::callbacks::SecretBox::for_database(
            settings.callbacks.key_file.as_deref(),
            &settings.database_url,
        )?;
        let store: Arc<dyn Store> =
            crate::store::connect(&settings.database_url).await.with_context(|| {
                format!("opening database {}", crate::store::redacted(&settings.database_url))
            })?;
        let engine = Engine::new(settings.engine.clone()).context("starting the sandbox engine")?;
        let listener = match serves_api {
            true => Some(
                TcpListener::bind(settings.listen)
                    .await
                    .with_context(|| format!("binding {}", settings.listen))?,
            ),
            false => None,
        };
        let addr = listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let callbacks_wake = Arc::new(Notify::new());
        let aliases = Arc::new(api::AliasCache::default());
        let quotas = Arc::new(api::Quotas::new(settings.tenant_quotas.clone(), settings.alias_history));
        let secrets = match &settings.secrets_key {
            Some(key) => {
                Some(crate::callbacks::SecretBox::from_hex(key.expose()).map_err(anyhow::Error::msg)?)
            }
            None => None,
        };
        let grants = Grants::new(store.clone(), aliases.clone(), quotas.clone(), secrets, settings.kv);
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let node = NodeInfo::new(settings.role, addr);
        let traces = crate::traces::Traces::start(&settings.traces, &node.id)?;
        let (queue, tasks) = Queue::start(
            store.clone(),
            engine.clone(),
            settings.queue.clone(),
            callbacks_wake.clone(),
            Some(grants.clone()),
            node,
            Observers { metrics: metrics.clone(), bus: crate::bus::Bus::new(settings.event_history), traces },
        );
        queue.register().await.context("registering this node in the node registry")?;
        let callbacks = tokio::spawn(crate::callbacks::run_sender(
            store.clone(),
            settings.callbacks.clone(),
            callback_secrets.clone(),
            callbacks_wake,
            settings.queue.poll_interval,
            metrics.clone(),
            queue.traces().clone(),
        ));
        let state = AppState::new(crate::api::AppContext {
            store: store.clone(),
            engine,
            queue: queue.clone(),
            default_limits: settings.default_limits.clone(),
            http_ceilings: settings.http_ceilings,
            default_max_attempts: settings.default_max_attempts,
            auth: Arc::new(
                api::auth::Authenticator::new(
                    settings.operator_token.as_ref().map(|t| t.expose()),
                    settings.token.as_ref().map(|t| t.expose()),
                )
                .with_default_key(settings.signing_secret.as_ref().map(|t| t.expose())),
            ),
            max_body_bytes: settings.max_body_bytes,
            backpressure: Arc::new(api::Backpressure::new(settings.max_queued_jobs)),
            quotas,
            inserter: crate::queue::Inserter::start(store.clone(), &queue),
            aliases,
            grants,
            kv: settings.kv,
            callback_policy: settings.callbacks.policy.clone(),
            callback_secrets,
            alias_history: settings.alias_history,
            watch_caps: Arc::new(api::WatchCaps::new(settings.max_waits, settings.max_event_streams)),
            shutdown: CancellationToken::new(),
            http: settings.http.clone(),
            metrics,
        });
        Ok(App { listener, state, tasks, callbacks, drain: settings.queue.shutdown_grace })
    }

    /// The bound address of the HTTP API (useful with port 0); `None` for a
    /// worker, which has none.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// This node's id in the node registry.
    pub fn node_id(&self) -> &str {
        self.state.queue.node_id()
    }

    /// Serves until `shutdown` resolves. Then, at once and side by side: the
    /// HTTP side stops accepting, answers open long-polls with the job as it
    /// is, ends event streams, closes idle connections and lets requests in
    /// flight finish; the queue stops claiming, lets running jobs finish and
    /// returns the rest to the queue. Both within the shutdown grace.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stopping = self.state.shutdown.clone();
        let http = self.state.http.clone();
        let signal = {
            let stopping = stopping.clone();
            async move {
                shutdown.await;
                stopping.cancel();
            }
        };
        let scheduler = tokio::spawn(crate::api::scheduler::run(self.state.clone()));
        let traces = self.state.queue.traces().clone();
        let tasks = self.tasks;
        let queue = async move {
            stopping.cancelled().await;
            tasks.stop().await;
        };
        match self.listener {
            Some(listener) => {
                tracing::info!(addr = %listener.local_addr()?, node = %self.state.queue.node_id(), "wasmq listening");
                let router = api::router(self.state);
                tokio::join!(api::server::serve(listener, router, &http, self.drain, signal), queue);
            }
            None => {
                tracing::info!(node = %self.state.queue.node_id(), "wasmq worker running");
                tokio::join!(signal, queue);
            }
        }
        self.callbacks.abort();
        scheduler.abort();
        // The spans of the last jobs: exported before the process ends.
        if traces.on() {
            let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
        }
        Ok(())
    }
}
