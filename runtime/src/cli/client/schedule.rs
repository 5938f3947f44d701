//! `wasmq schedule`: a tenant's recurring dispatches (`/v1/schedules`).

use clap::{Args, Subcommand, ValueEnum};

use super::ClientOpts;
use super::dispatch::read_payload;
use super::http::{Client, Outcome, segment};
use super::model::{SchedulePage, ScheduleRequest, ScheduleView};
use super::output::{Fields, Table};
use super::units;
use crate::domain::CatchUp;

/// Arguments of `wasmq schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,

    /// What to do.
    #[command(subcommand)]
    pub command: ScheduleCommand,
}

/// `--catch-up` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CatchUpArg {
    /// Missed due times are skipped.
    None,
    /// One job for the latest missed due time.
    One,
    /// A job for every missed due time (the latest 1,000 at most).
    All,
}

impl From<CatchUpArg> for CatchUp {
    fn from(c: CatchUpArg) -> Self {
        match c {
            CatchUpArg::None => CatchUp::None,
            CatchUpArg::One => CatchUp::One,
            CatchUpArg::All => CatchUp::All,
        }
    }
}

/// The `wasmq schedule` subcommands.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create or replace a schedule (the same schedule again changes nothing).
    Set {
        /// The schedule's name.
        name: String,
        /// The alias its jobs run.
        #[arg(long)]
        alias: String,
        /// The payload of every job: JSON, or `-` for stdin (default null).
        #[arg(long)]
        payload: Option<String>,
        /// A cron expression: 5 fields, or 6 with seconds first
        /// (`*/10 * * * * *`).
        #[arg(long, conflicts_with = "every", required_unless_present = "every")]
        cron: Option<String>,
        /// A fixed interval, e.g. `30s`, `5m` (due at its multiples since the Unix epoch).
        #[arg(long, value_name = "DURATION", value_parser = units::millis)]
        every: Option<u64>,
        /// The tz database zone `--cron` is read in (default UTC), e.g. `Europe/Berlin`.
        #[arg(long, requires = "cron")]
        timezone: Option<String>,
        /// Queue of its jobs (default: the alias's).
        #[arg(long)]
        queue: Option<String>,
        /// Priority of its jobs, 0..=1000 (default: the alias's).
        #[arg(long)]
        priority: Option<i64>,
        /// What runs of the due times missed while no node could fire them.
        #[arg(long, value_enum, default_value_t = CatchUpArg::One)]
        catch_up: CatchUpArg,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
    },
    /// The tenant's schedules.
    List,
    /// One schedule and its next due times.
    Show {
        /// The schedule's name.
        name: String,
    },
    /// Stop firing a schedule until it is resumed.
    Pause {
        /// The schedule's name.
        name: String,
    },
    /// Fire a paused schedule again, from now on.
    Resume {
        /// The schedule's name.
        name: String,
    },
    /// Delete a schedule (the jobs it made stay).
    Delete {
        /// The schedule's name.
        name: String,
    },
}

pub(super) async fn run(client: &Client, args: ScheduleArgs) -> Outcome {
    match args.command {
        ScheduleCommand::Set {
            name,
            alias,
            payload,
            cron,
            every,
            timezone,
            queue,
            priority,
            catch_up,
            paused,
        } => {
            let payload = payload.as_deref().map(read_payload).transpose()?;
            let request = ScheduleRequest {
                alias,
                payload,
                cron,
                every_ms: every,
                timezone,
                queue,
                priority,
                enabled: Some(!paused),
                catch_up: Some(catch_up.into()),
            };
            show(client, client.put(&path(&name, ""), &request).await?)
        }
        ScheduleCommand::List => list(client).await,
        ScheduleCommand::Show { name } => show(client, client.get(&path(&name, "")).await?),
        ScheduleCommand::Pause { name } => {
            show(client, client.post::<()>(&path(&name, "/pause"), None).await?)
        }
        ScheduleCommand::Resume { name } => {
            show(client, client.post::<()>(&path(&name, "/resume"), None).await?)
        }
        ScheduleCommand::Delete { name } => {
            client.delete(&path(&name, "")).await?;
            Fields::new().add("schedule", &name).add("deleted", true).print();
            Ok(())
        }
    }
}

fn path(name: &str, action: &str) -> String {
    format!("/v1/schedules/{}{action}", segment(name))
}

fn when(s: &ScheduleView) -> String {
    match (&s.cron, s.every_ms) {
        (Some(cron), _) => match &s.timezone {
            Some(tz) => format!("cron {cron} ({tz})"),
            None => format!("cron {cron}"),
        },
        (None, Some(ms)) => {
            format!("every {}", humantime::format_duration(std::time::Duration::from_millis(ms)))
        }
        (None, None) => "-".into(),
    }
}

fn show(client: &Client, reply: super::http::Reply) -> Outcome {
    if client.json {
        reply.print_raw();
        return Ok(());
    }
    let s: ScheduleView = reply.parse()?;
    let mut fields = Fields::new()
        .add("schedule", &s.name)
        .add("alias", &s.alias)
        .add("when", when(&s))
        .add("enabled", s.enabled)
        .add("catch_up", s.catch_up.as_str())
        .add("payload", s.payload.get());
    if let Some(q) = &s.queue {
        fields = fields.add("queue", q);
    }
    if let Some(p) = s.priority {
        fields = fields.add("priority", p);
    }
    fields = fields.add("next_due", if s.next_due.is_empty() { "-".into() } else { s.next_due.join(", ") });
    if let Some(at) = &s.last_due_at {
        fields = fields.add("last_due_at", at);
    }
    if let Some(id) = &s.last_job_id {
        fields = fields.add("last_job", id);
    }
    if let Some(e) = &s.last_error {
        fields = fields.add("last_error", e);
    }
    fields.print();
    Ok(())
}

async fn list(client: &Client) -> Outcome {
    let mut cursor: Option<String> = None;
    let mut table = Table::new(&["SCHEDULE", "ALIAS", "WHEN", "ENABLED", "NEXT DUE", "LAST JOB"]);
    let mut any = false;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/schedules?limit=1000&cursor={}", segment(c)),
            None => "/v1/schedules?limit=1000".to_string(),
        };
        let reply = client.get(&path).await?;
        if client.json {
            // One page per line: the pages are the schedules' JSON as sent.
            reply.print_raw();
        }
        let page: SchedulePage = reply.parse()?;
        for s in &page.schedules {
            any = true;
            table.row([
                s.name.clone(),
                s.alias.clone(),
                when(s),
                if s.enabled { "yes".into() } else { "no".into() },
                s.next_due.first().cloned().unwrap_or_else(|| "-".into()),
                s.last_job_id.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if client.json {
        return Ok(());
    }
    if !any {
        eprintln!("no schedules");
        return Ok(());
    }
    table.print();
    Ok(())
}
