//! `wasmq batch`: many jobs in one request, read from a JSON Lines file;
//! `wasmq batch show`: how far a batch got.

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::value::RawValue;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::ClientOpts;
use super::http::{Client, Failure, Outcome, Reply, segment};
use super::model::{Batch, BatchCreated};
use super::output::{Fields, Table};
use crate::domain::{Callback, CallbackState, JobStatus};

/// Arguments of `wasmq batch`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "\
Each non-empty line of the file is one job, as `POST /v1/jobs` takes it:
  {\"alias\": \"thumbnail\", \"payload\": {\"url\": \"...\"}, \"priority\": 800}
The batch is all or nothing: one bad job rejects it, and the error names its line.
With --json, prints the server's answer, including every job id.
`wasmq batch show <id>` shows a batch's progress; `wasmq jobs list --batch <id>` its jobs."
)]
pub struct BatchArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,

    /// Another action than dispatching.
    #[command(subcommand)]
    pub command: Option<BatchCommand>,

    /// The JSON Lines file of jobs, or `-` to read it from stdin.
    #[arg(required = true)]
    pub file: Option<PathBuf>,

    /// POST the batch's outcome here once every job has ended.
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,

    /// Wait until every job has ended, with a progress bar on a terminal;
    /// then print the batch's counts (exit 3 if any job did not succeed).
    #[arg(long)]
    pub wait: bool,
}

/// The `wasmq batch` subcommands.
#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// A batch: its jobs per status, whether all ended, its callback.
    Show {
        /// The batch's id (`wasmq batch` prints it).
        id: String,
    },
    /// Delete a finished batch with its jobs.
    Delete {
        /// The batch's id.
        id: String,
    },
}

/// `POST /v1/batches` as the client sends it: `BatchRequest`'s fields, with
/// each job passed on as the file wrote it (the server checks it and names the
/// bad one, and a newer server's job fields reach it).
#[derive(Serialize)]
struct Body<'a> {
    jobs: &'a [Box<RawValue>],
    #[serde(skip_serializing_if = "Option::is_none")]
    callback: Option<Callback>,
}

pub(super) async fn run(client: &Client, args: BatchArgs) -> Outcome {
    match &args.command {
        Some(BatchCommand::Show { id }) => return show(client, id).await,
        Some(BatchCommand::Delete { id }) => {
            let reply = client.delete(&format!("/v1/batches/{}", super::http::segment(id))).await?;
            if client.json {
                reply.print_raw();
            } else {
                let done: super::model::BatchDeleted = reply.parse()?;
                println!("deleted batch {} with {} jobs", done.id, done.jobs);
            }
            return Ok(());
        }
        None => {}
    }
    let Some(file) = &args.file else {
        return Err(Failure::other("give the JSON Lines file of jobs (or `-` for stdin)"));
    };
    let name = file.display().to_string();
    let text = read(file)?;
    let (jobs, lines) = parse_lines(&name, &text)?;
    let callback =
        args.callback_url.clone().map(|url| Callback { url, headers: Default::default(), secret: None });
    let body = Body { jobs: &jobs, callback };
    // Opened before the batch is sent, so no job of it ends unseen.
    let events = match args.wait {
        true => open_events(client).await,
        false => None,
    };
    let reply = match client.post("/v1/batches", Some(&body)).await {
        Ok(r) => r,
        Err(Failure::Api { status, code, message }) => {
            return Err(Failure::Api { status, code, message: name_line(message, &name, &lines) });
        }
        Err(e) => return Err(e),
    };
    let batch: BatchCreated = reply.parse()?;
    if args.wait {
        eprintln!("batch {} ({} jobs)", batch.id, batch.total);
        let done = wait(client, &batch.id, batch.total as u64, events).await?;
        return finish(client, &done);
    }
    if client.json {
        reply.print_raw();
        return Ok(());
    }
    Fields::new().add("id", &batch.id).add("total", batch.total).print();
    Ok(())
}

/// The batch's counts until every job ended: read again whenever one of its
/// jobs ends (as the event stream, opened before the batch was sent, tells;
/// at most every 200 ms) and at least every second, so the progress is the
/// server's own count even when the stream drops or lags.
async fn wait(
    client: &Client,
    id: &str,
    total: u64,
    mut events: Option<EventStream>,
) -> Outcome<(Reply, Batch)> {
    use futures_util::StreamExt;
    let bar = bar(total);
    let path = format!("/v1/batches/{}", segment(id));
    let result = async {
        loop {
            let reply = client.get(&path).await?;
            let b: Batch = reply.parse()?;
            let ended: u64 = ["succeeded", "dead", "cancelled"].iter().filter_map(|s| b.counts.get(*s)).sum();
            bar.set_position(ended);
            bar.set_message(summary(&b));
            if b.done {
                return Ok((reply, b));
            }
            let pause = tokio::time::sleep(std::time::Duration::from_millis(200));
            let woken = async {
                match events.as_mut() {
                    Some(stream) => loop {
                        match tokio::time::timeout(std::time::Duration::from_secs(1), stream.next()).await {
                            Ok(Some(Ok(e))) if e.data.contains(id) => return,
                            Ok(Some(Ok(_))) => {}
                            Ok(_) => {
                                events = None; // the stream ended: poll only
                                return;
                            }
                            Err(_) => return,
                        }
                    },
                    None => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
                }
            };
            let ((), ()) = tokio::join!(pause, woken);
        }
    };
    let result = tokio::select! {
        r = result => r,
        _ = tokio::signal::ctrl_c() => {
            bar.finish_and_clear();
            eprintln!("interrupted: batch {id} goes on; `wasmq batch show {id}` shows how far it got");
            return Err(Failure::Interrupted);
        }
    };
    bar.finish_and_clear();
    result
}

/// Jobs per status, in lifecycle order (those with any).
fn summary(b: &Batch) -> String {
    JobStatus::ALL
        .iter()
        .filter_map(|s| b.counts.get(s.as_str()).filter(|n| **n > 0).map(|n| format!("{n} {}", s.as_str())))
        .collect::<Vec<_>>()
        .join(", ")
}

fn bar(total: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} ended {wide_msg}")
        .expect("the template is valid")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// The batch as it ended: its counts (or, with --json, the server's answer);
/// exit 3 if any job did not succeed.
fn finish(client: &Client, (reply, b): &(Reply, Batch)) -> Outcome {
    if client.json {
        reply.print_raw();
    } else {
        Fields::new().add("id", &b.id).add("total", b.total).add("ended", summary(b)).print();
    }
    let succeeded = b.counts.get("succeeded").copied().unwrap_or(0);
    if succeeded == b.total {
        return Ok(());
    }
    eprintln!(
        "error: {} of {} jobs did not succeed; `wasmq jobs list --batch {}` lists them",
        b.total - succeeded,
        b.total,
        b.id
    );
    Err(Failure::JobFailed)
}

/// The caller's job-end and batch events (`None` if the server offers no
/// stream: the wait then polls).
type EventStream = std::pin::Pin<
    Box<
        dyn futures_util::Stream<
                Item = Result<
                    eventsource_stream::Event,
                    eventsource_stream::EventStreamError<reqwest::Error>,
                >,
            > + Send,
    >,
>;

async fn open_events(client: &Client) -> Option<EventStream> {
    use eventsource_stream::Eventsource;
    let request = client.stream_request("/v1/events?types=job.succeeded,job.dead,job.cancelled,batch.done");
    let response = client.open(request).await.ok()?;
    Some(Box::pin(response.bytes_stream().eventsource()))
}

async fn show(client: &Client, id: &str) -> Outcome {
    let reply = client.get(&format!("/v1/batches/{}", segment(id))).await?;
    if client.json {
        reply.print_raw();
        return Ok(());
    }
    let b: Batch = reply.parse()?;
    Fields::new()
        .add("id", &b.id)
        .add("total", b.total)
        .add("done", if b.done { "yes, every job ended" } else { "no" })
        .add("created", &b.created_at)
        .opt(
            "callback",
            b.callback.as_ref().map(|c| {
                let state = c.state.map_or("-", CallbackState::as_str);
                let last = c.last_error.as_ref().map(|e| format!(", last error: {e}")).unwrap_or_default();
                format!("{} ({state}, {} attempts{last})", c.url, c.attempts)
            }),
        )
        .print();
    println!();
    // Lifecycle order, then any status a newer server adds.
    let mut table = Table::new(&["STATUS", "JOBS"]).right_align(&[1]);
    let known = JobStatus::ALL.map(JobStatus::as_str);
    for name in
        known.iter().copied().chain(b.counts.keys().map(String::as_str).filter(|n| !known.contains(n)))
    {
        if let Some(n) = b.counts.get(name).filter(|n| **n > 0) {
            table.row([name.to_string(), n.to_string()]);
        }
    }
    table.print();
    Ok(())
}

fn read(file: &Path) -> Outcome<String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::other(format!("cannot read the jobs from stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(file).map_err(|e| Failure::other(format!("cannot read {}: {e}", file.display())))
}

/// The jobs of a JSON Lines text, and the line number of each.
fn parse_lines(name: &str, text: &str) -> Outcome<(Vec<Box<RawValue>>, Vec<usize>)> {
    #[derive(serde::Deserialize)]
    struct Shape {
        #[allow(dead_code)]
        alias: String,
        #[allow(dead_code)]
        payload: serde::de::IgnoredAny,
    }
    let (mut jobs, mut lines) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let n = i + 1;
        let job: Box<RawValue> = serde_json::from_str(line).map_err(|e| {
            Failure::other(format!("{name}: line {n}: not valid JSON: {}", without_position(&e)))
        })?;
        if !line.starts_with('{') {
            return Err(Failure::other(format!("{name}: line {n}: expected a JSON object (a job request)")));
        }
        serde_json::from_str::<Shape>(line)
            .map_err(|e| Failure::other(format!("{name}: line {n}: {}", without_position(&e))))?;
        jobs.push(job);
        lines.push(n);
    }
    if jobs.is_empty() {
        return Err(Failure::other(format!("{name}: no jobs (every line is empty)")));
    }
    Ok((jobs, lines))
}

/// A serde_json message without its ` at line 1 column N` (always line 1 here);
/// syntax errors keep the column.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((message, _)) if e.is_syntax() => format!("{message} (column {})", e.column()),
        Some((message, _)) => message.to_string(),
        None => text,
    }
}

/// The server names a bad job `jobs[i]`; add the line it came from.
fn name_line(message: String, name: &str, lines: &[usize]) -> String {
    let index = message
        .strip_prefix("jobs[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(i, _)| i.parse::<usize>().ok());
    match index.and_then(|i| lines.get(i)) {
        Some(n) => format!("{message} ({name}: line {n})"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_in_the_file() {
        let (jobs, lines) =
            parse_lines("f", "\n{\"alias\":\"a\",\"payload\":1}\n\n{\"alias\":\"b\",\"payload\":{}}\n")
                .unwrap_or_else(|_| panic!("parses"));
        assert_eq!(jobs.len(), 2);
        assert_eq!(lines, [2, 4]);
        assert_eq!(
            name_line("jobs[1]: alias x not found".into(), "f", &lines),
            "jobs[1]: alias x not found (f: line 4)"
        );
        let Err(Failure::Other(m)) = parse_lines("f", "{\"alias\":\"a\",\"payload\":1}\n{oops") else {
            panic!("line 2 is not JSON");
        };
        assert!(m.starts_with("f: line 2: not valid JSON: key must be a string (column 2)"), "{m}");
        let Err(Failure::Other(m)) = parse_lines("f", "{\"payload\":1}") else { panic!("no alias") };
        assert_eq!(m, "f: line 1: missing field `alias`");
    }
}
