//! `wasmq jobs run <id>`: a stored job run here, to debug it on a laptop.
//! The job's module (by its pinned digest), payload and limits come from the
//! server, and the alias's configuration values; then it runs exactly as
//! `wasmq run` runs a file: same sandbox, same console output, same exit
//! codes. Nothing goes back to the server: the job and its queue are left as
//! they are. Secrets are write-only on the server, so a plugin that reads
//! one gets none here (pass it with `wasmq run --secret`).

use clap::Parser;
use reqwest::StatusCode;
use std::collections::BTreeMap;

use super::http::{Client, Failure, Outcome, segment};
use super::model::{Alias, Job};
use super::output::short_digest;
use crate::cli::RunArgs;

/// Overrides of the job's own limits.
#[derive(Debug, Default, clap::Args)]
pub struct RunOverrides {
    /// Fuel instead of the job's (a number, or `unlimited`).
    #[arg(long, value_name = "N")]
    pub fuel: Option<String>,
    /// Wall-clock limit instead of the job's, e.g. `5s`, `2m`.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Memory limit instead of the job's, e.g. `64MiB`.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Directory for compiled artifacts (as `wasmq run --cache-dir`).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<std::path::PathBuf>,
}

/// `wasmq run`'s arguments, parsed as that command parses them.
#[derive(Parser)]
#[command(name = "wasmq jobs run")]
struct AsRun {
    #[command(flatten)]
    run: RunArgs,
}

/// Fetches job `id`'s module and payload, runs it here and returns the exit
/// code of `wasmq run` as a [`Failure::Exit`] unless it succeeded.
pub(super) async fn run(client: &Client, id: &str, overrides: RunOverrides) -> Outcome {
    let job: Job = client.get(&format!("/v1/jobs/{}", segment(id))).await?.parse()?;
    let bytes = client.get_bytes(&format!("/v1/modules/{}/wasm", segment(&job.module))).await?;
    // Its plugins read the alias's configuration values as they are now,
    // as a retry on the server would.
    let config: BTreeMap<String, String> =
        match client.get(&format!("/v1/aliases/{}", segment(&job.alias))).await {
            Ok(reply) => reply.parse::<Alias>()?.config.config,
            Err(Failure::Api { status: StatusCode::NOT_FOUND, .. }) => {
                eprintln!("note: alias {} is gone: the run gets no configuration values", job.alias);
                BTreeMap::new()
            }
            Err(e) => return Err(e),
        };
    let dir =
        tempfile::tempdir().map_err(|e| Failure::other(format!("cannot make a temp directory: {e}")))?;
    let file = dir.path().join("module.wasm");
    std::fs::write(&file, &bytes)
        .map_err(|e| Failure::other(format!("cannot write {}: {e}", file.display())))?;
    let limits = &job.limits;
    let fuel = overrides.fuel.unwrap_or_else(|| limits.fuel.map_or("unlimited".into(), |f| f.to_string()));
    let timeout = overrides.timeout.unwrap_or_else(|| format!("{}ms", limits.timeout_ms));
    let memory = overrides.memory.unwrap_or_else(|| format!("{}B", limits.memory_bytes));
    eprintln!(
        "running job {} here: alias {}, module {}, attempt {} of {} on the server ({}), fuel {fuel}, timeout {timeout}, memory {memory}",
        job.id,
        job.alias,
        short_digest(&job.module),
        job.attempt,
        job.max_attempts,
        job.status.as_str(),
    );
    let mut argv: Vec<String> = vec![
        "wasmq jobs run".into(),
        file.display().to_string(),
        job.payload.get().to_string(),
        format!("--fuel={fuel}"),
        format!("--timeout={timeout}"),
        format!("--memory={memory}"),
        format!("--max-result={}B", limits.max_result_bytes),
    ];
    argv.extend(config.iter().map(|(k, v)| format!("--config={k}={v}")));
    if let Some(dir) = &overrides.cache_dir {
        argv.push(format!("--cache-dir={}", dir.display()));
    }
    if client.json {
        argv.push("--json".into());
    }
    let args = AsRun::try_parse_from(&argv).map_err(|e| Failure::other(e.to_string()))?.run;
    match crate::cli::run::run(args).await {
        0 => Ok(()),
        code => Err(Failure::Exit(code)),
    }
}
