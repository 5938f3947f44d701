//! `wasmq alias`: set, list, show (with history), roll back and delete aliases.

use clap::{Args, Subcommand};

use super::http::{Client, Outcome, segment};
use super::model::{Alias, AliasConfig, AliasRequest};
use super::output::{Fields, Table, short_digest};
use super::{ClientOpts, digest, units};
use crate::domain::{HttpLimits, KvStoreName, QueueName, RetryPolicy};

/// Arguments of `wasmq alias`.
#[derive(Debug, Args)]
pub struct AliasArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,

    /// What to do.
    #[command(subcommand)]
    pub command: AliasCommand,
}

/// The `wasmq alias` subcommands.
// Parsed once per process: the size of `Set` costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Point an alias at an uploaded module (a new version), with defaults for its jobs.
    Set {
        /// The alias name.
        name: String,
        /// The module: `blake3:<hex>` as `wasmq push` prints it, or a unique
        /// prefix of at least 8 hex characters (`blake3:` optional).
        digest: String,
        /// Fuel per attempt (about one unit per wasm instruction).
        #[arg(long)]
        fuel: Option<u64>,
        /// Wall-clock limit per attempt, e.g. `500ms`, `5s`, `2m`.
        #[arg(long, value_name = "DURATION", value_parser = units::millis)]
        timeout: Option<u64>,
        /// Memory limit, in whole MiB, e.g. `64MiB`, `1GiB`.
        #[arg(long, value_name = "SIZE", value_parser = units::mebibytes)]
        memory: Option<u64>,
        /// Attempts before a job is dead (1..=100).
        #[arg(long)]
        max_attempts: Option<u32>,
        /// Queue of the alias's jobs.
        #[arg(long, value_parser = |s: &str| QueueName::parse(s))]
        queue: Option<QueueName>,
        /// Priority of the alias's jobs (0..=1000, higher runs first).
        #[arg(long)]
        priority: Option<u16>,
        /// A plain configuration value its plugins read, `KEY=VALUE`
        /// (repeatable; shown by `alias show`, so never a secret: use
        /// `wasmq alias secret set`).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = pair)]
        config: Vec<(String, String)>,
        /// The tenant's key-value store its plugins may use (aliases naming
        /// the same store share it).
        #[arg(long, value_name = "STORE", value_parser = |s: &str| KvStoreName::parse(s))]
        kv_store: Option<KvStoreName>,
        /// A command plugin's environment variable, `VAR=config:KEY` or
        /// `VAR=secret:KEY` (repeatable; it gets no other environment).
        #[arg(long = "env", value_name = "VAR=SOURCE", value_parser = pair)]
        env: Vec<(String, String)>,
        /// A host the alias's jobs may send HTTP requests to (repeat for
        /// more): `api.example.com`, `*.example.com` or
        /// `https://api.example.com:8443`. None: no network.
        #[arg(long = "allow-host", value_name = "HOST")]
        allow_hosts: Vec<String>,
        /// Outbound HTTP requests per job (at most the server's ceiling, its default).
        #[arg(long, value_name = "N")]
        http_max_requests: Option<u32>,
        /// Bytes of outbound request bodies per job, e.g. `1MiB`.
        #[arg(long, value_name = "SIZE", value_parser = units::bytes)]
        http_max_request_size: Option<u64>,
        /// Bytes of outbound response bodies per job, e.g. `10MiB`.
        #[arg(long, value_name = "SIZE", value_parser = units::bytes)]
        http_max_response_size: Option<u64>,
        /// How its jobs wait between attempts:
        /// `base=1s[,max=10m][,factor=2][,jitter=0.5]` (the delay after
        /// attempt n is base*factor^(n-1), at most max (default 1h), the
        /// fraction jitter of it random). Absent: the server's backoff.
        #[arg(long, value_name = "POLICY", value_parser = retry_policy)]
        retry: Option<RetryPolicy>,
    },
    /// Set, list or delete an alias's secrets (write-only: values are never shown).
    Secret {
        /// What to do.
        #[command(subcommand)]
        command: super::alias_secret::SecretCommand,
    },
    /// Every alias, by name.
    List,
    /// One alias with a page of its version history, newest first.
    Show {
        /// The alias name.
        name: String,
        /// Versions per page (1..=100).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
        /// Continue with older versions (printed under a full page).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Set the limits of an alias's jobs across the cluster; they replace
    /// the ones it had (no flag: no limits) and combine with its queue's.
    Limit {
        /// The alias name.
        name: String,
        /// Most of its jobs running at once on all nodes (0 holds them).
        #[arg(long, value_name = "N")]
        concurrency: Option<u64>,
        /// Most of its jobs started per window on all nodes: `100/s`,
        /// `5/min`, `20/500ms`.
        #[arg(long, value_name = "MAX/WINDOW", value_parser = super::queue::parse_rate)]
        rate: Option<crate::domain::Rate>,
        /// With `--rate`: most jobs started at once after a quiet spell
        /// (default: a tenth of MAX, at least 1).
        #[arg(long, value_name = "N", requires = "rate")]
        burst: Option<u64>,
    },
    /// Re-apply the previous version as a new version (queued jobs keep their module).
    Rollback {
        /// The alias name.
        name: String,
    },
    /// Remove an alias and its history (jobs already dispatched keep their module).
    Delete {
        /// The alias name.
        name: String,
    },
}

/// `--retry base=1s,max=10m,factor=2,jitter=0.5` (only `base` required).
fn retry_policy(s: &str) -> Result<RetryPolicy, String> {
    let mut policy = RetryPolicy { base_ms: 0, max_ms: 3_600_000, factor: 2.0, jitter: 0.5 };
    let mut base = false;
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got {part:?}"))?;
        let number = |v: &str| v.parse::<f64>().map_err(|_| format!("{key} must be a number, got {v:?}"));
        match key {
            "base" => {
                policy.base_ms = units::millis(value)?;
                base = true;
            }
            "max" => policy.max_ms = units::millis(value)?,
            "factor" => policy.factor = number(value)?,
            "jitter" => policy.jitter = number(value)?,
            other => return Err(format!("unknown key {other:?} (base, max, factor, jitter)")),
        }
    }
    if !base {
        return Err("give base=DURATION, e.g. base=1s".into());
    }
    policy.max_ms = policy.max_ms.max(policy.base_ms);
    policy.validate()?;
    Ok(policy)
}

pub(super) async fn run(client: &Client, args: AliasArgs) -> Outcome {
    match args.command {
        AliasCommand::Set {
            name,
            digest,
            fuel,
            timeout,
            memory,
            max_attempts,
            queue,
            priority,
            config,
            kv_store,
            env,
            allow_hosts,
            http_max_requests,
            http_max_request_size,
            http_max_response_size,
            retry,
        } => {
            // The server checks every range and names the field it refuses.
            let module = digest::resolve(client, &digest).await?;
            let request = AliasRequest {
                module,
                fuel,
                timeout_ms: timeout,
                memory_mb: memory,
                max_attempts,
                queue,
                priority,
                config: config.into_iter().collect(),
                kv_store,
                env: env.into_iter().collect(),
                allowed_hosts: allow_hosts,
                http: (http_max_requests.is_some()
                    || http_max_request_size.is_some()
                    || http_max_response_size.is_some())
                .then_some(HttpLimits {
                    max_requests: http_max_requests,
                    max_request_bytes: http_max_request_size,
                    max_response_bytes: http_max_response_size,
                }),
                retry,
            };
            let reply = client.put(&path(&name), &request).await?;
            if client.json {
                reply.print_raw();
            } else {
                alias_fields(&reply.parse()?).print();
            }
        }
        AliasCommand::Limit { name, concurrency, rate, burst } => {
            let limits = crate::domain::QueueLimits {
                concurrency,
                rate: rate.map(|r| crate::domain::Rate { burst, ..r }),
            };
            let reply = client.put(&format!("{}/limits", path(&name)), &limits).await?;
            if client.json {
                reply.print_raw();
            } else {
                let view: super::model::AliasLimitsView = reply.parse()?;
                Fields::new()
                    .add("alias", &view.alias)
                    .add("limits", super::queue::describe(&view.limits))
                    .print();
            }
        }
        AliasCommand::List => {
            let reply = client.get("/v1/aliases").await?;
            if client.json {
                reply.print_raw();
                return Ok(());
            }
            let aliases: Vec<Alias> = reply.parse()?;
            if aliases.is_empty() {
                eprintln!("no aliases yet: `wasmq push <file.wasm> --alias <name>` creates one");
                return Ok(());
            }
            let mut table =
                Table::new(&["NAME", "VERSION", "MODULE", "SETTINGS", "UPDATED"]).right_align(&[1]);
            for a in aliases {
                table.row([
                    a.name,
                    a.version.to_string(),
                    short_digest(&a.module),
                    settings(&a.config),
                    a.updated_at,
                ]);
            }
            table.print();
        }
        AliasCommand::Show { name, limit, cursor } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(c) = cursor {
                query.push(("cursor", c));
            }
            let reply = client.send(client.request(reqwest::Method::GET, &path(&name)).query(&query)).await?;
            if client.json {
                reply.print_raw();
                return Ok(());
            }
            let alias: Alias = reply.parse()?;
            alias_fields(&alias).print();
            let history = alias.history.unwrap_or_default();
            if !history.is_empty() {
                println!();
                let mut table = Table::new(&["VERSION", "MODULE", "SETTINGS", "CREATED"]).right_align(&[0]);
                for v in history {
                    table.row([v.version.to_string(), v.module, settings(&v.config), v.created_at]);
                }
                table.print();
            }
            if let Some(cursor) = &alias.history_next_cursor {
                println!("\nmore: --cursor {cursor}");
            }
        }
        AliasCommand::Rollback { name } => {
            let reply = client.post::<()>(&format!("{}/rollback", path(&name)), None).await?;
            if client.json {
                reply.print_raw();
            } else {
                alias_fields(&reply.parse()?).print();
            }
        }
        AliasCommand::Secret { command } => super::alias_secret::run(client, command).await?,
        AliasCommand::Delete { name } => {
            client.delete(&path(&name)).await?;
            if client.json {
                println!("{}", serde_json::json!({ "deleted": name }));
            } else {
                println!("deleted alias {name}");
            }
        }
    }
    Ok(())
}

/// `KEY=VALUE` (the value may hold `=`).
fn pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

pub(super) fn path(name: &str) -> String {
    format!("/v1/aliases/{}", segment(name))
}

fn alias_fields(a: &Alias) -> Fields {
    let fields = Fields::new()
        .add("name", &a.name)
        .add("version", a.version)
        .add("module", &a.module)
        .add("settings", settings(&a.config));
    let fields = match &a.limits {
        Some(limits) => fields.add("limits", super::queue::describe(limits)),
        None => fields,
    };
    fields.add("updated", &a.updated_at)
}

/// `fuel=… timeout=5s memory=64MiB …` in the syntax of the flags that set
/// them, or `-` when nothing is set.
fn settings(c: &AliasConfig) -> String {
    let parts: Vec<String> = [
        c.fuel.map(|v| format!("fuel={v}")),
        c.timeout_ms.map(|v| format!("timeout={}", units::show_millis(v))),
        c.memory_mb.map(|v| format!("memory={v}MiB")),
        c.max_attempts.map(|v| format!("max_attempts={v}")),
        c.queue.as_ref().map(|v| format!("queue={v}")),
        c.priority.map(|v| format!("priority={v}")),
        c.kv_store.as_ref().map(|v| format!("kv_store={v}")),
        (!c.allowed_hosts.is_empty()).then(|| format!("allow_host={}", c.allowed_hosts.join(","))),
        c.http.as_ref().and_then(|h| h.max_requests).map(|v| format!("http_max_requests={v}")),
        c.http.as_ref().and_then(|h| h.max_request_bytes).map(|v| format!("http_max_request_size={v}")),
        c.http.as_ref().and_then(|h| h.max_response_bytes).map(|v| format!("http_max_response_size={v}")),
        c.retry.map(|r| {
            format!("retry=base={}ms,max={}ms,factor={},jitter={}", r.base_ms, r.max_ms, r.factor, r.jitter)
        }),
    ]
    .into_iter()
    .flatten()
    .chain(c.config.iter().map(|(k, v)| format!("config:{k}={v}")))
    .chain(c.env.iter().map(|(k, v)| format!("env:{k}={v}")))
    .collect();
    if parts.is_empty() { "-".into() } else { parts.join(" ") }
}
