//! `wasmq jobs`: list, show, read the logs of, follow, wait for, cancel,
//! retry and delete jobs, one or every one a filter matches.

use clap::{Args, Subcommand, ValueEnum};
use std::time::Duration;

use super::http::{Client, Outcome, Reply, segment};
use super::model::{Job, JobLogs, JobPage};
use super::output::{Fields, Table, or_dash};
use super::{ClientOpts, WAIT_EXIT_CODES_HELP, dispatch, follow, units};
use crate::domain::JobStatus;

/// Exit codes of `jobs run` (those of `wasmq run`).
const RUN_EXIT_CODES_HELP: &str = "\
Exit codes (as wasmq run):
  0   success: the result is on stdout
  1   wasmq failed (unreachable server, unknown job, internal error)
  10  plugin_error      11  trap             12  fuel_exhausted
  13  timeout           14  memory_limit     15  output_too_large
  16  cancelled         17  invalid_payload  18  invalid_module";

/// Arguments of `wasmq jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,

    /// What to do.
    #[command(subcommand)]
    pub command: JobsCommand,
}

/// Sort order of `wasmq jobs list`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OrderArg {
    /// Newest first.
    Created,
    /// Highest priority first, then oldest.
    Priority,
}

/// The `wasmq jobs` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// A page of jobs, newest first (filters combine).
    List {
        /// Only jobs with this status.
        #[arg(long, value_parser = JobStatus::ALL.map(JobStatus::as_str))]
        status: Option<String>,
        /// Only jobs of this alias.
        #[arg(long)]
        alias: Option<String>,
        /// Only jobs in this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Only jobs with this context tag.
        #[arg(long)]
        context: Option<String>,
        /// Only the jobs of this batch.
        #[arg(long, value_name = "ID")]
        batch: Option<String>,
        /// Sort order.
        #[arg(long, value_enum, default_value_t = OrderArg::Created)]
        order: OrderArg,
        /// Most jobs per page (1..=1000); a page also ends at 4 MiB of job data.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Continue after this cursor (printed under a page when more jobs follow).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One job: status, attempts, progress, result or error, and what its
    /// latest attempt logged and printed.
    Show {
        /// The job's id.
        id: String,
    },
    /// What a job's latest attempt logged through the host and printed on
    /// stdout and stderr.
    Logs {
        /// The job's id.
        id: String,
        /// Only the plugin's stdout, as it printed it.
        #[arg(long, conflicts_with = "stderr")]
        stdout: bool,
        /// Only the plugin's stderr, as it printed it.
        #[arg(long)]
        stderr: bool,
    },
    /// Follow a job as it runs (status and progress, one line each), then
    /// print its result like `jobs wait`. With --json, one JSON event per line.
    #[command(after_help = WAIT_EXIT_CODES_HELP)]
    Follow {
        /// The job's id.
        id: String,
    },
    /// The server's events as they happen (jobs queued, started, progressing,
    /// logging and ending; batches done; with the operator's token, workers
    /// and nodes), one line each (--json: one JSON object per line), until
    /// Ctrl-C. A dropped connection resumes where it left off.
    Watch(super::watch::WatchArgs),
    /// Wait until a job ends and print its result (like `dispatch --wait`).
    #[command(after_help = WAIT_EXIT_CODES_HELP)]
    Wait {
        /// The job's id.
        id: String,
        /// Give up (exit 1) after this long, e.g. `30s`, `5m`. Default: wait as long as it takes.
        #[arg(long, value_name = "DURATION", value_parser = units::millis)]
        timeout: Option<u64>,
    },
    /// Cancel a job that has not ended (a running one is interrupted), or
    /// every job a filter matches (`--status queued --alias x`, `--all`).
    Cancel {
        /// The job's id (or a filter instead).
        #[arg(required_unless_present = "bulk", conflicts_with = "bulk")]
        id: Option<String>,
        /// Every job the filter matches.
        #[command(flatten)]
        filter: FilterFlags,
    },
    /// Queue a failed, dead or cancelled job again with a fresh attempt
    /// budget, or every one a filter matches (`--status dead --alias x`).
    Retry {
        /// The job's id (or a filter instead).
        #[arg(required_unless_present = "bulk", conflicts_with = "bulk")]
        id: Option<String>,
        /// Every job the filter matches.
        #[command(flatten)]
        filter: FilterFlags,
    },
    /// Run a stored job here, as `wasmq run` runs a file: its module,
    /// payload and limits (and its alias's configuration values) from the
    /// server, its output on this console, `wasmq run`'s exit codes. The
    /// job on the server is left as it is.
    #[command(after_help = RUN_EXIT_CODES_HELP)]
    Run {
        /// The job's id.
        id: String,
        /// Limits instead of the job's own.
        #[command(flatten)]
        overrides: super::job_run::RunOverrides,
    },
    /// Delete an ended job, or every ended job a filter matches (jobs not
    /// ended, and callbacks still being delivered, are left).
    Delete {
        /// The job's id (or a filter instead).
        #[arg(required_unless_present = "bulk", conflicts_with = "bulk")]
        id: Option<String>,
        /// Every job the filter matches.
        #[command(flatten)]
        filter: FilterFlags,
    },
}

/// Which jobs a bulk `cancel`, `retry` or `delete` takes (conditions combine).
#[derive(Debug, Args)]
#[group(id = "bulk", multiple = true)]
pub struct FilterFlags {
    /// Only jobs with this status (repeatable).
    #[arg(long, value_parser = JobStatus::ALL.map(JobStatus::as_str))]
    status: Vec<String>,
    /// Only jobs of this alias.
    #[arg(long)]
    alias: Option<String>,
    /// Only jobs in this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Only jobs with this context tag.
    #[arg(long)]
    context: Option<String>,
    /// Only jobs created at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    created_after: Option<String>,
    /// Only jobs created before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    created_before: Option<String>,
    /// Every job the action applies to (no other condition).
    #[arg(long)]
    all: bool,
}

impl FilterFlags {
    fn body(self) -> Outcome<serde_json::Value> {
        let mut body = serde_json::Map::new();
        if !self.status.is_empty() {
            body.insert("status".into(), self.status.into());
        }
        for (key, value) in [
            ("alias", self.alias),
            ("queue", self.queue),
            ("context", self.context),
            ("created_after", self.created_after),
            ("created_before", self.created_before),
        ] {
            if let Some(v) = value {
                body.insert(key.into(), v.into());
            }
        }
        if body.is_empty() && !self.all {
            return Err(super::http::Failure::other("give a filter (--status, --alias, ...) or --all"));
        }
        Ok(body.into())
    }
}

/// A bulk action over `filter` (`POST /v1/jobs/{action}`): prints how many
/// jobs it took.
async fn bulk(client: &Client, action: &str, filter: FilterFlags) -> Outcome {
    let reply = client.post(&format!("/v1/jobs/{action}"), Some(&filter.body()?)).await?;
    if client.json {
        reply.print_raw();
        return Ok(());
    }
    let done: super::model::BulkDone = reply.parse()?;
    println!("{} jobs: {}", done.action, done.affected);
    Ok(())
}

pub(super) async fn run(client: &Client, args: JobsArgs) -> Outcome {
    match args.command {
        JobsCommand::List { status, alias, queue, context, batch, order, limit, cursor } => {
            let order = match order {
                OrderArg::Created => "created",
                OrderArg::Priority => "priority",
            };
            let mut query: Vec<(&str, String)> = vec![("order", order.into()), ("limit", limit.to_string())];
            for (key, value) in [
                ("status", status),
                ("alias", alias),
                ("queue", queue),
                ("context", context),
                ("batch", batch),
                ("cursor", cursor),
            ] {
                if let Some(v) = value {
                    query.push((key, v));
                }
            }
            let reply = client.send(client.request(reqwest::Method::GET, "/v1/jobs").query(&query)).await?;
            if client.json {
                reply.print_raw();
                return Ok(());
            }
            list(&reply.parse()?);
        }
        JobsCommand::Show { id } => {
            let reply = client.get(&path(&id, "")).await?;
            show(client, &reply)?;
        }
        JobsCommand::Logs { id, stdout, stderr } => {
            let reply = client.get(&path(&id, "")).await?;
            if client.json {
                #[derive(serde::Deserialize)]
                struct Raw {
                    logs: Option<Box<serde_json::value::RawValue>>,
                }
                let raw: Raw = reply.parse()?;
                println!("{}", raw.logs.as_ref().map_or("null", |l| l.get()));
                return Ok(());
            }
            let logs = JobLogs::of(&reply.parse::<Job>()?)?.unwrap_or_default();
            match (stdout, stderr) {
                (true, _) => print!("{}", logs.stdout.text),
                (_, true) => print!("{}", logs.stderr.text),
                _ if logs.log.is_empty()
                    && logs.stdout.text.is_empty()
                    && logs.stderr.text.is_empty()
                    && logs.http.is_empty() =>
                {
                    eprintln!(
                        "job {id} logged and printed nothing and sent no request (in its latest attempt)"
                    );
                }
                _ => print!("{}", logs_text(&logs)),
            }
        }
        JobsCommand::Follow { id } => return follow::run(client, &id).await,
        JobsCommand::Watch(args) => return super::watch::run(client, args).await,
        JobsCommand::Run { id, overrides } => return super::job_run::run(client, &id, overrides).await,
        JobsCommand::Wait { id, timeout } => {
            let (reply, job) = dispatch::wait(client, &id, timeout.map(Duration::from_millis)).await?;
            return dispatch::report_end(client, &reply, &job);
        }
        JobsCommand::Cancel { id: Some(id), .. } => {
            let reply = client.post::<()>(&path(&id, "/cancel"), None).await?;
            brief(client, &reply)?;
        }
        JobsCommand::Retry { id: Some(id), .. } => {
            let reply = client.post::<()>(&path(&id, "/retry"), None).await?;
            brief(client, &reply)?;
        }
        JobsCommand::Delete { id: Some(id), .. } => {
            client.delete(&path(&id, "")).await?;
            if !client.json {
                println!("deleted job {id}");
            }
        }
        JobsCommand::Cancel { id: None, filter } => bulk(client, "cancel", filter).await?,
        JobsCommand::Retry { id: None, filter } => bulk(client, "retry", filter).await?,
        JobsCommand::Delete { id: None, filter } => bulk(client, "delete", filter).await?,
    }
    Ok(())
}

fn path(id: &str, tail: &str) -> String {
    format!("/v1/jobs/{}{tail}", segment(id))
}

fn list(page: &JobPage) {
    if page.jobs.is_empty() {
        eprintln!("no jobs match");
        return;
    }
    let mut table =
        Table::new(&["ID", "STATUS", "ALIAS", "QUEUE", "PRIORITY", "ATTEMPT", "CONTEXT", "CREATED"])
            .right_align(&[4]);
    for j in &page.jobs {
        table.row([
            j.id.clone(),
            j.status.as_str().to_string(),
            j.alias.clone(),
            j.queue.clone(),
            j.priority.to_string(),
            format!("{}/{}", j.attempt, j.max_attempts),
            or_dash(j.context.as_ref()),
            j.created_at.clone(),
        ]);
    }
    table.print();
    if let Some(cursor) = &page.next_cursor {
        println!("\nmore: --cursor {cursor}");
    }
}

/// `id` and `status` of a job that was just changed.
fn brief(client: &Client, reply: &Reply) -> Outcome {
    if client.json {
        reply.print_raw();
        return Ok(());
    }
    let job: Job = reply.parse()?;
    Fields::new().add("id", &job.id).add("status", job.status.as_str()).print();
    Ok(())
}

fn show(client: &Client, reply: &Reply) -> Outcome {
    if client.json {
        reply.print_raw();
        return Ok(());
    }
    let j: Job = reply.parse()?;
    Fields::new()
        .add("id", &j.id)
        .add("status", j.status.as_str())
        .add("alias", &j.alias)
        .add("module", &j.module)
        .add("queue", &j.queue)
        .add("priority", j.priority)
        .opt("context", j.context.as_ref())
        .add("attempt", format!("{}/{}", j.attempt, j.max_attempts))
        .opt("batch", j.batch_id.as_ref())
        .opt("idempotency key", j.idempotency_key.as_ref())
        .add("created", &j.created_at)
        .add("run at", &j.run_at)
        .opt("started", j.started_at.as_ref())
        .opt("finished", j.finished_at.as_ref())
        .opt("duration", j.duration_ms.map(|d| format!("{d} ms")))
        .opt("fuel used", j.fuel_used)
        .opt("progress", j.progress.as_ref().map(|p| format!("{}% {}", p.percent, p.message)))
        .add("payload", j.payload.get())
        .opt("result", j.result.as_ref().map(|r| r.get()))
        .opt("error", j.error.as_ref().map(|e| format!("({}) {}", e.kind, e.message)))
        .opt(
            "callback",
            j.callback.as_ref().map(|c| {
                let state = c.state.map_or("-", |s| s.as_str());
                let last = c.last_error.as_ref().map(|e| format!(", last error: {e}")).unwrap_or_default();
                format!("{} ({state}, {} attempts{last})", c.url, c.attempts)
            }),
        )
        .print();
    if let Some(logs) = JobLogs::of(&j)? {
        println!();
        print!("{}", logs_text(&logs));
    }
    Ok(())
}

/// The log lines, then the captured stdout and stderr, each under a header
/// (empty ones left out).
fn logs_text(logs: &JobLogs) -> String {
    let mut out = String::new();
    let truncated = |t: bool| if t { " (truncated)" } else { "" };
    if !logs.log.is_empty() {
        out.push_str(&format!("log{}:\n", truncated(logs.log_truncated)));
        for line in &logs.log {
            let level = format!("{:?}", line.level).to_uppercase();
            out.push_str(format!("  {level:<5} {}", line.message).trim_end());
            out.push('\n');
        }
    }
    for (name, captured) in [("stdout", &logs.stdout), ("stderr", &logs.stderr)] {
        if captured.text.is_empty() {
            continue;
        }
        out.push_str(&format!("{name}{}:\n", truncated(captured.truncated)));
        for line in captured.text.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if !logs.http.is_empty() {
        out.push_str(&format!("http{}:\n", truncated(logs.http_truncated)));
        for c in &logs.http {
            let answer = match (&c.status, &c.error) {
                (_, Some(error)) => error.clone(),
                (Some(status), None) => status.to_string(),
                (None, None) => "-".into(),
            };
            out.push_str(&format!(
                "  {} {} {answer} (sent {} B, received {} B, {} ms)\n",
                c.method, c.origin, c.sent_bytes, c.received_bytes, c.duration_ms
            ));
        }
    }
    out
}
