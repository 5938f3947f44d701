//! Test fixture: counts its own runs in global state and reports the count.
//! In a sandbox with a fresh store per job the answer is always `{"runs": 1}`,
//! and the `job_info` the host gave it.

use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

static RUNS: AtomicU64 = AtomicU64::new(0);
static mut SCRATCH: Vec<u8> = Vec::new();

fn run(_input: Value) -> Result<Value, wasmq_plugin::Error> {
    let runs = RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    // A growing global buffer: leaks across jobs if an instance were reused.
    #[allow(static_mut_refs, unsafe_code)]
    let scratch_len = unsafe {
        SCRATCH.extend_from_slice(&[1u8; 4096]);
        SCRATCH.len()
    };
    let job = wasmq_plugin::job_info();
    Ok(json!({
        "runs": runs,
        "scratch_len": scratch_len,
        "job": { "id": job.id, "alias": job.alias, "attempt": job.attempt, "tenant": job.tenant },
    }))
}

wasmq_plugin::plugin!(run);
