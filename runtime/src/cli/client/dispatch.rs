//! `wasmq dispatch`: one job to an alias; with `--wait`, its result (or error).

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::StatusCode;
use serde_json::value::RawValue;
use std::io::{IsTerminal, Read};
use std::time::{Duration, Instant};

use super::http::{Client, Failure, Outcome, Reply, segment};
use super::model::{Job, JobRequest};
use super::output::Fields;
use super::{ClientOpts, WAIT_EXIT_CODES_HELP, units};
use crate::api::UniqueRequest;
use crate::domain::{JobStatus, UniqueField};

/// Per-job options of `dispatch` (each defaults to the alias's, then the
/// server's). They become the server's own [`JobRequest`], whose ranges the
/// server checks (its 400 names the field); the flags only convert units.
#[derive(Debug, Default, Args)]
pub struct JobFlags {
    /// 0..=1000, higher runs first.
    #[arg(long)]
    pub priority: Option<i64>,
    /// Queue to run in.
    #[arg(long)]
    pub queue: Option<String>,
    /// Free tag to find the job by (`wasmq jobs list --context`).
    #[arg(long)]
    pub context: Option<String>,
    /// Run no earlier than this from now, e.g. `30s`, `10m`, `2h`.
    #[arg(long, value_name = "DURATION", value_parser = units::millis_or_zero)]
    pub delay: Option<u64>,
    /// A repeated key returns the first job instead of creating another.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Answer an existing job instead of making one while a job matching on
    /// these fields is pending: any of `alias`, `payload`, `queue`,
    /// `context`, comma-separated (`--unique-for` and `--unique-states`
    /// alone imply `alias,payload,queue`).
    #[arg(long, value_name = "FIELDS", value_delimiter = ',', value_parser = unique_field)]
    pub unique_by: Option<Vec<UniqueField>>,
    /// Only a job created within this long matches, e.g. `10m`, `1h`.
    #[arg(long, value_name = "DURATION", value_parser = units::millis)]
    pub unique_for: Option<u64>,
    /// The states a matching job blocks in (default: those before the end),
    /// comma-separated, e.g. `queued,running,succeeded`.
    #[arg(long, value_name = "STATES", value_delimiter = ',', value_parser = job_status)]
    pub unique_states: Option<Vec<JobStatus>>,
    /// Attempts before the job is dead (1..=100).
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Wall-clock limit per attempt, e.g. `500ms`, `5s`, `2m`.
    #[arg(long, value_name = "DURATION", value_parser = units::millis)]
    pub timeout: Option<u64>,
    /// Fuel per attempt (about one unit per wasm instruction).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Memory limit, in whole MiB, e.g. `64MiB`, `1GiB`.
    #[arg(long, value_name = "SIZE", value_parser = units::mebibytes)]
    pub memory: Option<u64>,
}

/// A `--unique-by` field.
fn unique_field(s: &str) -> Result<UniqueField, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("{s:?} is not one of alias, payload, queue, context"))
}

/// A `--unique-states` status.
fn job_status(s: &str) -> Result<JobStatus, String> {
    JobStatus::parse(s).ok_or_else(|| {
        let all: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
        format!("{s:?} is not a job status ({})", all.join(", "))
    })
}

impl JobFlags {
    /// The `POST /v1/jobs` body of one job to `alias` with these options.
    fn request(self, alias: String, payload: Box<RawValue>) -> JobRequest {
        JobRequest {
            alias,
            payload,
            priority: self.priority,
            queue: self.queue,
            context: self.context,
            delay_ms: self.delay,
            run_at: None,
            max_attempts: self.max_attempts,
            timeout_ms: self.timeout,
            fuel: self.fuel,
            memory_mb: self.memory,
            idempotency_key: self.idempotency_key,
            callback: None,
            unique: (self.unique_by.is_some() || self.unique_for.is_some() || self.unique_states.is_some())
                .then_some(UniqueRequest {
                    by: self.unique_by,
                    period_ms: self.unique_for,
                    states: self.unique_states,
                }),
        }
    }
}

/// Arguments of `wasmq dispatch`.
#[derive(Debug, Args)]
#[command(after_help = WAIT_EXIT_CODES_HELP)]
pub struct DispatchArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,

    /// The alias to run.
    pub alias: String,

    /// The JSON payload, or `-` to read it from stdin.
    pub payload: String,

    /// Wait until the job ends: print its result on stdout. The job's id goes
    /// to stderr first (and a progress bar when stderr is a terminal), so an
    /// interrupted wait leaves the id to `jobs wait` or `jobs cancel`.
    #[arg(long)]
    pub wait: bool,

    /// Per-job options.
    #[command(flatten)]
    pub flags: JobFlags,
}

pub(super) async fn run(client: &Client, args: DispatchArgs) -> Outcome {
    let payload = read_payload(&args.payload)?;
    let body = args.flags.request(args.alias, payload);
    let reply = client.post("/v1/jobs", Some(&body)).await?;
    let job: Job = reply.parse()?;
    if args.wait {
        eprintln!("job {}", job.id);
        let (reply, job) = match wait(client, &job.id, None).await {
            Ok(done) => done,
            Err(Failure::Interrupted) => return Err(Failure::Interrupted),
            Err(e) => {
                eprintln!("note: job {0} was dispatched; `wasmq jobs wait {0}` waits for it again", job.id);
                return Err(e);
            }
        };
        return report_end(client, &reply, &job);
    }
    if client.json {
        reply.print_raw();
        return Ok(());
    }
    let mut fields = Fields::new().add("id", &job.id).add("status", job.status.as_str());
    if reply.status == StatusCode::OK {
        fields = fields.add("note", "an earlier job with this idempotency key (not dispatched again)");
    }
    fields.print();
    Ok(())
}

/// The payload argument (`-` is stdin), checked to be JSON before it is sent.
pub(super) fn read_payload(arg: &str) -> Outcome<Box<RawValue>> {
    let (text, source) = if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::other(format!("cannot read the payload from stdin: {e}")))?;
        (s, "the payload read from stdin")
    } else {
        (arg.to_string(), "the payload")
    };
    serde_json::from_str(text.trim())
        .map_err(|e| Failure::other(format!("{source} is not valid JSON: {e}; nothing was dispatched")))
}

/// Follows the job's event stream until it is terminal (or `limit` passes),
/// drawing its progress on stderr when stderr is a terminal (each `status`
/// and `progress` event as it comes); falls back to long-polling if the
/// stream ends early (a server shutting down). Returns the final answer.
///
/// Ctrl-C stops the wait, not the job: it ends in [`Failure::Interrupted`]
/// after saying how to wait again or cancel.
pub(super) async fn wait(client: &Client, id: &str, limit: Option<Duration>) -> Outcome<(Reply, Job)> {
    let bar = progress_bar();
    let deadline = limit.map(|l| Instant::now() + l);
    let followed = async {
        match follow(client, id, &bar).await? {
            Some(done) => Ok(done),
            None => {
                poll(client, id, deadline.map(|d| d.saturating_duration_since(Instant::now())), &bar).await
            }
        }
    };
    let bounded = async {
        match deadline {
            None => followed.await,
            Some(d) => match tokio::time::timeout_at(d.into(), followed).await {
                Ok(done) => done,
                Err(_) => {
                    let job: Job = client.get(&format!("/v1/jobs/{}", segment(id))).await?.parse()?;
                    let waited = humantime::format_duration(limit.unwrap_or_default());
                    Err(Failure::other(format!("job {id} is still {} after {waited}", job.status.as_str())))
                }
            },
        }
    };
    let result = tokio::select! {
        r = bounded => r,
        _ = tokio::signal::ctrl_c() => {
            bar.finish_and_clear();
            eprintln!(
                "interrupted: job {id} goes on; `wasmq jobs wait {id}` waits again, `wasmq jobs cancel {id}` stops it"
            );
            return Err(Failure::Interrupted);
        }
    };
    bar.finish_and_clear();
    result
}

async fn poll(
    client: &Client,
    id: &str,
    limit: Option<Duration>,
    bar: &ProgressBar,
) -> Outcome<(Reply, Job)> {
    let deadline = limit.map(|l| Instant::now() + l);
    let path = format!("/v1/jobs/{}/wait", segment(id));
    loop {
        let poll_ms = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).as_millis().min(1000) as u64,
            None => 1000,
        };
        let reply = client
            .send(client.request(reqwest::Method::GET, &path).query(&[("timeout_ms", poll_ms)]))
            .await?;
        let job: Job = reply.parse()?;
        show_progress(bar, &job);
        if job.status.is_terminal() {
            return Ok((reply, job));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let waited = humantime::format_duration(limit.unwrap_or_default());
            return Err(Failure::other(format!("job {id} is still {} after {waited}", job.status.as_str())));
        }
    }
}

/// The job's events until `end` (its final answer); `None` if the stream
/// ended without one.
async fn follow(client: &Client, id: &str, bar: &ProgressBar) -> Outcome<Option<(Reply, Job)>> {
    use eventsource_stream::Eventsource;
    use futures_util::StreamExt;
    let request = client.stream_request(&format!("/v1/jobs/{}/events", segment(id)));
    let mut events = client.open(request).await?.bytes_stream().eventsource();
    let mut attempt = 0;
    while let Some(Ok(event)) = events.next().await {
        let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
        match event.event.as_str() {
            "status" => {
                attempt = data["attempt"].as_u64().unwrap_or(0);
                let status = data["status"].as_str().unwrap_or("");
                bar.set_message(match status {
                    "running" => format!("running (attempt {attempt})"),
                    "failed" => format!("attempt {attempt} failed, retrying"),
                    other => other.to_string(),
                });
            }
            "progress" => {
                bar.set_position(data["percent"].as_u64().unwrap_or(0).min(100));
                match data["message"].as_str().filter(|m| !m.is_empty()) {
                    Some(message) => bar.set_message(message.to_string()),
                    None => bar.set_message(format!("running (attempt {attempt})")),
                }
            }
            "end" => {
                let reply = Reply { status: StatusCode::OK, body: event.data };
                let job: Job = reply.parse()?;
                return Ok(Some((reply, job)));
            }
            _ => {}
        }
    }
    Ok(None)
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} [{bar:30}] {pos:>3}% {wide_msg}")
        .expect("the template is valid")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn show_progress(bar: &ProgressBar, job: &Job) {
    if let Some(p) = &job.progress {
        bar.set_position(u64::from(p.percent.min(100)));
    }
    let attempt = format!("attempt {}/{}", job.attempt, job.max_attempts);
    let message = match (job.status, &job.progress) {
        (JobStatus::Running, Some(p)) if !p.message.is_empty() => p.message.clone(),
        (JobStatus::Running, _) => format!("running ({attempt})"),
        (JobStatus::Failed, _) => format!("{attempt} failed, retrying"),
        (status, _) => status.as_str().to_string(),
    };
    bar.set_message(message);
}

/// Prints a terminal job: its result on stdout, or its error on stderr
/// ([`Failure::JobFailed`], exit 3). With `--json`, the whole job on stdout.
pub(super) fn report_end(client: &Client, reply: &Reply, job: &Job) -> Outcome {
    if client.json {
        reply.print_raw();
    }
    if job.status == JobStatus::Succeeded {
        if !client.json {
            println!("{}", job.result.as_ref().map_or("null", |r| r.get()));
        }
        return Ok(());
    }
    Err(report_error(job))
}

/// Prints the error of a job that ended without success on stderr:
/// [`Failure::JobFailed`] (exit 3).
pub(super) fn report_error(job: &Job) -> Failure {
    match (&job.error, job.status) {
        (Some(e), JobStatus::Cancelled) if e.kind != "cancelled" => {
            eprintln!("error (cancelled): the job was cancelled (last attempt: {}: {})", e.kind, e.message)
        }
        (Some(e), _) => eprintln!("error ({}): {}", e.kind, e.message),
        (None, status) => eprintln!("error ({0}): the job is {0}", status.as_str()),
    }
    Failure::JobFailed
}
