//! Misbehaving plugins each end with their own typed error, 200 times in a row
//! in one process; afterwards the engine still works, memory is bounded and no
//! run is left in flight.

use crate::support::{engine, err, load, ok_json, rss_bytes, run};
use std::time::Duration;
use tokio::task::JoinSet;
use wasmq::domain::{Limits, RunError};

const ROUNDS: usize = 200;
/// Runs in flight at once, so the rounds also exercise concurrent stores.
const PARALLEL: usize = 4;

struct Case {
    plugin: &'static str,
    payload: &'static str,
    limits: Limits,
    expect: fn(&RunError) -> bool,
}

fn cases() -> Vec<Case> {
    let base = Limits { memory_bytes: 16 << 20, ..Limits::default() };
    vec![
        Case {
            plugin: "infinite-loop",
            payload: "{}",
            limits: Limits { fuel: Some(2_000_000), ..base.clone() },
            expect: |e| matches!(e, RunError::FuelExhausted { used: 2_000_000 }),
        },
        Case {
            plugin: "busy-spin",
            payload: "{}",
            limits: Limits { fuel: None, timeout: Duration::from_millis(20), ..base.clone() },
            expect: |e| matches!(e, RunError::Timeout { after_ms: 20 }),
        },
        Case {
            plugin: "memory-hog",
            payload: "{}",
            limits: base.clone(),
            expect: |e| matches!(e, RunError::MemoryLimit { limit } if *limit == 16 << 20),
        },
        Case {
            plugin: "deep-recursion",
            payload: "{}",
            limits: base.clone(),
            expect: |e| matches!(e, RunError::Trap { message, .. } if message.contains("call stack exhausted")),
        },
        Case {
            plugin: "fail",
            payload: r#"{"mode":"panic"}"#,
            limits: base.clone(),
            expect: |e| matches!(e, RunError::Trap { message, .. } if message.contains("panicked at") && message.contains("boom")),
        },
        Case {
            plugin: "huge-output",
            payload: r#"{"result_bytes": 2000000}"#,
            limits: base.clone(),
            expect: |e| matches!(e, RunError::OutputTooLarge { limit } if *limit == 1 << 20),
        },
        Case {
            plugin: "huge-output",
            payload: r#"{"stdout_bytes": 4000000}"#,
            limits: base.clone(),
            expect: |e| matches!(e, RunError::OutputTooLarge { .. }),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_misbehaving_plugin_fails_with_its_own_error_200_times() {
    let engine = engine();
    let echo = load(&engine, "echo").await;
    let mut rss_after_warmup = 0;
    for case in cases() {
        let plugin = load(&engine, case.plugin).await;
        let mut set = JoinSet::new();
        for round in 0..ROUNDS {
            if set.len() == PARALLEL {
                let (round, e) = set.join_next().await.unwrap().unwrap();
                assert!((case.expect)(&e), "{} round {round}: unexpected {e:?}", case.plugin);
            }
            let (engine, plugin, limits) = (engine.clone(), plugin.clone(), case.limits.clone());
            let payload = case.payload;
            set.spawn(async move {
                let outcome = run(&engine, &plugin, payload, &limits).await;
                (round, err(&outcome).clone())
            });
        }
        while let Some(joined) = set.join_next().await {
            let (round, e) = joined.unwrap();
            assert!((case.expect)(&e), "{} round {round}: unexpected {e:?}", case.plugin);
        }
        // The engine is still fully usable after each kind of failure.
        let outcome = run(&engine, &echo, r#"{"still":"alive"}"#, &Limits::default()).await;
        assert_eq!(ok_json(&outcome), serde_json::json!({"still": "alive"}));
        if rss_after_warmup == 0 {
            rss_after_warmup = rss_bytes();
        }
    }
    assert_eq!(engine.active_runs(), 0, "a run is still in flight");
    // 1,400 runs that each took 16 MiB (or tried to): a leaked store per run
    // would show as gigabytes. Other tests share the process, hence the slack.
    let growth = rss_bytes().saturating_sub(rss_after_warmup);
    assert!(growth < 256 << 20, "resident memory grew by {} MiB", growth >> 20);
}
