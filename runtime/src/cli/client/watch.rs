//! `wasmq jobs watch`: the server's event stream (`GET /v1/events`) as it
//! happens, until Ctrl-C: on a terminal a table of the latest jobs redrawn in
//! place (coloured unless `NO_COLOR` is set); on a pipe one line per event;
//! with `--json`, each event's data as a JSON line.
//!
//! A dropped connection is opened again with the last event's id
//! (`Last-Event-ID`), so nothing is missed while the server still holds it;
//! when it does not, the server's `lagged` event is reported on stderr.

use clap::Args;
use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;

use super::http::{Client, Failure, Outcome};

/// Which events `jobs watch` shows (conditions combine).
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only events of jobs of this alias.
    #[arg(long)]
    alias: Option<String>,
    /// Only events of jobs in this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Only events of this job.
    #[arg(long, value_name = "ID")]
    job: Option<String>,
    /// Only events of this batch (and its `batch.done`).
    #[arg(long, value_name = "ID")]
    batch: Option<String>,
    /// Only these event types, comma-separated: names (`job.failed`) or
    /// families (`job`, `batch`, `worker`, `node`).
    #[arg(long, value_name = "TYPES")]
    types: Option<String>,
}

impl WatchArgs {
    fn query(&self) -> String {
        let pairs = [
            ("alias", &self.alias),
            ("queue", &self.queue),
            ("job", &self.job),
            ("batch", &self.batch),
            ("types", &self.types),
        ];
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        query.finish()
    }
}

/// Longest pause between reconnections.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub(super) async fn run(client: &Client, args: WatchArgs) -> Outcome {
    use std::io::IsTerminal;
    let path = format!("/v1/events?{}", args.query());
    let mut board = (!client.json && std::io::stdout().is_terminal()).then(Board::new);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut last_id: Option<String> = None;
    let mut backoff = Duration::from_millis(250);
    // One Ctrl-C listener for the whole watch, listening from its first
    // poll on: a `ctrl_c()` made anew for each wait would miss a Ctrl-C that
    // comes between two waits (while an event is applied or a frame drawn).
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        let mut request = client.stream_request(&path);
        if let Some(id) = &last_id {
            request = request.header("last-event-id", id);
        }
        let opened = tokio::select! {
            opened = client.open(request) => opened,
            _ = &mut interrupt => return Ok(()),
        };
        let dropped = match opened {
            Ok(response) => {
                backoff = Duration::from_millis(250);
                let mut events = response.bytes_stream().eventsource();
                loop {
                    let event = tokio::select! {
                        event = events.next() => event,
                        _ = tick.tick() => {
                            if let Some(board) = &mut board {
                                board.draw();
                            }
                            continue;
                        }
                        _ = &mut interrupt => return Ok(()),
                    };
                    match event {
                        None => break "the server closed the stream".to_string(),
                        Some(Err(EventStreamError::Transport(e))) => match client.transport(&e) {
                            Failure::Other(reason) => break reason,
                            other => return Err(other),
                        },
                        Some(Err(e)) => {
                            return Err(Failure::other(format!("the event stream is malformed: {e}")));
                        }
                        Some(Ok(event)) => {
                            if !event.id.is_empty() {
                                last_id = Some(event.id.clone());
                            }
                            match &mut board {
                                Some(board) => board.apply(&event.event, &event.data),
                                None => show(client.json, &event.event, &event.data),
                            }
                        }
                    }
                }
            }
            // Refusals (bad filter, no scope) end the command; an unreachable
            // server is tried again, as a dropped stream is.
            Err(Failure::Other(reason)) if last_id.is_some() => reason,
            Err(e) => return Err(e),
        };
        eprintln!("note: {dropped}; reconnecting in {}", humantime::format_duration(backoff));
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = &mut interrupt => return Ok(()),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Jobs the terminal table shows (the latest to change).
const BOARD_ROWS: usize = 20;

/// The table `jobs watch` keeps on a terminal: the latest jobs, one row
/// each, and the latest batch, worker and node events below.
struct Board {
    rows: Vec<BoardRow>,
    notes: Vec<String>,
    ended: std::collections::BTreeMap<String, u64>,
    changed: bool,
    colour: bool,
}

struct BoardRow {
    job: String,
    subject: String,
    status: String,
    attempt: u64,
    detail: String,
    at: String,
}

impl Board {
    fn new() -> Board {
        let colour = super::output::colour_wanted();
        Board { rows: Vec::new(), notes: Vec::new(), ended: Default::default(), changed: true, colour }
    }

    fn apply(&mut self, event: &str, data: &str) {
        let Ok(v) = serde_json::from_str::<Value>(data) else { return };
        self.changed = true;
        let Some(job) = v["job"].as_str() else {
            let note =
                if event == "lagged" { "(some events were missed)".to_string() } else { line(event, &v) };
            self.notes.insert(0, note);
            self.notes.truncate(3);
            return;
        };
        let status = match event {
            "job.queued" => v["status"].as_str().unwrap_or("queued"),
            "job.started" | "job.progress" | "job.log" => "running",
            other => other.trim_start_matches("job."),
        };
        if matches!(event, "job.succeeded" | "job.failed" | "job.dead" | "job.cancelled") {
            *self.ended.entry(status.to_string()).or_default() += 1;
        }
        let detail = match event {
            "job.progress" => format!("{}% {}", v["percent"], v["message"].as_str().unwrap_or("")),
            "job.log" => {
                format!("[{}] {}", v["level"].as_str().unwrap_or(""), v["message"].as_str().unwrap_or(""))
            }
            "job.failed" | "job.dead" => {
                format!("{}: {}", v["error"].as_str().unwrap_or(""), v["message"].as_str().unwrap_or(""))
            }
            "job.succeeded" => format!("{} ms", v["duration_ms"]),
            _ => String::new(),
        };
        let at = v["at"].as_str().and_then(|a| a.get(11..23)).unwrap_or("").to_string();
        let row = match self.rows.iter().position(|r| r.job == job) {
            Some(i) => self.rows.remove(i),
            None => BoardRow {
                job: job.to_string(),
                subject: format!(
                    "{}@{}",
                    v["alias"].as_str().unwrap_or(""),
                    v["queue"].as_str().unwrap_or("")
                ),
                status: String::new(),
                attempt: 0,
                detail: String::new(),
                at: String::new(),
            },
        };
        let attempt = v["attempt"].as_u64().unwrap_or(row.attempt);
        let detail = if detail.is_empty() { row.detail } else { detail };
        self.rows.insert(0, BoardRow { status: status.to_string(), attempt, detail, at, ..row });
        self.rows.truncate(BOARD_ROWS);
    }

    /// Redraws the table in place if anything changed.
    fn draw(&mut self) {
        if !std::mem::take(&mut self.changed) {
            return;
        }
        let mut table =
            super::output::Table::new(&["AT", "JOB", "ALIAS@QUEUE", "STATUS", "ATTEMPT", "DETAIL"]);
        for r in &self.rows {
            let detail: String = r.detail.chars().take(60).collect();
            table.row([
                r.at.clone(),
                r.job.clone(),
                r.subject.clone(),
                self.paint(&r.status),
                r.attempt.to_string(),
                detail,
            ]);
        }
        let ended: Vec<String> = self.ended.iter().map(|(s, n)| format!("{n} {s}")).collect();
        // Home, clear, then the table: one write, so the terminal never shows half.
        let mut screen = format!(
            "\x1b[H\x1b[2Jwasmq jobs watch  (Ctrl-C to stop)  ended since start: {}\n\n{table}",
            ended.join(", ")
        );
        for note in &self.notes {
            screen.push_str(&format!("\n{note}"));
        }
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(screen.as_bytes());
        let _ = out.flush();
    }

    fn paint(&self, status: &str) -> String {
        super::output::paint_status(status, self.colour)
    }
}

/// Prints one event: its data as a JSON line, or a line for people.
fn show(json: bool, event: &str, data: &str) {
    if json {
        println!("{data}");
        return;
    }
    let Ok(v) = serde_json::from_str::<Value>(data) else {
        println!("{event} {data}");
        return;
    };
    if event == "lagged" {
        match v["missed"].as_u64() {
            Some(n) => eprintln!("note: {n} events were dropped before they could be shown"),
            None => eprintln!("note: events since the last one shown may be missing (the server restarted?)"),
        }
        return;
    }
    println!("{}", line(event, &v));
}

/// `12:00:01.250  job.succeeded  <job>  echo@default  attempt 1, 3 ms`.
pub(super) fn line(event: &str, v: &Value) -> String {
    let s = |key: &str| v[key].as_str().unwrap_or("");
    let at = s("at").get(11..23).unwrap_or("");
    let subject = match event.split_once('.').map(|(family, _)| family) {
        Some("job") => format!("{}  {}@{}", s("job"), s("alias"), s("queue")),
        Some("batch") => format!("batch {}", s("batch")),
        _ => format!("node {}", s("node")),
    };
    let mut detail = Vec::new();
    if let Some(n) = v["attempt"].as_u64() {
        detail.push(format!("attempt {n}"));
    }
    match event {
        "job.queued" => detail.push(format!("{} ({}), due {}", s("status"), s("reason"), s("run_at"))),
        "job.started" => detail.push(format!("on {}", s("node"))),
        "job.progress" => detail.push(format!("{}% {}", v["percent"], s("message"))),
        "job.log" => detail.push(format!("[{}] {}", s("level"), s("message"))),
        "worker.started" | "worker.stopped" | "node.joined" | "node.lost" => {
            detail.push(format!("{} on {}, {} slots", s("role"), s("host"), v["slots"]))
        }
        _ => {}
    }
    if let Some(ms) = v["duration_ms"].as_u64() {
        detail.push(format!("{ms} ms"));
    }
    if !s("error").is_empty() {
        detail.push(format!("{}: {}", s("error"), s("message")));
    }
    if !s("retry_at").is_empty() {
        detail.push(format!("retry at {}", s("retry_at")));
    }
    format!("{at}  {event:<14} {subject}  {}", detail.join(", ")).trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_event_is_one_readable_line() {
        let v = json!({"type": "job.failed", "at": "2026-12-03T10:00:01.250Z", "job": "j1", "alias": "echo",
            "queue": "default", "attempt": 1, "error": "plugin_error", "message": "boom", "duration_ms": 3,
            "retry_at": "2026-12-03T10:00:02.000Z"});
        assert_eq!(
            line("job.failed", &v),
            "10:00:01.250  job.failed     j1  echo@default  attempt 1, 3 ms, plugin_error: boom, retry at \
             2026-12-03T10:00:02.000Z"
        );
        let node = json!({"at": "2026-12-03T10:00:01.250Z", "node": "n1", "role": "worker", "host": "h", "slots": 4});
        assert_eq!(line("node.lost", &node), "10:00:01.250  node.lost      node n1  worker on h, 4 slots");
    }
}
