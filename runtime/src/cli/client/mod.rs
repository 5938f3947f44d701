//! The client commands (`push`, `alias`, `modules`, `dispatch`, `jobs`,
//! `batch`, `status`, `usage`, and the operator's `tenant`, `token` and `key`): a
//! thin layer over the HTTP API of a running `wasmq serve`. They authenticate
//! with a bearer token, or sign each request with a signing key ([`signer`]).
//!
//! Every command prints a human view by default (`-o table`), the server's
//! JSON with `-o json` (or `--json`), and JSON Lines with `-o jsonl` (a list
//! one item per line, for `jq -c`, `grep` and line-by-line scripts); API
//! errors show the HTTP status, the server's error code and its
//! own message: `error (409 idempotency_conflict): ...`.

mod alias;
mod alias_secret;
mod apply;
mod batch;
mod digest;
mod dispatch;
mod follow;
mod http;
mod job_run;
mod jobs;
mod key;
mod kv;
mod model;
mod modules;
mod nodes;
mod output;
mod push;
mod queue;
mod quota;
mod schedule;
mod signer;
mod status;
mod tenant;
mod token;
mod units;
mod usage;
mod watch;

pub use alias::{AliasArgs, AliasCommand};
pub use apply::ApplyArgs;
pub use batch::{BatchArgs, BatchCommand};
pub use dispatch::{DispatchArgs, JobFlags};
pub use jobs::{JobsArgs, JobsCommand, OrderArg};
pub use key::{KeyArgs, KeyCommand};
pub use kv::{KvArgs, KvCommand};
pub use modules::{ModulesArgs, ModulesCommand};
pub use nodes::NodesArgs;
pub use push::PushArgs;
pub use queue::{QueueArgs, QueueCommand};
pub use quota::{Limit, QuotaFlags};
pub use schedule::{ScheduleArgs, ScheduleCommand};
pub use status::StatusArgs;
pub use tenant::{TenantArgs, TenantCommand};
pub use token::{TokenArgs, TokenCommand};
pub use usage::UsageArgs;

use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use http::{Client, Failure};

/// Exit codes of the client commands.
pub mod exit {
    /// The command succeeded.
    pub const SUCCESS: u8 = 0;
    /// The API answered with an error, the server could not be reached, or a
    /// local check failed (unreadable file, invalid JSON).
    pub const ERROR: u8 = 1;
    /// The command line was malformed (clap's own code).
    pub const USAGE: u8 = 2;
    /// The waited-for job ended dead or cancelled.
    pub const JOB_FAILED: u8 = 3;
    /// Ctrl-C stopped a wait (128 + SIGINT, as a shell reports it); the job goes on.
    pub const INTERRUPTED: u8 = 130;
}

/// Exit codes shown in the help of the commands that wait for a job.
pub(crate) const WAIT_EXIT_CODES_HELP: &str = "\
Exit codes:
    0  the job succeeded: its result is on stdout
    1  API error (`error (<status> <code>): <message>` on stderr), unreachable
       server, or invalid input (the reason is on stderr)
    2  usage error
    3  the job ended dead or cancelled: `error (<kind>): <message>` is on stderr
  130  interrupted (Ctrl-C): the job goes on; stderr says how to wait again";

/// Where the server is and how to authenticate; shared by every client command.
#[derive(Debug, Clone, Args)]
pub struct ClientOpts {
    /// URL of the wasmq server.
    #[arg(long, global = true, env = "WASMQ_URL", default_value = "http://127.0.0.1:7700")]
    pub server: String,

    /// Read the bearer token from this file (the token itself is otherwise
    /// taken from `WASMQ_TOKEN`, or for `tenant`, `token` and `key` from
    /// `WASMQ_OPERATOR_TOKEN`; there is no flag for it, so it never shows in
    /// `ps`). Without a token, `WASMQ_KEY_ID` and `WASMQ_SECRET` sign requests.
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Print the server's JSON responses instead of tables (for scripts):
    /// the same as `-o json`.
    #[arg(long, global = true)]
    pub json: bool,

    /// Output: `table` (for people; the default), `json` (the server's
    /// answer as it sent it) or `jsonl` (one JSON value per line: a list's
    /// items each on its own line).
    #[arg(short = 'o', long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

/// What `-o` chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Tables and `key: value` lines.
    Table,
    /// The server's JSON.
    Json,
    /// JSON Lines.
    Jsonl,
}

/// The client subcommands, flattened into the top-level command line.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Upload a module to the server (and point an alias at it).
    Push(PushArgs),
    /// Point names at modules; list, show, roll back and delete them.
    Alias(AliasArgs),
    /// List and delete stored modules.
    Modules(ModulesArgs),
    /// Dispatch a job to an alias (and wait for its result).
    Dispatch(DispatchArgs),
    /// List, show, follow, wait for, cancel and retry jobs; read their logs.
    Jobs(JobsArgs),
    /// Dispatch many jobs at once from a JSON Lines file; show a batch.
    Batch(BatchArgs),
    /// Job counts per status and per queue, and the server's workers.
    Status(StatusArgs),
    /// Operator: create, list, show, change and delete tenants; set their quotas.
    Tenant(Box<TenantArgs>),
    /// Operator: make, list and revoke a tenant's tokens.
    Token(TokenArgs),
    /// Operator: make, list and revoke a tenant's signing keys (for signed requests).
    Key(KeyArgs),
    /// Usage per tenant per UTC day: job outcomes, fuel, run time, module bytes, callbacks.
    Usage(UsageArgs),
    /// Get, set, delete and list keys of the tenant's key-value stores.
    Kv(KvArgs),
    /// The nodes sharing the server's database: role, status, slots, busy
    /// workers, queues, last heartbeat, version (the operator token, or the
    /// `default` tenant's admin token on a server without one).
    Nodes(NodesArgs),
    /// Queues: depth by status, pause and limits; pause, resume and limit
    /// them across the cluster (the operator token, or the `default`
    /// tenant's admin token on a server without one).
    Queue(QueueArgs),
    /// Recurring dispatches: set (cron or interval), list, show with the
    /// next due times, pause, resume and delete schedules.
    Schedule(ScheduleArgs),
    /// Apply a file of modules, aliases, queue limits and schedules: the
    /// plan first, then only what differs (`--dry-run`: the plan alone).
    Apply(ApplyArgs),
}

impl ClientCommand {
    fn opts(&self) -> &ClientOpts {
        match self {
            ClientCommand::Push(a) => &a.client,
            ClientCommand::Alias(a) => &a.client,
            ClientCommand::Modules(a) => &a.client,
            ClientCommand::Dispatch(a) => &a.client,
            ClientCommand::Jobs(a) => &a.client,
            ClientCommand::Batch(a) => &a.client,
            ClientCommand::Status(a) => &a.client,
            ClientCommand::Tenant(a) => &a.client,
            ClientCommand::Token(a) => &a.client,
            ClientCommand::Key(a) => &a.client,
            ClientCommand::Usage(a) => &a.client,
            ClientCommand::Kv(a) => &a.client,
            ClientCommand::Nodes(a) => &a.client,
            ClientCommand::Queue(a) => &a.client,
            ClientCommand::Schedule(a) => &a.client,
            ClientCommand::Apply(a) => &a.client,
        }
    }

    /// Whether the command is the operator's (sends the operator token).
    /// `usage` is either: a tenant's own usage with a tenant's credentials,
    /// and every tenant's with the operator token when no tenant credential
    /// (`--token-file`, `WASMQ_TOKEN`, `WASMQ_KEY_ID`) is given. `nodes` and
    /// `queue` too:
    /// the operator's, or the `default` admin's on a server without one.
    fn operator(&self) -> bool {
        match self {
            ClientCommand::Tenant(_) | ClientCommand::Token(_) | ClientCommand::Key(_) => true,
            ClientCommand::Usage(_) | ClientCommand::Nodes(_) | ClientCommand::Queue(_) => {
                let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
                self.opts().token_file.is_none()
                    && !set("WASMQ_TOKEN")
                    && !set("WASMQ_KEY_ID")
                    && (set("WASMQ_OPERATOR_TOKEN") || set("WASMQ_OPERATOR_TOKEN_FILE"))
            }
            _ => false,
        }
    }
}

/// Runs a client command and returns the process exit code.
pub fn main(command: ClientCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return report(Failure::Other(format!("cannot start the async runtime: {e}")), Hint::None),
    };
    let operator = command.operator();
    let client = match Client::new(command.opts(), operator) {
        Ok(c) => c,
        Err(f) => return report(f, Hint::None),
    };
    let hint = match (client.has_credentials(), operator) {
        (true, _) => Hint::None,
        (false, false) => Hint::Token,
        (false, true) => Hint::OperatorToken,
    };
    let result = runtime.block_on(async {
        match command {
            ClientCommand::Push(a) => push::run(&client, a).await,
            ClientCommand::Alias(a) => alias::run(&client, a).await,
            ClientCommand::Modules(a) => modules::run(&client, a).await,
            ClientCommand::Dispatch(a) => dispatch::run(&client, a).await,
            ClientCommand::Jobs(a) => jobs::run(&client, a).await,
            ClientCommand::Batch(a) => batch::run(&client, a).await,
            ClientCommand::Status(_) => status::run(&client).await,
            ClientCommand::Tenant(a) => tenant::run(&client, *a).await,
            ClientCommand::Token(a) => token::run(&client, a).await,
            ClientCommand::Key(a) => key::run(&client, a).await,
            ClientCommand::Usage(a) => usage::run(&client, a).await,
            ClientCommand::Kv(a) => kv::run(&client, a).await,
            ClientCommand::Nodes(_) => nodes::run(&client).await,
            ClientCommand::Queue(a) => queue::run(&client, a).await,
            ClientCommand::Schedule(a) => schedule::run(&client, a).await,
            ClientCommand::Apply(a) => apply::run(&client, a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(f) => report(f, hint),
    }
}

/// What to suggest on a 401.
#[derive(Clone, Copy)]
enum Hint {
    /// A token or a signature was sent: nothing to suggest.
    None,
    /// No tenant token was configured.
    Token,
    /// No operator token was configured.
    OperatorToken,
}

/// Prints a failure on stderr and picks its exit code.
fn report(failure: Failure, hint: Hint) -> ExitCode {
    match failure {
        Failure::Api { status, code, message } => {
            // `error (<status> <code>): <message>`, like a job's `error (<kind>): ...`;
            // the status's reason phrase stands in when the body had no code.
            let code = code.as_deref().or(status.canonical_reason()).unwrap_or("error");
            eprintln!("error ({} {code}): {message}", status.as_u16());
            match hint {
                _ if status != reqwest::StatusCode::UNAUTHORIZED => {}
                Hint::Token => {
                    eprintln!(
                        "hint: set WASMQ_TOKEN or pass --token-file with the server's token, \
                         or sign requests with WASMQ_KEY_ID and WASMQ_SECRET"
                    )
                }
                Hint::OperatorToken => eprintln!(
                    "hint: tenant, token and key commands need the operator token: set WASMQ_OPERATOR_TOKEN \
                     or pass --token-file"
                ),
                Hint::None => {}
            }
            ExitCode::from(exit::ERROR)
        }
        Failure::Other(message) => {
            eprintln!("error: {message}");
            ExitCode::from(exit::ERROR)
        }
        Failure::JobFailed => ExitCode::from(exit::JOB_FAILED),
        Failure::Interrupted => ExitCode::from(exit::INTERRUPTED),
        Failure::Exit(code) => ExitCode::from(code),
    }
}
