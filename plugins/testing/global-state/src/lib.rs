//! Test fixture: counts its own runs in global state and reports the count.
//! In a sandbox with a fresh store per job the answer is always `{"runs": 1}`,
//! and the `job_info` the host gave it. It also grows its memory by a page,
//! reports whether that page reads as zeros, and then dirties it: a page a
//! previous run wrote must come back zeroed (the host's pool resets only the
//! pages it finds written; this checks it finds them).

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
    let grown_page_zero = grow_and_dirty_a_page();
    let job = wasmq_plugin::job_info();
    Ok(json!({
        "runs": runs,
        "scratch_len": scratch_len,
        "grown_page_zero": grown_page_zero,
        "job": { "id": job.id, "alias": job.alias, "attempt": job.attempt, "tenant": job.tenant },
    }))
}

/// Grows linear memory by one page (the allocator never hands it out: it
/// grows memory itself and uses only what its own calls return), checks that
/// it is all zeros, then fills it.
#[cfg(target_arch = "wasm32")]
fn grow_and_dirty_a_page() -> bool {
    const PAGE: usize = 65536;
    let before = core::arch::wasm32::memory_grow(0, 1);
    if before == usize::MAX {
        return false;
    }
    // SAFETY: the page at `before * PAGE` was just added to this module's
    // memory and nothing else refers to it.
    #[allow(unsafe_code)]
    let page = unsafe { std::slice::from_raw_parts_mut((before * PAGE) as *mut u8, PAGE) };
    let zero = page.iter().all(|b| *b == 0);
    page.fill(0xAA);
    zero
}

#[cfg(not(target_arch = "wasm32"))]
fn grow_and_dirty_a_page() -> bool {
    true
}

wasmq_plugin::plugin!(run);
