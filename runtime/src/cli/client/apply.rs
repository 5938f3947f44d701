//! `wasmq apply -f wasmq.toml`: modules, aliases (with their settings and
//! capabilities), queue limits and schedules declared in one file, applied
//! through the API. The plan comes first (`+` add, `~` change, `-` delete,
//! `=` unchanged); `--dry-run` stops there. Applying a file twice changes
//! nothing the second time: an unchanged entry sends nothing (an alias's
//! version does not count up). What the file no longer names is left alone
//! unless `--prune` (aliases and schedules deleted, queue limits lifted;
//! modules are never deleted by `apply`: jobs may still use them).
//!
//! ```toml
//! [modules]
//! thumbnail = "plugins/thumbnail.wasm"       # relative to this file
//!
//! [aliases.thumbnail]
//! module = "thumbnail"                       # a [modules] name, or blake3:<hex>
//! fuel = 5_000_000
//! retry = { base_ms = 1000, max_ms = 60000, factor = 2.0, jitter = 0.5 }
//!
//! [queues.thumbnails]
//! concurrency = 4
//! rate = { max = 100, per_ms = 1000 }
//!
//! [schedules.nightly]
//! alias = "thumbnail"
//! cron = "0 3 * * *"
//! timezone = "Europe/Berlin"
//! payload = { folder = "inbox" }
//! ```
//!
//! Each section's entries are the API's own request bodies
//! (`PUT /v1/aliases/{name}`, `PUT /v1/queues/{name}/limits`,
//! `PUT /v1/schedules/{name}`), so the file takes exactly their fields.

use clap::Args;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ClientOpts;
use super::http::{Client, Failure, Outcome, segment};
use super::model::{Alias, AliasRequest, QueueList, SchedulePage, ScheduleRequest, ScheduleView};
use super::output::short_digest;
use crate::domain::{Digest, QueueLimits};

/// Arguments of `wasmq apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,

    /// The file declaring modules, aliases, queues and schedules.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,

    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also delete the aliases and schedules, and lift the queue limits,
    /// that the file does not name.
    #[arg(long)]
    pub prune: bool,
}

/// The file, parsed and checked (each entry is the API's request body).
struct Desired {
    modules: BTreeMap<String, (PathBuf, Vec<u8>, Digest)>,
    aliases: BTreeMap<String, AliasRequest>,
    queues: BTreeMap<String, QueueLimits>,
    schedules: BTreeMap<String, ScheduleRequest>,
}

/// What one entry needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Add,
    /// The fields that differ.
    Modify(Vec<String>),
    Delete,
    Same,
}

/// What applying one entry sends.
enum Action {
    Upload(Vec<u8>),
    SetAlias(AliasRequest),
    DeleteAlias,
    SetQueue(QueueLimits),
    SetSchedule(ScheduleRequest),
    DeleteSchedule,
    None,
}

/// One line of the plan.
struct Step {
    kind: &'static str,
    name: String,
    change: Change,
    detail: String,
    action: Action,
}

pub(super) async fn run(client: &Client, args: ApplyArgs) -> Outcome {
    let desired = read(&args.file)?;
    let steps = plan(client, &desired, args.prune).await?;
    print_plan(client, &steps);
    let changes = steps.iter().filter(|s| s.change != Change::Same).count();
    if args.dry_run || changes == 0 {
        if !client.json {
            eprintln!("{}", if changes == 0 { "nothing to change" } else { "dry run: nothing was changed" });
        }
        return Ok(());
    }
    for step in steps.into_iter().filter(|s| s.change != Change::Same) {
        apply(client, step).await?;
    }
    if !client.json {
        eprintln!("applied {changes} change{}", if changes == 1 { "" } else { "s" });
    }
    Ok(())
}

/// Reads and checks the file: every error names the file and the entry.
fn read(file: &Path) -> Outcome<Desired> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::other(format!("cannot read {}: {e}", file.display())))?;
    let bad = |what: String| Failure::other(format!("{}: {what}", file.display()));
    let table: toml::Table = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut root = match serde_json::to_value(&table) {
        Ok(Value::Object(map)) => map,
        _ => return Err(bad("is not a table of sections".into())),
    };
    for key in root.keys() {
        if !["modules", "aliases", "queues", "schedules"].contains(&key.as_str()) {
            return Err(bad(format!("unknown section [{key}] (modules, aliases, queues, schedules)")));
        }
    }
    let base = file.parent().unwrap_or(Path::new("."));
    let mut modules = BTreeMap::new();
    for (name, path) in section::<String>(&mut root, "modules").map_err(bad)? {
        let path = base.join(path);
        let bytes = std::fs::read(&path)
            .map_err(|e| bad(format!("modules.{name}: cannot read {}: {e}", path.display())))?;
        let digest = Digest::of(&bytes);
        modules.insert(name, (path, bytes, digest));
    }
    let mut aliases = BTreeMap::new();
    for (name, mut alias) in section::<AliasRequest>(&mut root, "aliases").map_err(bad)? {
        alias.module = match modules.get(&alias.module) {
            Some((_, _, digest)) => digest.to_string(),
            None if alias.module.starts_with("blake3:") => alias.module,
            None => {
                return Err(bad(format!(
                    "aliases.{name}.module {:?} is neither a [modules] name nor a blake3: digest",
                    alias.module
                )));
            }
        };
        aliases.insert(name, alias);
    }
    let queues = section::<QueueLimits>(&mut root, "queues").map_err(bad)?;
    for (name, limits) in &queues {
        limits.validate().map_err(|e| bad(format!("queues.{name}: {e}")))?;
    }
    let schedules = section::<ScheduleRequest>(&mut root, "schedules").map_err(bad)?;
    Ok(Desired { modules, aliases, queues, schedules })
}

/// The entries of `[name]`, each read as `T`; an error names the entry and field.
fn section<T: DeserializeOwned>(
    root: &mut Map<String, Value>,
    name: &str,
) -> Result<BTreeMap<String, T>, String> {
    let Some(value) = root.remove(name) else { return Ok(BTreeMap::new()) };
    let Value::Object(entries) = value else { return Err(format!("[{name}] must be a table")) };
    let mut out = BTreeMap::new();
    for (key, entry) in entries {
        let parsed = serde_path_to_error::deserialize(entry).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." { String::new() } else { format!(".{path}") };
            format!("{name}.{key}{at}: {}", e.into_inner())
        })?;
        out.insert(key, parsed);
    }
    Ok(out)
}

/// The fields of `a` and `b` (JSON objects) whose values differ.
fn differing(a: &Value, b: &Value) -> Vec<String> {
    let empty = Map::new();
    let (a, b) = (a.as_object().unwrap_or(&empty), b.as_object().unwrap_or(&empty));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).cloned().collect()
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("a request serializes")
}

/// What applying `desired` changes, read from the server.
async fn plan(client: &Client, desired: &Desired, prune: bool) -> Outcome<Vec<Step>> {
    let mut steps = Vec::new();
    for (name, (path, bytes, digest)) in &desired.modules {
        let exists = match client.get(&format!("/v1/modules/{}", segment(&digest.to_string()))).await {
            Ok(_) => true,
            Err(Failure::Api { status: reqwest::StatusCode::NOT_FOUND, .. }) => false,
            Err(e) => return Err(e),
        };
        steps.push(Step {
            kind: "module",
            name: name.clone(),
            change: if exists { Change::Same } else { Change::Add },
            detail: format!(
                "{} ({}, {})",
                short_digest(&digest.to_string()),
                path.display(),
                bytesize::ByteSize(bytes.len() as u64)
            ),
            action: if exists { Action::None } else { Action::Upload(bytes.clone()) },
        });
    }

    let current: Vec<Alias> = client.get("/v1/aliases").await?.parse()?;
    for (name, want) in &desired.aliases {
        let change = match current.iter().find(|a| &a.name == name) {
            None => Change::Add,
            Some(have) => {
                let mut fields = differing(&json(&have.config), &json(&want.config()));
                if have.module != want.module {
                    fields.insert(0, "module".into());
                }
                if fields.is_empty() { Change::Same } else { Change::Modify(fields) }
            }
        };
        let action = if change == Change::Same { Action::None } else { Action::SetAlias(want.clone()) };
        steps.push(Step {
            kind: "alias",
            name: name.clone(),
            change,
            detail: short_digest(&want.module),
            action,
        });
    }

    let queues: QueueList = client.get("/v1/queues").await?.parse()?;
    for (name, want) in &desired.queues {
        let have = queues.queues.iter().find(|q| &q.name == name).map(|q| q.limits).unwrap_or_default();
        let change = match (have == *want, have.any()) {
            (true, _) => Change::Same,
            (false, false) => Change::Add,
            (false, true) => Change::Modify(differing(&json(&have), &json(want))),
        };
        let action = if change == Change::Same { Action::None } else { Action::SetQueue(*want) };
        steps.push(Step { kind: "queue", name: name.clone(), change, detail: limits_text(want), action });
    }

    let schedules = all_schedules(client).await?;
    for (name, want) in &desired.schedules {
        let change = match schedules.iter().find(|s| &s.name == name) {
            None => Change::Add,
            Some(have) => {
                let fields = differing(&schedule_fields(have), &wanted_schedule(want));
                if fields.is_empty() { Change::Same } else { Change::Modify(fields) }
            }
        };
        let detail = match (&want.cron, want.every_ms) {
            (Some(c), _) => format!("cron {c:?} -> {}", want.alias),
            (None, Some(ms)) => format!("every {ms} ms -> {}", want.alias),
            _ => want.alias.clone(),
        };
        let action = if change == Change::Same { Action::None } else { Action::SetSchedule(want.clone()) };
        steps.push(Step { kind: "schedule", name: name.clone(), change, detail, action });
    }

    if prune {
        for s in schedules.iter().filter(|s| !desired.schedules.contains_key(&s.name)) {
            steps.push(Step {
                kind: "schedule",
                name: s.name.clone(),
                change: Change::Delete,
                detail: "not in the file".into(),
                action: Action::DeleteSchedule,
            });
        }
        for a in current.iter().filter(|a| !desired.aliases.contains_key(&a.name)) {
            steps.push(Step {
                kind: "alias",
                name: a.name.clone(),
                change: Change::Delete,
                detail: "not in the file".into(),
                action: Action::DeleteAlias,
            });
        }
        for q in queues.queues.iter().filter(|q| q.limits.any() && !desired.queues.contains_key(&q.name)) {
            steps.push(Step {
                kind: "queue",
                name: q.name.clone(),
                change: Change::Delete,
                detail: "limits lifted: not in the file".into(),
                action: Action::SetQueue(QueueLimits::default()),
            });
        }
    }
    Ok(steps)
}

/// Every schedule of the caller, all pages.
async fn all_schedules(client: &Client) -> Outcome<Vec<ScheduleView>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/schedules?limit=1000&cursor={}", segment(c)),
            None => "/v1/schedules?limit=1000".into(),
        };
        let page: SchedulePage = client.get(&path).await?.parse()?;
        out.extend(page.schedules);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

/// A stored schedule's settable fields, as a request would give them.
fn schedule_fields(s: &ScheduleView) -> Value {
    serde_json::json!({
        "alias": s.alias, "payload": serde_json::from_str::<Value>(s.payload.get()).unwrap_or(Value::Null),
        "cron": s.cron, "every_ms": s.every_ms, "timezone": s.timezone, "queue": s.queue,
        "priority": s.priority, "enabled": s.enabled, "catch_up": s.catch_up,
    })
}

/// A request's fields with the server's defaults filled in.
fn wanted_schedule(r: &ScheduleRequest) -> Value {
    serde_json::json!({
        "alias": r.alias,
        "payload": r.payload.as_ref().map(|p| serde_json::from_str::<Value>(p.get()).unwrap_or(Value::Null)).unwrap_or(Value::Null),
        "cron": r.cron, "every_ms": r.every_ms, "timezone": r.timezone, "queue": r.queue,
        "priority": r.priority, "enabled": r.enabled.unwrap_or(true), "catch_up": r.catch_up.unwrap_or_default(),
    })
}

fn limits_text(l: &QueueLimits) -> String {
    let mut parts = Vec::new();
    if let Some(c) = l.concurrency {
        parts.push(format!("concurrency {c}"));
    }
    if let Some(r) = l.rate {
        parts.push(format!("rate {}/{} ms", r.max, r.per_ms));
    }
    if parts.is_empty() { "no limits".into() } else { parts.join(", ") }
}

fn print_plan(client: &Client, steps: &[Step]) {
    if client.json {
        let plan: Vec<Value> = steps
            .iter()
            .map(|s| {
                let (change, fields) = match &s.change {
                    Change::Add => ("add", vec![]),
                    Change::Modify(f) => ("change", f.clone()),
                    Change::Delete => ("delete", vec![]),
                    Change::Same => ("unchanged", vec![]),
                };
                serde_json::json!({"kind": s.kind, "name": s.name, "change": change, "fields": fields, "detail": s.detail})
            })
            .collect();
        println!("{}", Value::Array(plan));
        return;
    }
    for s in steps {
        let (mark, extra) = match &s.change {
            Change::Add => ("+", String::new()),
            Change::Modify(fields) => ("~", format!(" (changes {})", fields.join(", "))),
            Change::Delete => ("-", String::new()),
            Change::Same => ("=", String::new()),
        };
        println!("{mark} {} {}  {}{extra}", s.kind, s.name, s.detail);
    }
    let count = |c: fn(&Change) -> bool| steps.iter().filter(|s| c(&s.change)).count();
    println!(
        "plan: {} to add, {} to change, {} to delete, {} unchanged",
        count(|c| *c == Change::Add),
        count(|c| matches!(c, Change::Modify(_))),
        count(|c| *c == Change::Delete),
        count(|c| *c == Change::Same),
    );
}

async fn apply(client: &Client, step: Step) -> Outcome {
    let name = segment(&step.name);
    match step.action {
        Action::Upload(bytes) => {
            let request = client
                .request(Method::POST, "/v1/modules")
                .header("content-type", "application/wasm")
                .body(bytes);
            client.send(request).await?;
        }
        Action::SetAlias(body) => {
            client.put(&format!("/v1/aliases/{name}"), &body).await?;
        }
        Action::DeleteAlias => {
            client.delete(&format!("/v1/aliases/{name}")).await?;
        }
        Action::SetQueue(limits) => {
            client.put(&format!("/v1/queues/{name}/limits"), &limits).await?;
        }
        Action::SetSchedule(body) => {
            client.put(&format!("/v1/schedules/{name}"), &body).await?;
        }
        Action::DeleteSchedule => {
            client.delete(&format!("/v1/schedules/{name}")).await?;
        }
        Action::None => {}
    }
    Ok(())
}
