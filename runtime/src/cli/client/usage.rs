//! `wasmq usage`: usage per tenant per UTC day (`GET /v1/usage`), a row per
//! day and a total per tenant.

use clap::Args;
use std::collections::BTreeMap;

use super::ClientOpts;
use super::http::{Client, Outcome};
use super::output::Table;
use crate::api::{UsageDay, UsageReport};
use crate::domain::{Day, TenantId};

/// Arguments of `wasmq usage`.
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// First day (UTC, YYYY-MM-DD), included [default: the first day of --to's month].
    #[arg(long, value_parser = day)]
    pub from: Option<Day>,
    /// Last day (UTC, YYYY-MM-DD), included; at most 366 days after --from [default: today].
    #[arg(long, value_parser = day)]
    pub to: Option<Day>,
    /// Only this tenant (the operator token sees every tenant without it;
    /// a tenant's token sees only its own).
    #[arg(long, value_parser = tenant)]
    pub tenant: Option<TenantId>,
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,
}

fn day(s: &str) -> Result<Day, String> {
    Day::parse(s).ok_or_else(|| format!("{s:?} is not a date YYYY-MM-DD from 1970-01-01 to 9999-12-31"))
}

fn tenant(s: &str) -> Result<TenantId, String> {
    TenantId::parse(s).map_err(|e| e.to_string())
}

/// The request's query string.
fn query(args: &UsageArgs) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(from) = args.from {
        q.append_pair("from", &from.to_string());
    }
    if let Some(to) = args.to {
        q.append_pair("to", &to.to_string());
    }
    if let Some(t) = &args.tenant {
        q.append_pair("tenant", t.as_str());
    }
    q.finish()
}

pub(super) async fn run(client: &Client, args: UsageArgs) -> Outcome {
    let reply = client.get(&format!("/v1/usage?{}", query(&args))).await?;
    if client.json {
        reply.print_raw();
        return Ok(());
    }
    let report: UsageReport = reply.parse()?;
    println!("usage from {} to {} (UTC days)", report.from, report.to);
    if report.days.is_empty() {
        println!("no usage in this range");
        return Ok(());
    }
    let headers = [
        "TENANT",
        "DAY",
        "RUNS",
        "SUCCEEDED",
        "FAILED",
        "DEAD",
        "CANCELLED",
        "TIMED_OUT",
        "FUEL",
        "RUN_MS",
        "MODULE_BYTES",
        "CALLBACKS_OK/SENT",
    ];
    let mut table = Table::new(&headers).right_align(&(2..headers.len()).collect::<Vec<_>>());
    let mut totals: BTreeMap<String, UsageDay> = BTreeMap::new();
    for d in &report.days {
        table.row(cells(&d.tenant, &d.day, d, Some(d.module_bytes_max)));
        let total = totals.entry(d.tenant.clone()).or_insert_with(|| zero(d));
        add(total, d);
    }
    for (tenant, t) in &totals {
        table.row(cells(tenant, "total", t, None));
    }
    table.print();
    Ok(())
}

/// A row: the day's most module bytes, or none (a total: bytes are a gauge, not a sum).
fn cells(tenant: &str, day: &str, d: &UsageDay, module_bytes: Option<u64>) -> Vec<String> {
    let mut row = vec![tenant.to_string(), day.to_string()];
    let counts = [d.runs, d.succeeded, d.failed, d.dead, d.cancelled, d.timed_out, d.fuel_used, d.run_ms];
    row.extend(counts.iter().map(u64::to_string));
    row.push(module_bytes.map_or("-".into(), |b| b.to_string()));
    row.push(format!("{}/{}", d.callbacks_delivered, d.callbacks_sent));
    row
}

fn zero(d: &UsageDay) -> UsageDay {
    UsageDay {
        tenant: d.tenant.clone(),
        day: String::new(),
        runs: 0,
        succeeded: 0,
        failed: 0,
        dead: 0,
        cancelled: 0,
        timed_out: 0,
        fuel_used: 0,
        run_ms: 0,
        module_bytes_max: 0,
        module_bytes_end: 0,
        callbacks_sent: 0,
        callbacks_delivered: 0,
        kv_writes: 0,
        kv_bytes_max: 0,
        kv_bytes_end: 0,
        http_requests: 0,
        http_bytes_sent: 0,
        http_bytes_received: 0,
    }
}

fn add(total: &mut UsageDay, d: &UsageDay) {
    for (sum, n) in [
        (&mut total.runs, d.runs),
        (&mut total.succeeded, d.succeeded),
        (&mut total.failed, d.failed),
        (&mut total.dead, d.dead),
        (&mut total.cancelled, d.cancelled),
        (&mut total.timed_out, d.timed_out),
        (&mut total.fuel_used, d.fuel_used),
        (&mut total.run_ms, d.run_ms),
        (&mut total.callbacks_sent, d.callbacks_sent),
        (&mut total.callbacks_delivered, d.callbacks_delivered),
        (&mut total.kv_writes, d.kv_writes),
        (&mut total.http_requests, d.http_requests),
        (&mut total.http_bytes_sent, d.http_bytes_sent),
        (&mut total.http_bytes_received, d.http_bytes_received),
    ] {
        *sum = sum.saturating_add(n);
    }
}
