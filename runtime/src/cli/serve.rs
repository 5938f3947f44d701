//! `wasmq serve` (the job server: API and workers, or with `--no-workers`
//! the API only) and `wasmq worker` (workers only, no API).

use std::process::ExitCode;

use crate::app::App;
use crate::config::{SecretEnv, ServeArgs, Settings};

/// Runs a node: `worker` says whether it is `wasmq worker`.
pub(super) fn main(args: ServeArgs, worker: bool) -> ExitCode {
    let resolved = Settings::resolve(args, SecretEnv::from_process());
    let settings = match resolved.and_then(|s| if worker { s.into_worker() } else { Ok(s) }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let role = settings.role;
        let app = App::build(settings).await?;
        match app.local_addr() {
            Some(addr) => eprintln!("wasmq listening on http://{addr}"),
            None => eprintln!("wasmq worker {} running ({})", app.node_id(), role.as_str()),
        }
        app.run_until_stopped(shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: finishing running jobs");
}
