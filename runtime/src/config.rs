//! Server settings: typed, resolved once from (highest first) flags, `WASMQ_*`
//! environment variables, an optional TOML file, and defaults. Unknown file keys
//! are rejected; the token is read only from `WASMQ_TOKEN` or the file (a flag
//! would show in `ps`) and never printed.

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::api::HttpSettings;
use crate::callbacks::CallbackSettings;
use crate::domain::{Limits, NetPolicy};
use crate::queue::QueueSettings;
use crate::sandbox::{CompileMode, EngineSettings};

/// A secret that never prints.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
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

/// `wasmq serve` options. Every option can also come from its `WASMQ_*`
/// variable or the `--config` TOML file (same names, with `_` for `-`).
#[derive(Debug, Args, Default)]
#[command(after_help = "\
Authentication: the bearer token comes from WASMQ_TOKEN or `token = \"...\"` in the --config
file, never from a flag (it would show in `ps`). Without a token the server only listens on
loopback addresses.

Precedence: flags, then WASMQ_* environment variables, then the --config file, then defaults.")]
pub struct ServeArgs {
    /// TOML file with any of the settings below (and `token`).
    #[arg(long, env = "WASMQ_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7700]. Beyond loopback, a token is required.
    #[arg(long, env = "WASMQ_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Database URL [default: sqlite://wasmq.db].
    #[arg(long, env = "WASMQ_DATABASE_URL")]
    pub database: Option<String>,
    /// Jobs run at once [default: number of cores].
    #[arg(long, env = "WASMQ_WORKERS")]
    pub workers: Option<usize>,
    /// Most jobs claimed ahead of free workers [default: 256]. The node holds
    /// about 50 ms of work per worker (by recent run times) up to this cap, so
    /// short jobs drain in big claims and long jobs are not hoarded; 0 claims
    /// only for idle workers (strict priorities across nodes).
    #[arg(long, env = "WASMQ_PREFETCH")]
    pub prefetch: Option<usize>,
    /// Per-queue concurrency limits on this node, e.g. `gpu=1,mail=4` [default: none].
    #[arg(long, env = "WASMQ_QUEUE_LIMITS", value_parser = parse_queue_limits)]
    pub queue_limits: Option<QueueLimits>,
    /// Largest module upload [default: 32MiB].
    #[arg(long, env = "WASMQ_MAX_MODULE_SIZE", value_parser = parse_bytes)]
    pub max_module_size: Option<u64>,
    /// Largest JSON request body (jobs, batches) [default: 16MiB].
    #[arg(long, env = "WASMQ_MAX_BODY_SIZE", value_parser = parse_bytes)]
    pub max_body_size: Option<u64>,
    /// Fuel per attempt for jobs that set none [default: 1000000000].
    #[arg(long, env = "WASMQ_DEFAULT_FUEL")]
    pub default_fuel: Option<u64>,
    /// Wall-clock limit per attempt [default: 30s].
    #[arg(long, env = "WASMQ_DEFAULT_TIMEOUT", value_parser = humantime::parse_duration)]
    pub default_timeout: Option<Duration>,
    /// Memory per job [default: 64MiB].
    #[arg(long, env = "WASMQ_DEFAULT_MEMORY", value_parser = parse_bytes)]
    pub default_memory: Option<u64>,
    /// Attempts per job [default: 3].
    #[arg(long, env = "WASMQ_DEFAULT_MAX_ATTEMPTS")]
    pub default_max_attempts: Option<u32>,
    /// Compiled-code cache [default: $XDG_CACHE_HOME/wasmq or ~/.cache/wasmq].
    #[arg(long, env = "WASMQ_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Lease of a running job; a job whose worker stops renewing it runs again [default: 30s].
    #[arg(long, env = "WASMQ_LEASE", value_parser = humantime::parse_duration)]
    pub lease: Option<Duration>,
    /// First retry delay of failed jobs; doubles per attempt, with jitter [default: 1s].
    #[arg(long, env = "WASMQ_RETRY_BASE", value_parser = humantime::parse_duration)]
    pub retry_base: Option<Duration>,
    /// Longest retry delay [default: 5m].
    #[arg(long, env = "WASMQ_RETRY_MAX", value_parser = humantime::parse_duration)]
    pub retry_max: Option<Duration>,
    /// Time running jobs get to finish on SIGTERM/SIGINT [default: 10s].
    #[arg(long, env = "WASMQ_SHUTDOWN_GRACE", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Option<Duration>,
    /// How long finished jobs (and their results) are kept, e.g. `7d`, or `forever` [default: 7d].
    #[arg(long, env = "WASMQ_RETENTION", value_parser = parse_retention)]
    pub retention: Option<Retention>,
    /// Jobs that may wait to run before dispatches are refused with 429 [default: 1000000].
    #[arg(long, env = "WASMQ_MAX_QUEUED_JOBS")]
    pub max_queued_jobs: Option<u64>,
    /// Most `wait` requests open at once; more get 503 with Retry-After [default: 10000].
    #[arg(long, env = "WASMQ_MAX_WAITS")]
    pub max_waits: Option<usize>,
    /// Most job event streams open at once; more get 503 with Retry-After [default: 1000].
    #[arg(long, env = "WASMQ_MAX_EVENT_STREAMS")]
    pub max_event_streams: Option<usize>,
    /// Callback delivery attempts [default: 10].
    #[arg(long, env = "WASMQ_CALLBACK_ATTEMPTS")]
    pub callback_attempts: Option<u32>,
    /// First callback retry delay [default: 1s].
    #[arg(long, env = "WASMQ_CALLBACK_RETRY_BASE", value_parser = humantime::parse_duration)]
    pub callback_retry_base: Option<Duration>,
    /// Module compilations at once, each a child process [default: half the cores, at least 1].
    #[arg(long, env = "WASMQ_MAX_CONCURRENT_COMPILES")]
    pub max_concurrent_compiles: Option<usize>,
    /// Uploads that may wait for a compile slot; more get 503 with Retry-After [default: 16].
    #[arg(long, env = "WASMQ_COMPILE_QUEUE")]
    pub compile_queue: Option<usize>,
    /// Versions kept per alias; older ones are pruned when a new one is written [default: 100].
    #[arg(long, env = "WASMQ_ALIAS_HISTORY")]
    pub alias_history: Option<u32>,
    /// Address ranges callbacks may reach although they are not public, e.g.
    /// `10.1.0.0/16,127.0.0.0/8` [default: none: loopback, private, link-local
    /// and other special-purpose addresses are refused].
    #[arg(long, env = "WASMQ_CALLBACK_ALLOW", value_parser = parse_callback_allow)]
    pub callback_allow: Option<CallbackAllow>,
    /// Key file sealing callback secrets at rest (created with mode 0600 if
    /// missing) [default: `<database file>.callback-key`].
    #[arg(long, env = "WASMQ_CALLBACK_KEY_FILE")]
    pub callback_key_file: Option<PathBuf>,
    /// Time a client has to send a request's headers; also how long an idle
    /// keep-alive connection stays open [default: 10s].
    #[arg(long, env = "WASMQ_HEADER_TIMEOUT", value_parser = humantime::parse_duration)]
    pub header_timeout: Option<Duration>,
    /// Time a client has to send a request's whole body; slower bodies get 408
    /// and the connection is closed [default: 60s].
    #[arg(long, env = "WASMQ_BODY_TIMEOUT", value_parser = humantime::parse_duration)]
    pub body_timeout: Option<Duration>,
    /// Most client connections served at once; a few more are answered 503
    /// (health probes are served), the rest wait until one closes. Also capped
    /// by the open-file limit (`ulimit -n`) minus a reserve [default: 10000].
    #[arg(long, env = "WASMQ_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
}

/// The operator's callback allow list (CIDR ranges).
#[derive(Debug, Clone, Default)]
pub struct CallbackAllow(pub Vec<ipnet::IpNet>);

fn parse_callback_allow(s: &str) -> Result<CallbackAllow, String> {
    NetPolicy::parse_allow(s).map(CallbackAllow)
}

/// Per-queue limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct QueueLimits(pub HashMap<String, usize>);

fn parse_queue_limits(s: &str) -> Result<QueueLimits, String> {
    let mut map = HashMap::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, n) = part.split_once('=').ok_or_else(|| format!("expected queue=N, got {part:?}"))?;
        let n: usize =
            n.trim().parse().map_err(|_| format!("limit of queue {name} must be a number, got {n:?}"))?;
        map.insert(name.trim().to_string(), n);
    }
    Ok(QueueLimits(map))
}

/// How long finished jobs are kept; `None` keeps them forever.
#[derive(Debug, Clone, Copy)]
pub struct Retention(pub Option<Duration>);

fn parse_retention(s: &str) -> Result<Retention, String> {
    if s.eq_ignore_ascii_case("forever") {
        return Ok(Retention(None));
    }
    humantime::parse_duration(s)
        .map(|d| Retention(Some(d)))
        .map_err(|e| format!("expected e.g. 7d or forever: {e}"))
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    s.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("expected a size like 64MiB: {e}"))
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    token: Option<Secret>,
    listen: Option<SocketAddr>,
    database: Option<String>,
    workers: Option<usize>,
    prefetch: Option<usize>,
    queue_limits: Option<QueueLimits>,
    max_module_size: Option<bytesize::ByteSize>,
    max_body_size: Option<bytesize::ByteSize>,
    default_fuel: Option<u64>,
    #[serde(default, with = "humantime_serde_opt")]
    default_timeout: Option<Duration>,
    default_memory: Option<bytesize::ByteSize>,
    default_max_attempts: Option<u32>,
    cache_dir: Option<PathBuf>,
    #[serde(default, with = "humantime_serde_opt")]
    lease: Option<Duration>,
    #[serde(default, with = "humantime_serde_opt")]
    retry_base: Option<Duration>,
    #[serde(default, with = "humantime_serde_opt")]
    retry_max: Option<Duration>,
    #[serde(default, with = "humantime_serde_opt")]
    shutdown_grace: Option<Duration>,
    callback_attempts: Option<u32>,
    #[serde(default, with = "humantime_serde_opt")]
    callback_retry_base: Option<Duration>,
    max_queued_jobs: Option<u64>,
    retention: Option<String>,
    callback_allow: Option<Vec<String>>,
    callback_key_file: Option<PathBuf>,
    max_concurrent_compiles: Option<usize>,
    compile_queue: Option<usize>,
    alias_history: Option<u32>,
    max_waits: Option<usize>,
    max_event_streams: Option<usize>,
    #[serde(default, with = "humantime_serde_opt")]
    header_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde_opt")]
    body_timeout: Option<Duration>,
    max_connections: Option<usize>,
}

mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom)).transpose()
    }
}

/// Everything `App::build` needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Database URL.
    pub database_url: String,
    /// Bearer token; `None` allows loopback only.
    pub token: Option<Secret>,
    /// Sandbox engine.
    pub engine: EngineSettings,
    /// Worker pool.
    pub queue: QueueSettings,
    /// Callback delivery.
    pub callbacks: CallbackSettings,
    /// Limits of jobs that set none.
    pub default_limits: Limits,
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
    /// Client connections: header and body deadlines, connection limit.
    pub http: HttpSettings,
}

impl Settings {
    /// Defaults for a server on `listen` with `database_url`; the compiler is
    /// this executable (`wasmq __compile`).
    pub fn new(listen: SocketAddr, database_url: impl Into<String>, compiler: PathBuf) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            token: None,
            engine: EngineSettings {
                compile_mode: CompileMode::Subprocess { program: compiler },
                cache_dir: default_cache_dir(),
                ..EngineSettings::default()
            },
            queue: QueueSettings::default(),
            callbacks: CallbackSettings::default(),
            default_limits: Limits { timeout: Duration::from_secs(30), ..Limits::default() },
            default_max_attempts: 3,
            max_body_bytes: 16 << 20,
            max_queued_jobs: 1_000_000,
            alias_history: DEFAULT_ALIAS_HISTORY,
            max_waits: 10_000,
            max_event_streams: 1_000,
            http: HttpSettings::default(),
        }
    }

    /// Resolves flags and environment (already merged by clap), the config file,
    /// `WASMQ_TOKEN`, and defaults.
    pub fn resolve(args: ServeArgs, token_env: Option<String>) -> anyhow::Result<Self> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("in config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let exe = std::env::current_exe().context("locating the wasmq executable (the compiler)")?;
        let listen = args.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:7700".parse().expect("valid"));
        let database = args.database.or(file.database).unwrap_or_else(|| "sqlite://wasmq.db".into());
        let mut s = Settings::new(listen, database, exe);
        s.token = token_env.filter(|t| !t.is_empty()).map(Secret::new).or(file.token);
        if let Some(w) = args.workers.or(file.workers) {
            if w == 0 {
                bail!("workers must be at least 1");
            }
            s.queue.workers = w;
        }
        if let Some(p) = args.prefetch.or(file.prefetch) {
            s.queue.prefetch = p;
        }
        if let Some(q) = args.queue_limits.or(file.queue_limits) {
            s.queue.queue_limits = q.0;
        }
        if let Some(m) = args.max_module_size.or(file.max_module_size.map(|b| b.as_u64())) {
            s.engine.max_module_bytes = m;
        }
        if let Some(b) = args.max_body_size.or(file.max_body_size.map(|b| b.as_u64())) {
            s.max_body_bytes = b as usize;
        }
        if let Some(f) = args.default_fuel.or(file.default_fuel) {
            s.default_limits.fuel = Some(f);
        }
        if let Some(t) = args.default_timeout.or(file.default_timeout) {
            s.default_limits.timeout = t;
        }
        if let Some(m) = args.default_memory.or(file.default_memory.map(|b| b.as_u64())) {
            s.default_limits.memory_bytes = m;
        }
        if let Some(a) = args.default_max_attempts.or(file.default_max_attempts) {
            s.default_max_attempts = a;
        }
        if let Some(dir) = args.cache_dir.or(file.cache_dir) {
            s.engine.cache_dir = Some(dir);
        }
        if let Some(l) = args.lease.or(file.lease) {
            s.queue.lease = l;
        }
        if let Some(r) = args.retry_base.or(file.retry_base) {
            s.queue.retry_base = r;
        }
        if let Some(r) = args.retry_max.or(file.retry_max) {
            s.queue.retry_max = r;
        }
        if let Some(g) = args.shutdown_grace.or(file.shutdown_grace) {
            s.queue.shutdown_grace = g;
        }
        let retention = match (args.retention, file.retention) {
            (Some(r), _) => Some(r),
            (None, Some(text)) => {
                Some(parse_retention(&text).map_err(|e| anyhow::anyhow!("retention: {e}"))?)
            }
            (None, None) => None,
        };
        if let Some(Retention(r)) = retention {
            s.queue.retention = r;
        }
        if let Some(m) = args.max_queued_jobs.or(file.max_queued_jobs) {
            s.max_queued_jobs = m;
        }
        if let Some(w) = args.max_waits.or(file.max_waits) {
            if w == 0 {
                bail!("max_waits must be at least 1");
            }
            s.max_waits = w;
        }
        if let Some(e) = args.max_event_streams.or(file.max_event_streams) {
            if e == 0 {
                bail!("max_event_streams must be at least 1");
            }
            s.max_event_streams = e;
        }
        if let Some(a) = args.callback_attempts.or(file.callback_attempts) {
            s.callbacks.max_attempts = a;
        }
        if let Some(r) = args.callback_retry_base.or(file.callback_retry_base) {
            s.callbacks.retry_base = r;
        }
        if let Some(n) = args.max_concurrent_compiles.or(file.max_concurrent_compiles) {
            if n == 0 {
                bail!("max_concurrent_compiles must be at least 1");
            }
            s.engine.max_concurrent_compiles = n;
        }
        if let Some(q) = args.compile_queue.or(file.compile_queue) {
            s.engine.compile_queue = q;
        }
        if let Some(h) = args.alias_history.or(file.alias_history) {
            if h < 2 {
                bail!("alias_history must be at least 2 (rollback needs the version before the current)");
            }
            s.alias_history = h;
        }
        let allow = match (args.callback_allow, file.callback_allow) {
            (Some(a), _) => Some(a.0),
            (None, Some(list)) => Some(
                NetPolicy::parse_allow(&list.join(","))
                    .map_err(|e| anyhow::anyhow!("callback_allow: {e}"))?,
            ),
            (None, None) => None,
        };
        if let Some(allow) = allow {
            s.callbacks.policy = NetPolicy::new(allow);
        }
        if let Some(k) = args.callback_key_file.or(file.callback_key_file) {
            s.callbacks.key_file = Some(k);
        }
        if let Some(t) = args.header_timeout.or(file.header_timeout) {
            s.http.header_timeout = positive("header_timeout", t)?;
        }
        if let Some(t) = args.body_timeout.or(file.body_timeout) {
            s.http.body_timeout = positive("body_timeout", t)?;
        }
        if let Some(n) = args.max_connections.or(file.max_connections) {
            if n == 0 {
                bail!("max_connections must be at least 1");
            }
            s.http.max_connections = n;
        }
        check_durations(&s)?;
        s.default_limits
            .validate(s.engine.max_memory_bytes)
            .map_err(|e| anyhow::anyhow!("default job limits: {e}"))?;
        Ok(s)
    }
}

/// Versions kept per alias unless configured.
pub const DEFAULT_ALIAS_HISTORY: u32 = 100;
/// Longest any duration setting may be: the queue adds them to unix-ms
/// timestamps (`now + lease`, `now - retention`), and a `100000000y` would
/// overflow those (a retention that wraps around prunes every finished job).
const MAX_SETTING_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn check_durations(s: &Settings) -> anyhow::Result<()> {
    let all = [
        ("lease", Some(s.queue.lease)),
        ("retry_base", Some(s.queue.retry_base)),
        ("retry_max", Some(s.queue.retry_max)),
        ("shutdown_grace", Some(s.queue.shutdown_grace)),
        ("retention", s.queue.retention),
        ("callback_retry_base", Some(s.callbacks.retry_base)),
        ("header_timeout", Some(s.http.header_timeout)),
        ("body_timeout", Some(s.http.body_timeout)),
    ];
    for (name, d) in all {
        if let Some(d) = d
            && d > MAX_SETTING_DURATION
        {
            bail!("{name} must be at most 100 years, got {}", humantime::format_duration(d));
        }
    }
    Ok(())
}

/// A duration that must not be zero.
fn positive(name: &str, d: Duration) -> anyhow::Result<Duration> {
    if d.is_zero() {
        bail!("{name} must be longer than zero");
    }
    Ok(d)
}

/// `$XDG_CACHE_HOME/wasmq`, else `~/.cache/wasmq`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wasmq"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn args(argv: &[&str]) -> ServeArgs {
        Cli::try_parse_from(std::iter::once("serve").chain(argv.iter().copied())).unwrap().serve
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let f =
            file("workers = 7\nlisten = \"127.0.0.1:9999\"\nlease = \"5s\"\ndefault_memory = \"32MiB\"\n");
        let path = f.path().to_str().unwrap();
        let s = Settings::resolve(args(&["--config", path, "--workers", "3"]), None).unwrap();
        assert_eq!(s.queue.workers, 3, "flag wins over file");
        assert_eq!(s.listen.to_string(), "127.0.0.1:9999", "file wins over default");
        assert_eq!(s.queue.lease, Duration::from_secs(5));
        assert_eq!(s.default_limits.memory_bytes, 32 << 20);
        assert_eq!(s.database_url, "sqlite://wasmq.db", "default");
        assert!(s.token.is_none());
    }

    #[test]
    fn the_token_comes_from_the_environment_before_the_file_and_never_prints() {
        let f = file("token = \"from-file\"\n");
        let path = f.path().to_str().unwrap();
        let s = Settings::resolve(args(&["--config", path]), Some("from-env".into())).unwrap();
        assert_eq!(s.token.as_ref().unwrap().expose(), "from-env");
        assert!(!format!("{s:?}").contains("from-env"), "the token leaked into Debug output");
        let s = Settings::resolve(args(&["--config", path]), None).unwrap();
        assert_eq!(s.token.unwrap().expose(), "from-file");
    }

    #[test]
    fn the_caps_on_waits_and_event_streams_come_from_flags_or_the_file() {
        let s = Settings::resolve(args(&[]), None).unwrap();
        assert_eq!((s.max_waits, s.max_event_streams), (10_000, 1_000), "defaults");
        let f = file("max_waits = 5\nmax_event_streams = 7\n");
        let path = f.path().to_str().unwrap();
        let s = Settings::resolve(args(&["--config", path, "--max-waits", "3"]), None).unwrap();
        assert_eq!((s.max_waits, s.max_event_streams), (3, 7));
        let err = Settings::resolve(args(&["--max-event-streams", "0"]), None).unwrap_err();
        assert!(err.to_string().contains("max_event_streams must be at least 1"), "{err}");
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_errors_naming_them() {
        let f = file("wrokers = 2\n");
        let err = Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), None).unwrap_err();
        assert!(format!("{err:#}").contains("wrokers"), "{err:#}");
        let err = Settings::resolve(args(&["--workers", "0"]), None).unwrap_err();
        assert!(err.to_string().contains("workers must be at least 1"), "{err}");
        assert!(Cli::try_parse_from(["serve", "--queue-limits", "gpu=x"]).is_err());
        let s = Settings::resolve(args(&["--queue-limits", "gpu=1, mail=4"]), None).unwrap();
        assert_eq!(s.queue.queue_limits.get("mail"), Some(&4));
        assert_eq!(s.queue.retention, Some(Duration::from_secs(7 * 24 * 3600)), "default retention");
        let s = Settings::resolve(args(&["--retention", "forever"]), None).unwrap();
        assert_eq!(s.queue.retention, None);
        let f = file("retention = \"36h\"\n");
        let s = Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), None).unwrap();
        assert_eq!(s.queue.retention, Some(Duration::from_secs(36 * 3600)));
        let f = file("callback_allow = [\"10.1.0.0/16\", \"127.0.0.0/8\"]\n");
        let s = Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), None).unwrap();
        assert_eq!(s.callbacks.policy.allowed().len(), 2);
        assert!(s.callbacks.policy.check_ip("127.0.0.1".parse().unwrap()).is_ok());
        let s = Settings::resolve(
            args(&["--config", f.path().to_str().unwrap(), "--callback-allow", "::1"]),
            None,
        )
        .unwrap();
        assert!(
            s.callbacks.policy.check_ip("127.0.0.1".parse().unwrap()).is_err(),
            "the flag replaces the file"
        );
        let s = Settings::resolve(args(&[]), None).unwrap();
        assert!(
            s.callbacks.policy.check_ip("127.0.0.1".parse().unwrap()).is_err(),
            "loopback refused by default"
        );
        let f = file("callback_allow = [\"10.1.0.0/99\"]\n");
        let err = Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), None).unwrap_err();
        assert!(err.to_string().contains("callback_allow"), "{err}");
        assert!(Cli::try_parse_from(["serve", "--callback-allow", "localhost"]).is_err());
        let f = file("retention = \"soon\"\n");
        let err = Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), None).unwrap_err();
        assert!(err.to_string().contains("retention"), "{err}");
    }

    #[test]
    fn compile_and_alias_history_settings_resolve_and_are_checked() {
        let s = Settings::resolve(args(&[]), None).unwrap();
        assert!(s.engine.max_concurrent_compiles >= 1);
        assert_eq!(s.engine.compile_queue, 16);
        assert_eq!(s.alias_history, DEFAULT_ALIAS_HISTORY);
        let f = file("max_concurrent_compiles = 3\ncompile_queue = 0\nalias_history = 5\n");
        let path = f.path().to_str().unwrap();
        let s = Settings::resolve(args(&["--config", path, "--max-concurrent-compiles", "2"]), None).unwrap();
        assert_eq!((s.engine.max_concurrent_compiles, s.engine.compile_queue, s.alias_history), (2, 0, 5));
        let err = Settings::resolve(args(&["--max-concurrent-compiles", "0"]), None).unwrap_err();
        assert!(err.to_string().contains("max_concurrent_compiles"), "{err}");
        let err = Settings::resolve(args(&["--alias-history", "1"]), None).unwrap_err();
        assert!(err.to_string().contains("alias_history"), "{err}");
    }

    #[test]
    fn connection_settings_come_from_flags_and_the_file() {
        let s = Settings::resolve(args(&[]), None).unwrap();
        assert_eq!(s.http.header_timeout, Duration::from_secs(10), "default");
        let f = file("header_timeout = \"2s\"\nbody_timeout = \"5s\"\nmax_connections = 50\n");
        let path = f.path().to_str().unwrap();
        let s = Settings::resolve(args(&["--config", path, "--max-connections", "7"]), None).unwrap();
        assert_eq!(s.http.header_timeout, Duration::from_secs(2));
        assert_eq!(s.http.body_timeout, Duration::from_secs(5));
        assert_eq!(s.http.max_connections, 7, "flag wins over file");
        let err = Settings::resolve(args(&["--header-timeout", "0s"]), None).unwrap_err();
        assert!(err.to_string().contains("header_timeout"), "{err}");
        let err = Settings::resolve(args(&["--max-connections", "0"]), None).unwrap_err();
        assert!(err.to_string().contains("max_connections"), "{err}");
        let err = Settings::resolve(args(&["--retention", "100000000y"]), None).unwrap_err();
        assert!(err.to_string().contains("retention must be at most 100 years"), "{err}");
        let err = Settings::resolve(args(&["--lease", "1000y"]), None).unwrap_err();
        assert!(err.to_string().contains("lease must be at most 100 years"), "{err}");
    }
}
