//! Server settings: typed, resolved once from (highest first) flags, `WASMQ_*`
//! environment variables, an optional TOML file, and defaults. Each setting is
//! one row of the table below, from which its flag, variable, file key,
//! default, help text, parsing and checks derive ([`declare`]). Unknown file
//! keys are rejected; the token is read only from `WASMQ_TOKEN` or the file (a
//! flag would show in `ps`) and never printed. The operator token likewise:
//! `WASMQ_OPERATOR_TOKEN`, else the file `--operator-token-file` names (a path,
//! not the secret), else `operator_token` in the config file. The signing
//! secret (`WASMQ_SECRET`, else `secret` in the config file) makes the signing
//! key `default` of signed requests; `wasmq serve` reads `./.env` first, if
//! there is one, without overriding variables already set (`cli::dotenv`).

mod declare;
pub mod values;

use anyhow::{Context, bail};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::api::HttpSettings;
use crate::callbacks::CallbackSettings;
use crate::domain::{DispatchRate, HttpCeilings, KvLimits, Limits, LimitsError, NetPolicy, TenantQuotas};
use crate::queue::QueueSettings;
use crate::sandbox::{CompileMode, EngineSettings};
use declare::settings;
use values::{Bytes, Unlimited, at_least, at_most_100_years, between, database_url, http_url, positive};
pub use values::{CallbackAllow, QueueList, Retention, default_cache_dir, parse_bytes};

/// The secrets the environment gives (read by `main`, passed in so tests
/// need not set process variables).
#[derive(Default, Clone)]
pub struct SecretEnv {
    /// `WASMQ_TOKEN`: the single token (admin of the `default` tenant).
    pub token: Option<String>,
    /// `WASMQ_OPERATOR_TOKEN`: manages tenants.
    pub operator_token: Option<String>,
    /// `WASMQ_SECRET`: the secret of the signing key `default`.
    pub secret: Option<String>,
    /// `WASMQ_SECRETS_KEY`: the key sealing alias secrets (64 hex digits).
    pub secrets_key: Option<String>,
}

impl fmt::Debug for SecretEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretEnv(***)")
    }
}

impl SecretEnv {
    /// `WASMQ_TOKEN`, `WASMQ_OPERATOR_TOKEN` and `WASMQ_SECRET` of this process (empty = unset).
    pub fn from_process() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.trim().is_empty());
        Self {
            token: var("WASMQ_TOKEN"),
            operator_token: var("WASMQ_OPERATOR_TOKEN"),
            secret: var("WASMQ_SECRET"),
            secrets_key: var("WASMQ_SECRETS_KEY"),
        }
    }
}

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself (hash it; do not log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

settings! {
    /// Address to listen on. Beyond loopback, a token is required.
    listen: SocketAddr, env "WASMQ_LISTEN", default "127.0.0.1:7700",
        |s, v| s.listen = v;
    /// Database URL: `sqlite://PATH` (embedded) or `postgres://USER@HOST/DB` (several nodes).
    database: String, env "WASMQ_DATABASE_URL", default "sqlite://wasmq.db",
        |s, v| s.database_url = database_url(v)?;
    /// Jobs run at once.
    workers: usize, env "WASMQ_WORKERS", described "number of cores",
        |s, v| s.queue.workers = between(1, MAX_WORKERS, v)?;
    /// Most jobs claimed ahead of free workers. The node holds about 50 ms of
    /// work per worker (by recent run times) up to this cap, so short jobs
    /// drain in big claims and long jobs are not hoarded; 0 claims only for
    /// idle workers (strict priorities across nodes).
    prefetch: usize, env "WASMQ_PREFETCH", default "256",
        |s, v| s.queue.prefetch = v;
    /// The queues this node runs jobs of, e.g. `default,gpu` (in the file an
    /// array); other queues' jobs are left to the nodes that consume them.
    queues: QueueList, env "WASMQ_QUEUES", described "every queue",
        |s, v| s.queue.queues = Some(v.0);
    /// Most jobs of one tenant running at once across the server, for tenants
    /// whose quota sets no `max_running`; holds even when that tenant's work
    /// is the only work.
    tenant_max_running: u64, env "WASMQ_TENANT_MAX_RUNNING", described "no limit",
        |s, v| {
            let n = at_least(1, v)?;
            s.queue.tenant_max_running = Some(n);
            s.tenant_quotas.max_running = Some(n);
        };
    /// Largest module upload.
    max_module_size: Bytes, env "WASMQ_MAX_MODULE_SIZE", default "32MiB",
        |s, v| s.engine.max_module_bytes = v.0;
    /// Largest JSON request body (jobs, batches).
    max_body_size: Bytes, env "WASMQ_MAX_BODY_SIZE", default "16MiB",
        |s, v| s.max_body_bytes = usize::try_from(v.0).map_err(|_| "is beyond this machine's memory")?;
    /// Fuel per attempt for jobs that set none: about one unit per wasm
    /// instruction (1000000000 is ~0.05-0.1 s of a tight loop, more with host calls).
    default_fuel: u64, env "WASMQ_DEFAULT_FUEL", default "1000000000",
        |s, v| s.default_limits.fuel = Some(v);
    /// Wall-clock limit per attempt.
    default_timeout: Duration, env "WASMQ_DEFAULT_TIMEOUT", default "30s",
        |s, v| s.default_limits.timeout = v;
    /// Memory per job.
    default_memory: Bytes, env "WASMQ_DEFAULT_MEMORY", default "64MiB",
        |s, v| s.default_limits.memory_bytes = v.0;
    /// Attempts per job.
    default_max_attempts: u32, env "WASMQ_DEFAULT_MAX_ATTEMPTS", default "3",
        |s, v| s.default_max_attempts = at_least(1, v)?;
    /// Compiled-code cache.
    cache_dir: PathBuf, env "WASMQ_CACHE_DIR", described "$XDG_CACHE_HOME/wasmq or ~/.cache/wasmq",
        |s, v| s.engine.cache_dir = Some(v);
    /// Lease of a running job; a job whose worker stops renewing it runs again.
    lease: Duration, env "WASMQ_LEASE", default "30s",
        |s, v| s.queue.lease = positive(v)?;
    /// First retry delay of failed jobs; doubles per attempt, with jitter.
    retry_base: Duration, env "WASMQ_RETRY_BASE", default "1s",
        |s, v| s.queue.retry_base = at_most_100_years(v)?;
    /// Longest retry delay.
    retry_max: Duration, env "WASMQ_RETRY_MAX", default "5m",
        |s, v| s.queue.retry_max = at_most_100_years(v)?;
    /// Time running jobs get to finish on SIGTERM/SIGINT.
    shutdown_grace: Duration, env "WASMQ_SHUTDOWN_GRACE", default "10s",
        |s, v| s.queue.shutdown_grace = at_most_100_years(v)?;
    /// How long finished jobs (and their results) are kept, e.g. `7d`, or `forever`.
    retention: Retention, env "WASMQ_RETENTION", default "7d",
        |s, v| s.queue.retention = v.0.map(at_most_100_years).transpose()?;
    /// Jobs that may wait to run before dispatches are refused with 429.
    max_queued_jobs: u64, env "WASMQ_MAX_QUEUED_JOBS", default "1000000",
        |s, v| s.max_queued_jobs = v;
    /// Most `wait` requests open at once; more get 503 with Retry-After.
    max_waits: usize, env "WASMQ_MAX_WAITS", default "10000",
        |s, v| s.max_waits = at_least(1, v)?;
    /// Most job event streams open at once; more get 503 with Retry-After.
    max_event_streams: usize, env "WASMQ_MAX_EVENT_STREAMS", default "1000",
        |s, v| s.max_event_streams = at_least(1, v)?;
    /// Events each node holds for `GET /v1/events` clients resuming with
    /// `Last-Event-ID` (about 300 bytes each); older ones are dropped and a
    /// client resuming from before them is told it lagged.
    event_history: usize, env "WASMQ_EVENT_HISTORY", default "50000",
        |s, v| s.event_history = at_least(1, v)?;
    /// An OpenTelemetry collector's OTLP/HTTP address (`http://localhost:4318`):
    /// each job's trace (dispatch, claim, run, complete, callback) goes to
    /// `<url>/v1/traces` as protobuf. `OTEL_EXPORTER_OTLP_HEADERS` adds
    /// headers (a hosted collector's key); `OTEL_BSP_*` tune the batching.
    otlp_endpoint: String, env "WASMQ_OTLP_ENDPOINT", described "none: no traces are exported",
        |s, v| s.traces.endpoint = Some(http_url(&v)?);
    /// Share of new traces exported, 0 to 1; a dispatch that carries a
    /// `traceparent` follows its caller's sampling decision.
    trace_sample_ratio: f64, env "WASMQ_TRACE_SAMPLE_RATIO", default "1",
        |s, v| s.traces.sample_ratio = between(0.0, 1.0, v)?;
    /// Jobs one tenant may have waiting to run (queued, scheduled or
    /// retrying) before its dispatches get 429; the tenant's `max_waiting`
    /// quota overrides it (`max_queued_jobs` still caps the whole server).
    tenant_max_waiting: Unlimited<u64>, env "WASMQ_TENANT_MAX_WAITING", default "100000",
        |s, v| s.tenant_quotas.max_waiting = v.0;
    /// Most fuel a job of a tenant may ask for (job or alias `fuel`); the
    /// tenant's `max_fuel` quota overrides it.
    tenant_max_fuel: Unlimited<u64>, env "WASMQ_TENANT_MAX_FUEL", default "unlimited",
        |s, v| s.tenant_quotas.max_fuel = v.0.map(|n| at_least(1, n)).transpose()?;
    /// Longest wall-clock limit a job of a tenant may ask for; the tenant's
    /// `max_timeout_ms` quota overrides it.
    tenant_max_timeout: Unlimited<Duration>, env "WASMQ_TENANT_MAX_TIMEOUT", default "unlimited",
        |s, v| s.tenant_quotas.max_timeout_ms = v.0.map(|d| positive(d).map(|d| d.as_millis() as u64)).transpose()?;
    /// Most memory a job of a tenant may ask for (whole MiB); the tenant's
    /// `max_memory_mb` quota overrides it.
    tenant_max_memory: Unlimited<Bytes>, env "WASMQ_TENANT_MAX_MEMORY", default "unlimited",
        |s, v| s.tenant_quotas.max_memory_mb = v.0.map(|b| at_least(1, b.0 >> 20)
            .map_err(|_| "must be at least 1MiB".to_string())).transpose()?;
    /// Largest module a tenant may upload (`max_module_size` caps every
    /// upload); the tenant's `max_module_bytes` quota overrides it.
    tenant_max_module_size: Unlimited<Bytes>, env "WASMQ_TENANT_MAX_MODULE_SIZE", default "unlimited",
        |s, v| s.tenant_quotas.max_module_bytes = v.0.map(|b| b.0);
    /// Total bytes of one tenant's modules; the tenant's
    /// `max_module_storage_bytes` quota overrides it.
    tenant_max_module_storage: Unlimited<Bytes>, env "WASMQ_TENANT_MAX_MODULE_STORAGE", default "unlimited",
        |s, v| s.tenant_quotas.max_module_storage_bytes = v.0.map(|b| b.0);
    /// Modules one tenant may keep; the tenant's `max_modules` quota overrides it.
    tenant_max_modules: Unlimited<u64>, env "WASMQ_TENANT_MAX_MODULES", default "1000",
        |s, v| s.tenant_quotas.max_modules = v.0;
    /// Bytes (keys plus values) one tenant's key-value stores may hold; the
    /// tenant's `max_kv_bytes` quota overrides it.
    tenant_max_kv_storage: Unlimited<Bytes>, env "WASMQ_TENANT_MAX_KV_STORAGE", default "unlimited",
        |s, v| s.tenant_quotas.max_kv_bytes = v.0.map(|b| b.0);
    /// Largest value a key-value key may hold.
    kv_max_value_size: Bytes, env "WASMQ_KV_MAX_VALUE_SIZE", default "64KiB",
        |s, v| s.kv.max_value_bytes = at_least(1, v.0)?;
    /// Bytes (keys plus values) one key-value store may hold.
    kv_max_store_size: Unlimited<Bytes>, env "WASMQ_KV_MAX_STORE_SIZE", default "64MiB",
        |s, v| s.kv.max_store_bytes = v.0.map(|b| b.0);
    /// Keys one key-value store may hold.
    kv_max_store_keys: Unlimited<u64>, env "WASMQ_KV_MAX_STORE_KEYS", default "100000",
        |s, v| s.kv.max_store_keys = v.0;
    /// File holding the key that seals alias secrets (64 hex digits, mode
    /// 0600; `openssl rand -hex 32` makes one); read at start.
    /// `WASMQ_SECRETS_KEY` wins over it. Without either, setting a secret is refused.
    secrets_key_file: PathBuf, env "WASMQ_SECRETS_KEY_FILE", described "none: secrets cannot be set",
        |s, v| s.secrets_key = Some(read_secret_file(&v)?);
    /// Dispatch rate of one tenant, a token bucket (`per_second=100,burst=200`;
    /// a batch takes one token per job); past it, 429 with Retry-After. The
    /// tenant's `dispatch_rate` quota overrides it.
    tenant_dispatch_rate: Unlimited<DispatchRate>, env "WASMQ_TENANT_DISPATCH_RATE", default "unlimited",
        |s, v| s.tenant_quotas.dispatch_rate = v.0;
    /// Most `wait` requests one tenant may hold open (`max_waits` caps the
    /// server); the tenant's `max_waits` quota overrides it.
    tenant_max_waits: Unlimited<u64>, env "WASMQ_TENANT_MAX_WAITS", default "1000",
        |s, v| s.tenant_quotas.max_waits = v.0;
    /// Most event streams one tenant may hold open (`max_event_streams` caps
    /// the server); the tenant's `max_event_streams` quota overrides it.
    tenant_max_event_streams: Unlimited<u64>, env "WASMQ_TENANT_MAX_EVENT_STREAMS", default "100",
        |s, v| s.tenant_quotas.max_event_streams = v.0;
    /// File holding the operator token (which manages tenants); read at
    /// start. `WASMQ_OPERATOR_TOKEN` wins over it, and it over
    /// `operator_token` in the config file. The token itself is never a flag.
    operator_token_file: PathBuf, env "WASMQ_OPERATOR_TOKEN_FILE", described "none",
        |s, v| s.operator_token = Some(read_secret_file(&v)?);
    /// Callback delivery attempts.
    callback_attempts: u32, env "WASMQ_CALLBACK_ATTEMPTS", default "10",
        |s, v| s.callbacks.max_attempts = at_least(1, v)?;
    /// First callback retry delay.
    callback_retry_base: Duration, env "WASMQ_CALLBACK_RETRY_BASE", default "1s",
        |s, v| s.callbacks.retry_base = at_most_100_years(v)?;
    /// Module compilations at once, each a child process.
    max_concurrent_compiles: usize, env "WASMQ_MAX_CONCURRENT_COMPILES",
        described "half the cores, at least 1",
        |s, v| s.engine.max_concurrent_compiles = at_least(1, v)?;
    /// Uploads that may wait for a compile slot; more get 503 with Retry-After.
    compile_queue: usize, env "WASMQ_COMPILE_QUEUE", default "16",
        |s, v| s.engine.compile_queue = v;
    /// Versions kept per alias; older ones are pruned when a new one is written.
    alias_history: u32, env "WASMQ_ALIAS_HISTORY", default "100",
        |s, v| s.alias_history = at_least(2, v)
            .map_err(|e| format!("{e} (rollback needs the version before the current)"))?;
    /// Address ranges callbacks may reach although they are not public, e.g.
    /// `10.1.0.0/16,127.0.0.0/8` (in the file an array of ranges).
    callback_allow: CallbackAllow, env "WASMQ_CALLBACK_ALLOW",
        described "none: loopback, private, link-local and other special-purpose addresses are refused",
        |s, v| s.callbacks.policy = NetPolicy::new(v.0);
    /// Address ranges plugins' outbound HTTP may reach although they are not
    /// public, e.g. `10.1.0.0/16` (in the file an array of ranges). Which
    /// hosts a plugin may call at all is its alias's `allowed_hosts`.
    http_allow: CallbackAllow, env "WASMQ_HTTP_ALLOW",
        described "none: loopback, private, link-local and other special-purpose addresses are refused",
        |s, v| s.engine.http_policy = NetPolicy::new(v.0);
    /// Most outbound HTTP requests per job: the ceiling of an alias's
    /// `http.max_requests`, and what an alias that sets none gets.
    http_max_requests: u32, env "WASMQ_HTTP_MAX_REQUESTS", default "100",
        |s, v| s.http_ceilings.max_requests = at_least(1, v)?;
    /// Most bytes of outbound request bodies per job (ceiling and default of
    /// an alias's `http.max_request_bytes`).
    http_max_request_size: Bytes, env "WASMQ_HTTP_MAX_REQUEST_SIZE", default "10MiB",
        |s, v| s.http_ceilings.max_request_bytes = at_least(1, v.0)?;
    /// Most bytes of outbound response bodies per job (ceiling and default of
    /// an alias's `http.max_response_bytes`).
    http_max_response_size: Bytes, env "WASMQ_HTTP_MAX_RESPONSE_SIZE", default "50MiB",
        |s, v| s.http_ceilings.max_response_bytes = at_least(1, v.0)?;
    /// Key file sealing callback secrets at rest (created with mode 0600 if missing).
    callback_key_file: PathBuf, env "WASMQ_CALLBACK_KEY_FILE", described "<database file>.callback-key",
        |s, v| s.callbacks.key_file = Some(v);
    /// Time a client has to send a request's headers; also how long an idle
    /// keep-alive connection stays open.
    header_timeout: Duration, env "WASMQ_HEADER_TIMEOUT", default "10s",
        |s, v| s.http.header_timeout = positive(v)?;
    /// Time a client has to send a request's whole body; slower bodies get 408
    /// and the connection is closed.
    body_timeout: Duration, env "WASMQ_BODY_TIMEOUT", default "60s",
        |s, v| s.http.body_timeout = positive(v)?;
    /// Most client connections served at once; a few more are answered 503
    /// (health probes are served), the rest wait until one closes. Also capped
    /// by the open-file limit (`ulimit -n`) minus a reserve.
    max_connections: usize, env "WASMQ_MAX_CONNECTIONS", default "10000",
        |s, v| s.http.max_connections = at_least(1, v)?;
}

/// What a node does (`wasmq serve`, `wasmq serve --no-workers`, `wasmq worker`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The HTTP API and workers.
    #[default]
    Server,
    /// The HTTP API only: other nodes on its database run the jobs.
    Api,
    /// Workers only: no HTTP API; it runs jobs dispatched through other nodes.
    Worker,
}

impl Role {
    /// The name shown in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Api => "api",
            Role::Worker => "worker",
        }
    }
}

/// Everything `App::build` needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// What this node does.
    pub role: Role,
    /// Listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Database URL.
    pub database_url: String,
    /// Bearer token: admin of the `default` tenant. With no operator token
    /// either, `None` allows loopback only.
    pub token: Option<Secret>,
    /// Operator token: manages tenants and acts for any of them.
    pub operator_token: Option<Secret>,
    /// Secret of the signing key `default` (signed requests as admin of the
    /// `default` tenant); at least 32 bytes.
    pub signing_secret: Option<Secret>,
    /// Sandbox engine.
    pub engine: EngineSettings,
    /// Worker pool.
    pub queue: QueueSettings,
    /// Callback delivery.
    pub callbacks: CallbackSettings,
    /// Limits of jobs that set none.
    pub default_limits: Limits,
    /// Outbound HTTP per job: ceilings of aliases' `http` limits.
    pub http_ceilings: HttpCeilings,
    /// Attempts of jobs that set none.
    pub default_max_attempts: u32,
    /// Largest JSON body.
    pub max_body_bytes: usize,
    /// Waiting jobs before dispatches get 429.
    pub max_queued_jobs: u64,
    /// Versions kept per alias (at least 2, so rollback always has one).
    pub alias_history: u32,
    /// `wait` requests open at once before 503.
    pub max_waits: usize,
    /// Event streams open at once before 503.
    pub max_event_streams: usize,
    /// Events held per node for resuming streams.
    pub event_history: usize,
    /// OpenTelemetry export (off without an endpoint).
    pub traces: crate::traces::TraceSettings,
    /// Every tenant's quotas unless its own say otherwise (`None`: unlimited).
    pub tenant_quotas: TenantQuotas,
    /// Client connections: header and body deadlines, connection limit.
    pub http: HttpSettings,
    /// Key-value limits (the tenant's `max_kv_bytes` quota comes on top).
    pub kv: KvLimits,
    /// The key sealing alias secrets (64 hex digits); `None`: secrets cannot be set.
    pub secrets_key: Option<Secret>,
}

impl Settings {
    /// Defaults for a server on `listen` with `database_url`; the compiler is
    /// this executable (`wasmq __compile`).
    pub fn new(listen: SocketAddr, database_url: impl Into<String>, compiler: PathBuf) -> Self {
        let mut s = Self::defaults(compiler);
        s.listen = listen;
        s.database_url = database_url.into();
        s
    }

    /// The declared defaults over the layers' own (core counts, cache path).
    fn defaults(compiler: PathBuf) -> Self {
        let mut s = Self {
            role: Role::Server,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: String::new(),
            token: None,
            operator_token: None,
            signing_secret: None,
            engine: EngineSettings {
                compile_mode: CompileMode::Subprocess { program: compiler },
                cache_dir: default_cache_dir(),
                ..EngineSettings::default()
            },
            queue: QueueSettings::default(),
            callbacks: CallbackSettings::default(),
            default_limits: Limits::default(),
            http_ceilings: HttpCeilings::default(),
            default_max_attempts: 0,
            max_body_bytes: 0,
            max_queued_jobs: 0,
            alias_history: 0,
            max_waits: 0,
            max_event_streams: 0,
            event_history: 0,
            traces: crate::traces::TraceSettings::default(),
            tenant_quotas: TenantQuotas::default(),
            http: HttpSettings::default(),
            kv: KvLimits::default(),
            secrets_key: None,
        };
        // Every row with a `default` sets its field here, and every declared
        // default passes its own check (`every_declared_default_parses_and_applies`).
        if let Err(e) = ServeArgs::declared_defaults().apply_to(&mut s) {
            unreachable!("a declared default fails its own check: {e}");
        }
        s
    }

    /// Resolves flags and environment (already merged by clap), the config file,
    /// the secrets of the environment, and defaults.
    pub fn resolve(args: ServeArgs, env: SecretEnv) -> anyhow::Result<Self> {
        let (file, secrets) = match &args.config {
            Some(path) => read_file(path)?,
            None => (ServeArgs::default(), FileSecrets::default()),
        };
        let exe = std::env::current_exe().context("locating the wasmq executable (the compiler)")?;
        let mut s = Settings::defaults(exe);
        args.or(file).apply_to(&mut s).map_err(anyhow::Error::msg)?;
        s.token = env.token.filter(|t| !t.is_empty()).map(Secret::new).or(secrets.token);
        s.operator_token = env
            .operator_token
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .or(s.operator_token.take())
            .or(secrets.operator_token);
        s.secrets_key =
            env.secrets_key.filter(|k| !k.trim().is_empty()).map(Secret::new).or(s.secrets_key.take());
        if let Some(key) = &s.secrets_key {
            crate::callbacks::SecretBox::from_hex(key.expose())
                .map_err(|e| anyhow::anyhow!("WASMQ_SECRETS_KEY (or --secrets-key-file): {e}"))?;
        }
        s.signing_secret = env.secret.filter(|t| !t.trim().is_empty()).map(Secret::new).or(secrets.secret);
        if let Some(secret) = &s.signing_secret
            && secret.expose().trim().len() < crate::api::auth::signed::MIN_SECRET_BYTES
        {
            bail!(
                "WASMQ_SECRET (or `secret` in the config file) must be at least {} bytes; \
                 `wasmq secret generate` makes one",
                crate::api::auth::signed::MIN_SECRET_BYTES
            );
        }
        if let (Some(op), Some(single)) = (&s.operator_token, &s.token)
            && op.expose().trim() == single.expose().trim()
        {
            bail!(
                "the operator token and the token must differ (one manages tenants, the other is a tenant's)"
            );
        }
        s.default_limits.validate(s.engine.max_memory_bytes).map_err(|e| match e {
            LimitsError::OutOfRange { field, .. } => {
                let setting = match field {
                    "fuel" => "default_fuel",
                    "timeout_ms" => "default_timeout",
                    "memory_bytes" => "default_memory",
                    other => other,
                };
                anyhow::anyhow!("{setting}: default job limits: {e}")
            }
        })?;
        // Every worker runs in a pool slot of its own, with room for the
        // instances that are not jobs (upload validation, shutdown overlap):
        // with more workers than slots, the runs past the pool would trap.
        let slots = u32::try_from(s.queue.workers).unwrap_or(u32::MAX).saturating_add(POOL_HEADROOM);
        s.engine.max_instances = s.engine.max_instances.max(slots);
        Ok(s)
    }
}

impl Settings {
    /// These settings for `wasmq worker`: workers only, no HTTP API (its
    /// `listen` and tokens are not used). A worker shares its queue with the
    /// nodes that take dispatches, so it needs a database several processes
    /// share: PostgreSQL.
    pub fn into_worker(mut self) -> anyhow::Result<Self> {
        if self.role == Role::Api {
            bail!("`wasmq worker` runs jobs: --no-workers belongs to `wasmq serve` (an API-only node)");
        }
        let scheme = self.database_url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
            bail!(
                "`wasmq worker` takes its jobs from a database its `wasmq serve` nodes share: give it                  --database postgres://... (WASMQ_DATABASE_URL); on SQLite, `wasmq serve` runs the workers"
            );
        }
        self.role = Role::Worker;
        Ok(self)
    }
}

/// Most `workers`: each is a sandbox slot (its memory reserved up front) and a
/// runner task; past a few thousand a node needs more nodes, not more workers.
const MAX_WORKERS: usize = 4096;

/// Pool slots kept beyond `workers`.
const POOL_HEADROOM: u32 = 16;

/// The secrets a config file holds.
#[derive(Default)]
struct FileSecrets {
    token: Option<Secret>,
    operator_token: Option<Secret>,
    secret: Option<Secret>,
}

/// Reads a file holding one secret (surrounding whitespace dropped).
fn read_secret_file(path: &std::path::Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Secret::new(secret))
}

/// Reads the `--config` file: its settings, its `token`, `operator_token` and `secret`.
/// Unknown keys are errors.
fn read_file(path: &std::path::Path) -> anyhow::Result<(ServeArgs, FileSecrets)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("in config file {}", path.display()))?;
    let mut secret = |key: &str| match table.remove(key) {
        None => Ok(None),
        Some(toml::Value::String(t)) if !t.is_empty() => Ok(Some(Secret::new(t))),
        Some(_) => bail!("config file {}: {key} must be a non-empty string", path.display()),
    };
    let secrets = FileSecrets {
        token: secret("token")?,
        operator_token: secret("operator_token")?,
        secret: secret("secret")?,
    };
    let file = ServeArgs::take_from(&mut table)
        .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
    if table.contains_key("queue_limits") {
        bail!(
            "config file {}: `queue_limits` is no longer a node setting: a queue's limits are the \
             cluster's, set once with `wasmq queue limit NAME --concurrency N` (PUT /v1/queues/NAME/limits) \
             or `wasmq apply`",
            path.display()
        );
    }
    if let Some(unknown) = table.keys().next() {
        bail!(
            "config file {}: unknown setting `{unknown}` (known: token, operator_token, secret, {})",
            path.display(),
            ServeArgs::KEYS.join(", ")
        );
    }
    Ok((file, secrets))
}

#[cfg(test)]
mod tests;
