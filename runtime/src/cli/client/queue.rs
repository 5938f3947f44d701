//! `wasmq queue`: the queues with their depth, pause and limits; pausing,
//! resuming and limiting them is for whoever runs the cluster (the operator
//! token, or the `default` tenant's admin token on a server without one).

use clap::{Args, Subcommand};
use std::time::Duration;

use super::ClientOpts;
use super::http::{Client, Outcome, segment};
use super::model::{QueueList, QueueView};
use super::output::{Fields, Table};
use crate::domain::{QueueLimits, Rate};

/// Arguments of `wasmq queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,

    /// What to do.
    #[command(subcommand)]
    pub command: QueueCommand,
}

/// The `wasmq queue` subcommands.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Every queue with unfinished jobs or with controls set: depth by
    /// status, paused, limits.
    List,
    /// Pause a queue on every node: its jobs are accepted, none starts.
    Pause {
        /// The queue.
        name: String,
    },
    /// Resume a paused queue on every node.
    Resume {
        /// The queue.
        name: String,
    },
    /// Set a queue's limits across the cluster; they replace the ones it
    /// had (no flag: no limits).
    Limit {
        /// The queue.
        name: String,
        /// Most of its jobs running at once on all nodes (0 holds them).
        #[arg(long, value_name = "N")]
        concurrency: Option<u64>,
        /// Most of its jobs started per window on all nodes: `100/s`,
        /// `5/min`, `20/500ms`.
        #[arg(long, value_name = "MAX/WINDOW", value_parser = parse_rate)]
        rate: Option<Rate>,
        /// With `--rate`: most jobs started at once after a quiet spell
        /// (default: a tenth of MAX, at least 1).
        #[arg(long, value_name = "N", requires = "rate")]
        burst: Option<u64>,
    },
}

/// `MAX/WINDOW`: a count and a duration (`s`, `min`, `h` alone mean one of
/// them).
pub(super) fn parse_rate(s: &str) -> Result<Rate, String> {
    let (max, per) = s.split_once('/').ok_or_else(|| format!("expected MAX/WINDOW like 100/s, got {s:?}"))?;
    let max: u64 =
        max.trim().parse().map_err(|_| format!("the rate's count must be a whole number, got {max:?}"))?;
    let per = per.trim();
    let window = match per {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        other => humantime::parse_duration(other).map_err(|e| format!("the rate's window {other:?}: {e}"))?,
    };
    let per_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    let rate = Rate { max, per_ms, burst: None };
    QueueLimits { concurrency: None, rate: Some(rate) }.validate()?;
    Ok(rate)
}

pub(super) async fn run(client: &Client, args: QueueArgs) -> Outcome {
    match args.command {
        QueueCommand::List => list(client).await,
        QueueCommand::Pause { name } => show(client, client.post::<()>(&path(&name, "pause"), None).await?),
        QueueCommand::Resume { name } => show(client, client.post::<()>(&path(&name, "resume"), None).await?),
        QueueCommand::Limit { name, concurrency, rate, burst } => {
            let limits = QueueLimits { concurrency, rate: rate.map(|r| Rate { burst, ..r }) };
            show(client, client.put(&path(&name, "limits"), &limits).await?)
        }
    }
}

fn path(name: &str, action: &str) -> String {
    format!("/v1/queues/{}/{action}", segment(name))
}

pub(super) fn describe(limits: &QueueLimits) -> String {
    let mut parts = Vec::new();
    if let Some(n) = limits.concurrency {
        parts.push(format!("concurrency {n}"));
    }
    if let Some(r) = limits.rate {
        let per = humantime::format_duration(Duration::from_millis(r.per_ms));
        parts.push(format!("rate {}/{per} (burst {})", r.max, r.capacity()));
    }
    if parts.is_empty() { "none".into() } else { parts.join(", ") }
}

fn show(client: &Client, reply: super::http::Reply) -> Outcome {
    if client.json {
        reply.print_raw();
        return Ok(());
    }
    let q: QueueView = reply.parse()?;
    let fields = Fields::new()
        .add("queue", &q.name)
        .add("paused", q.paused)
        .add("limits", describe(&q.limits))
        .add("queued", q.depth.queued)
        .add("scheduled", q.depth.scheduled)
        .add("retrying", q.depth.retrying)
        .add("running", q.depth.running);
    print!("{fields}");
    Ok(())
}

async fn list(client: &Client) -> Outcome {
    let reply = client.get("/v1/queues").await?;
    if client.json {
        reply.print_raw();
        return Ok(());
    }
    let list: QueueList = reply.parse()?;
    if list.queues.is_empty() {
        eprintln!("no queue has unfinished jobs or controls set");
        return Ok(());
    }
    let mut table = Table::new(&["QUEUE", "PAUSED", "QUEUED", "SCHEDULED", "RETRYING", "RUNNING", "LIMITS"])
        .right_align(&[2, 3, 4, 5]);
    for q in list.queues {
        table.row([
            q.name,
            if q.paused { "yes".into() } else { "no".into() },
            q.depth.queued.to_string(),
            q.depth.scheduled.to_string(),
            q.depth.retrying.to_string(),
            q.depth.running.to_string(),
            describe(&q.limits),
        ]);
    }
    table.print();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_count_per_window() {
        assert_eq!(parse_rate("100/s").unwrap(), Rate { max: 100, per_ms: 1000, burst: None });
        assert_eq!(parse_rate("5/min").unwrap(), Rate { max: 5, per_ms: 60_000, burst: None });
        assert_eq!(parse_rate("20/500ms").unwrap(), Rate { max: 20, per_ms: 500, burst: None });
        assert!(parse_rate("100").unwrap_err().contains("MAX/WINDOW"));
        assert!(parse_rate("0/s").unwrap_err().contains("rate.max"));
        assert!(parse_rate("1/2days").unwrap_err().contains("rate.per_ms"));
        assert!(parse_rate("x/s").is_err());
    }
}
