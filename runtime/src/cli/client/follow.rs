//! `wasmq jobs follow`: a job's life as it happens, over its event stream
//! (`GET /v1/jobs/{id}/events`: `status`, `progress`, then `end` with the job).
//!
//! The stream is parsed by `eventsource-stream` (line endings, multi-line
//! data, comments and keep-alives as the SSE specification has them).

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde::Deserialize;

use super::dispatch;
use super::http::{Client, Failure, Outcome, Reply, segment};
use super::model::Job;
use crate::domain::JobStatus;

/// Data of a `status` event.
#[derive(Deserialize)]
struct StatusEvent {
    status: JobStatus,
    attempt: u32,
}

/// Data of a `progress` event.
#[derive(Deserialize)]
struct ProgressEvent {
    percent: u8,
    message: String,
}

/// Prints each event of job `id` as it comes (a line each; with `--json`, the
/// event as a JSON line), then ends as `jobs wait` does: the result on stdout,
/// or the error on stderr and [`Failure::JobFailed`].
pub(super) async fn run(client: &Client, id: &str) -> Outcome {
    let request = client.stream_request(&format!("/v1/jobs/{}/events", segment(id)));
    let mut events = client.open(request).await?.bytes_stream().eventsource();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| match e {
            EventStreamError::Transport(e) => client.transport(&e),
            other => Failure::other(format!("the event stream of job {id} is malformed: {other}")),
        })?;
        if client.json {
            let data: serde_json::Value = parse(id, &event)?;
            println!("{}", serde_json::json!({ "event": event.event, "data": data }));
        }
        match event.event.as_str() {
            "status" => {
                let s: StatusEvent = parse(id, &event)?;
                if !client.json {
                    match s.attempt {
                        0 => println!("status: {}", s.status.as_str()),
                        n => println!("status: {} (attempt {n})", s.status.as_str()),
                    }
                }
            }
            "progress" => {
                let p: ProgressEvent = parse(id, &event)?;
                if !client.json {
                    println!("progress: {:>3}% {}", p.percent, p.message);
                }
            }
            "end" => {
                let job: Job = parse(id, &event)?;
                if client.json {
                    return match job.status {
                        JobStatus::Succeeded => Ok(()),
                        _ => Err(dispatch::report_error(&job)),
                    };
                }
                return dispatch::report_end(
                    client,
                    &Reply { status: StatusCode::OK, body: event.data },
                    &job,
                );
            }
            // Events a newer server adds.
            _ => {}
        }
    }
    Err(Failure::other(format!(
        "the event stream of job {id} closed before the job ended (is the server shutting down?); \
         `wasmq jobs follow {id}` picks it up again"
    )))
}

fn parse<T: serde::de::DeserializeOwned>(id: &str, event: &Event) -> Outcome<T> {
    serde_json::from_str(&event.data).map_err(|e| {
        Failure::other(format!(
            "unexpected `{}` event on job {id}'s stream ({e}): {}",
            event.event, event.data
        ))
    })
}
