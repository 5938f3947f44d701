//! # wasmq: a job server that runs WebAssembly plugins
//!
//! Teams push background work to wasmq over HTTP; each job runs in a fresh
//! wasmtime sandbox with fuel, wall-clock, memory and output limits, so one bad
//! job cannot take the host down and no tenant's code can reach another's.
//!
//! # Layout
//!
//! - [`domain`]: pure types (no wasmtime, tokio or I/O): [`domain::Digest`],
//!   [`domain::Limits`], [`domain::Outcome`] and its typed [`domain::RunError`],
//!   [`domain::NetPolicy`] (which addresses a client may make the server connect to).
//! - [`sandbox`]: execution. [`sandbox::Engine`] (one per process) loads modules
//!   into [`sandbox::Plugin`]s (validated, compiled off the async threads a
//!   bounded number at a time, failures remembered, cached by digest in memory
//!   and on disk) and runs one plugin on one payload:
//!   `engine.run(&plugin, payload, &limits, ctx) -> Outcome`. Job plugins of
//!   contract `wasmq:plugin@0.1.0` and `0.2.0` both run; 0.2.0's configuration,
//!   secret and key-value calls reach `ctx.capabilities` ([`sandbox::Capabilities`],
//!   nothing granted by default).
//!   `engine.run(&plugin, payload, &limits, ctx) -> Outcome`. Outbound
//!   `wasi:http` goes only through `sandbox::http`: the job's grant
//!   ([`domain::HttpGrant`], its alias's `allowed_hosts` pinned at dispatch in
//!   its limits), the [`domain::NetPolicy`] on every resolved address
//!   (`--http-allow`), per-job request and byte budgets, and a record of each
//!   request in the outcome (shown in the job view, counted in usage).
//! - [`store`]: persistence behind the [`store::Store`] trait, opened by
//!   `store::connect(url)` (SQLite, the embedded default, or PostgreSQL, which
//!   several nodes share); the rules all backends share in `store/rows/` and
//!   `store/rules/`, each backend's SQL in its folder (`store/sqlite/`,
//!   `store/postgres/`, one file per table family, the same files in both);
//!   migrations in `runtime/migrations/<backend>/`. Usage per tenant per day (`store/usage.rs`)
//!   is counted inside the transactions of the writes that cause it.
//! - [`queue`]: orchestration: the producer claims runnable jobs in batches into
//!   a node-local priority buffer, `workers` runner tasks drain it through the
//!   executor (which runs a job in the engine and decides retry or death), the
//!   completer writes outcomes in batches, the inserter group-commits dispatches,
//!   maintenance renews leases and rescues expired ones, the registry keeps
//!   this node's row in the node registry (`GET /v1/nodes`), and `controls`
//!   caches the queues' pause and cluster-wide limits (`/v1/queues`, and
//!   aliases' limits, `/v1/aliases/{name}/limits`, kept in the same table;
//!   enforced by the claim itself in `store/rules/queues.rs`).
//! - [`bus`]: the node's event stream (`GET /v1/events`, `api::stream`): job,
//!   batch, worker and node events published by the queue, the inserter and
//!   the API after their changes commit, numbered in a bounded ring that each
//!   stream reads at its own pace (a stalled client lags, it never blocks a
//!   publisher); `Last-Event-ID` resumes from the ring.
//! - [`callbacks`]: signed webhook delivery with retries, off the workers, in a
//!   pool capped per receiver; targets checked against the `NetPolicy` (the
//!   server's, widened by the tenant's `callback_allow`) at dispatch and on
//!   every resolved address, secrets sealed at rest.
//! - [`api`]: transport: the `/v1` HTTP API (axum), its error shape, auth
//!   ([`api::auth`]: every request resolved to one tenant and scope, which
//!   handlers take as `Tenant<Read|Dispatch|Admin>`, from a bearer token or a
//!   signed request ([`api::auth::signed`]); the operator manages tenants,
//!   tokens and signing keys under `/v1/tenants` and reads every tenant's
//!   `/v1/usage`), per-tenant quotas at admission (`api::quota`: the tenant's own
//!   over the server's defaults, cached; dispatch rate, backpressure and watch caps
//!   per tenant), the dispatch rules every form of dispatch (job, short form, batch)
//!   shares (`api::submit`: validate -> backpressure -> insert -> wake; a job's
//!   `unique` option in `api::unique`, settled by the store), schedules
//!   (`api::schedules`, fired by [`api::scheduler`], which every node runs:
//!   no leader, the store's compare-and-set of a schedule's next due time
//!   decides who fires it; due times from `domain::schedule`), the
//!   node's event stream (`api::stream`, `GET /v1/events`), the dashboard
//!   at `/` (`api::dashboard`: a single page over the API, its files built
//!   into the binary; `api::whoami` tells it what the caller may do), and the
//!   OpenAPI document built from the same route list as the router
//!   (`api::openapi`); [`api::server`] is the serving loop
//!   (hyper connections with header deadlines, a connection limit sized to the
//!   open-file limit, graceful drain) and `api::guard` the layers every
//!   request passes (body deadline, panic -> JSON 500).
//! - [`capabilities`]: what an alias grants its jobs' runs (configuration,
//!   secrets opened on request, a command plugin's environment, key-value
//!   state with its limits), the server's implementation of
//!   [`sandbox::Capabilities`], built per job by the executor.
//! - [`metrics`]: what a node counts for `GET /metrics` (job attempts, run
//!   time and fuel per alias, compiles, callback deliveries, HTTP requests by
//!   route), counted by the queue, the callbacks and the API (`api::metrics`
//!   also counts every request), encoded by `prometheus-client`.
//! - [`traces`]: OpenTelemetry traces of each job (off unless
//!   `--otlp-endpoint`): the dispatch's span and, from the times the queue
//!   records, claim, run, complete and callback spans; the job keeps its
//!   `traceparent`, and callbacks send it on, so a job is one trace across
//!   nodes and federated instances.
//! - [`config`] and [`app`]: settings (one table row each; flags > env > TOML > defaults) and the
//!   wiring `App::build(settings).await?.run_until_stopped(shutdown)`.
//! - [`cli`]: the `wasmq` command line (`run`, which grants capabilities from its
//!   flags through `cli::capabilities`, `serve` and `worker` (the node roles,
//!   [`config::Role`]), `secret generate`, and the hidden
//!   `__compile` child the engine uses to compile untrusted modules), and the
//!   API client (`cli::client`: one module per command; `apply` plans and
//!   applies a file of modules, aliases, queues and schedules through the
//!   API, `jobs run` runs a stored job locally through `run`).
//!
//! A job flows: `POST /v1/jobs` (api: auth resolves the tenant) -> `api::submit`:
//! alias resolved, module pinned ->
//! inserter: `Store::job_insert` (group commit; 201 after the commit) -> producer
//! woken in-process -> `Store::job_claim` (lease, fencing token) -> buffer -> runner ->
//! executor: `Engine::run` (fresh `Store`, limits applied in `configure_store`,
//! instantiate, call, classify) -> `Outcome` -> completer: `Store::job_complete`
//! (succeeded / failed with backoff / dead; the run's usage counted once per
//! claim in the same transaction) -> watchers (`wait`, event
//! streams) pushed in-process through `queue::JobEvents`, callback sent.

pub mod api;
pub mod app;
pub mod bus;
pub mod callbacks;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod queue;
pub mod sandbox;
pub mod store;
pub mod traces;
