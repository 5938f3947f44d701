//! `wasmq status`: job counts per status and per queue, and the workers.

use clap::Args;

use super::ClientOpts;
use super::http::{Client, Outcome};
use super::model::Status;
use super::output::{Fields, Table};
use crate::domain::JobStatus;

/// Arguments of `wasmq status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,
}

pub(super) async fn run(client: &Client) -> Outcome {
    let reply = client.get("/v1/status").await?;
    if client.json {
        reply.print_raw();
        return Ok(());
    }
    let status: Status = reply.parse()?;
    let w = &status.workers;
    Fields::new().add("workers", format!("{} max, {} busy, {} free", w.max, w.busy, w.free)).print();

    // Known statuses in lifecycle order, then any a newer server adds.
    let mut names: Vec<String> = JobStatus::ALL.iter().map(|s| s.as_str().to_string()).collect();
    for name in status.jobs.keys().chain(status.queues.values().flat_map(|q| q.keys())) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }

    println!();
    let mut by_status = Table::new(&["STATUS", "JOBS"]).right_align(&[1]);
    for name in &names {
        by_status.row([name.clone(), status.jobs.get(name).copied().unwrap_or(0).to_string()]);
    }
    by_status.row(["total".to_string(), status.jobs.values().sum::<u64>().to_string()]);
    by_status.print();

    if status.queues.is_empty() {
        return Ok(());
    }
    println!();
    let headers: Vec<String> =
        std::iter::once("QUEUE".to_string()).chain(names.iter().map(|n| n.to_uppercase())).collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut by_queue = Table::new(&header_refs).right_align(&(1..headers.len()).collect::<Vec<_>>());
    for (queue, counts) in &status.queues {
        let cells = names.iter().map(|n| counts.get(n).copied().unwrap_or(0).to_string());
        by_queue.row(std::iter::once(queue.clone()).chain(cells));
    }
    by_queue.print();
    Ok(())
}
