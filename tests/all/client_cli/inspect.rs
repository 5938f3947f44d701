//! Looking into what ran: a job's logs and output, a batch, the stored
//! modules; and limits given in units.

use super::{field, job_line, ok, ok_json, push, row, stderr, stdout, wasmq};
use crate::server::{Options, spawn_app};
use serde_json::Value;

#[tokio::test]
async fn jobs_show_and_logs_print_what_a_plugin_logged_and_printed() {
    let app = spawn_app(Options::default()).await;
    push(&app, "huge-output", "out").await;
    push(&app, "log-spam", "spam").await;
    push(&app, "hello-command", "hello").await;

    let out = wasmq(&app, &["dispatch", "out", r#"{"stdout_bytes": 2048}"#, "--wait"]).await;
    assert_eq!(ok(&out), "\"\"\n");
    let id = job_line(&stderr(&out));
    let line = "x".repeat(1023);
    let show = ok(&wasmq(&app, &["jobs", "show", &id]).await);
    assert_eq!(field(&show, "status"), "succeeded");
    assert!(show.ends_with(&format!("\nstdout:\n  {line}\n  {line}\n")), "{show}");
    // `--stdout` gives the output as the plugin printed it, for a pipe.
    assert_eq!(ok(&wasmq(&app, &["jobs", "logs", &id, "--stdout"]).await), format!("{line}\n{line}\n"));
    assert_eq!(ok(&wasmq(&app, &["jobs", "logs", &id, "--stderr"]).await), "");
    let logs = ok_json(&wasmq(&app, &["jobs", "logs", &id, "--json"]).await);
    assert_eq!(
        (logs["stdout"]["truncated"].as_bool(), logs["log"].as_array().map(Vec::len)),
        (Some(false), Some(0))
    );

    let out = wasmq(&app, &["dispatch", "spam", r#"{"iterations": 2}"#, "--wait"]).await;
    let id = job_line(&stderr(&out));
    assert_eq!(ok(&wasmq(&app, &["jobs", "logs", &id]).await), "log:\n  DEBUG\n  DEBUG\n");

    // A command that fails: its stderr says why.
    let out = wasmq(&app, &["dispatch", "hello", r#"{"nom": "x"}"#, "--max-attempts", "1", "--wait"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let id = job_line(&stderr(&out));
    let show = ok(&wasmq(&app, &["jobs", "show", &id]).await);
    assert!(show.contains("\nstderr:\n  payload needs a string field \"name\"\n"), "{show}");
    let logs = ok(&wasmq(&app, &["jobs", "logs", &id]).await);
    assert_eq!(logs, "stderr:\n  payload needs a string field \"name\"\n");

    // A job that printed nothing says so on stderr, and nothing on stdout.
    let out = wasmq(&app, &["dispatch", "hello", r#"{"name": "y"}"#, "--wait"]).await;
    let id = job_line(&stderr(&out));
    let quiet = wasmq(&app, &["jobs", "logs", &id]).await;
    assert_eq!(ok(&quiet), "");
    assert!(stderr(&quiet).contains("printed nothing"), "{}", stderr(&quiet));
    assert!(field(&ok(&wasmq(&app, &["status"]).await), "workers").starts_with("2 max"));
}

#[tokio::test]
async fn batch_show_and_the_batch_filter_of_jobs_list() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jobs.jsonl");
    let lines: Vec<String> = (0..3).map(|i| format!(r#"{{"alias":"echo","payload":{{"i":{i}}}}}"#)).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let batch = ok_json(&wasmq(&app, &["batch", file.to_str().unwrap(), "--json"]).await);
    let batch_id = batch["id"].as_str().unwrap().to_string();
    // A job outside the batch, which the filter leaves out.
    ok(&wasmq(&app, &["dispatch", "echo", "{}", "--wait"]).await);
    for id in batch["job_ids"].as_array().unwrap() {
        ok(&wasmq(&app, &["jobs", "wait", id.as_str().unwrap()]).await);
    }

    let show = ok(&wasmq(&app, &["batch", "show", &batch_id]).await);
    assert_eq!((field(&show, "id"), field(&show, "total")), (batch_id.clone(), "3".into()));
    assert_eq!(field(&show, "done"), "yes, every job ended");
    assert_eq!(row(&show, "succeeded"), ["succeeded", "3"]);
    let v = ok_json(&wasmq(&app, &["batch", "show", &batch_id, "--json"]).await);
    assert_eq!((v["done"].as_bool(), v["counts"]["succeeded"].as_u64()), (Some(true), Some(3)));

    let page = ok_json(&wasmq(&app, &["jobs", "list", "--batch", &batch_id, "--json"]).await);
    let jobs = page["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3, "{page}");
    assert!(jobs.iter().all(|j| j["batch_id"] == batch_id.as_str()), "{page}");
    let table = ok(&wasmq(&app, &["jobs", "list", "--batch", &batch_id]).await);
    assert_eq!(table.lines().count(), 4, "a header and the batch's jobs: {table}");
    let all = ok_json(&wasmq(&app, &["jobs", "list", "--json"]).await);
    assert_eq!(all["jobs"].as_array().unwrap().len(), 4);

    let out = wasmq(&app, &["batch", "show", "no-such-batch"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error (404 not_found): "), "{}", stderr(&out));
    let out = wasmq(&app, &["batch"]).await;
    assert_eq!(out.status.code(), Some(2), "the file is required: {}", stderr(&out));
    assert!(field(&ok(&wasmq(&app, &["status"]).await), "workers").starts_with("2 max"));
}

#[tokio::test]
async fn modules_list_and_delete_by_short_digest() {
    let app = spawn_app(Options::default()).await;
    let echo = push(&app, "echo", "echo").await;
    let primes =
        ok_json(&wasmq(&app, &["push", &super::plugin("primes"), "--json"]).await)["module"]["digest"]
            .as_str()
            .unwrap()
            .to_string();

    let list = ok(&wasmq(&app, &["modules", "list"]).await);
    assert!(list.starts_with("DIGEST"), "{list}");
    for digest in [&echo, &primes] {
        assert_eq!(row(&list, &digest[..19])[1], "job", "short digests, as every command takes them: {list}");
    }

    // In use by an alias: refused by the server, with its reason.
    let short = &echo["blake3:".len().."blake3:".len() + 8];
    let out = wasmq(&app, &["modules", "delete", short]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error (409 conflict): "), "{}", stderr(&out));

    assert_eq!(ok(&wasmq(&app, &["alias", "delete", "echo"]).await), "deleted alias echo\n");
    let out = wasmq(&app, &["alias", "show", "echo"]).await;
    assert_eq!(stderr(&out), "error (404 not_found): alias echo not found\n");
    assert_eq!(
        ok(&wasmq(&app, &["modules", "delete", &echo[..19]]).await),
        format!("deleted module {echo}\n")
    );
    let left = ok_json(&wasmq(&app, &["modules", "list", "--json"]).await);
    let digests: Vec<&str> = left.as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap()).collect();
    assert_eq!(digests, [primes.as_str()]);

    for (arg, error) in [
        ("deadbeef", "no module's digest starts with deadbeef"),
        ("blake3:1234567", "too short: give at least 8 hex characters"),
        ("not-hex!", "is not a module digest"),
    ] {
        let out = wasmq(&app, &["modules", "delete", arg]).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(error), "{arg}: {}", stderr(&out));
    }
    assert!(field(&ok(&wasmq(&app, &["status"]).await), "workers").starts_with("2 max"));
}

#[tokio::test]
async fn dispatch_takes_limits_in_units() {
    let app = spawn_app(Options::default()).await;
    push(&app, "busy-spin", "spin").await;
    let out =
        wasmq(&app, &["dispatch", "spin", "{}", "--timeout", "50ms", "--max-attempts", "1", "--wait"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("\nerror (timeout): "), "{}", stderr(&out));
    // 2GiB reaches the server as memory_mb=2048, past the engine's ceiling.
    let out = wasmq(&app, &["dispatch", "spin", "{}", "--memory", "2GiB"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error (400 invalid_field): memory_mb must be between 1 and 1024, got 2048\n");
    let out = wasmq(&app, &["dispatch", "spin", "{}", "--delay", "60000"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("add a unit, e.g. 60000s or 60000ms"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(field(&ok(&wasmq(&app, &["status"]).await), "workers").starts_with("2 max"));
}

/// `jobs run` reproduces a job's end here: a plugin error with its message
/// and exit code 10, a fuel budget that ran out with 12 (the job's own fuel,
/// unless overridden), a success with its result; the job on the server is
/// left as it was.
#[tokio::test]
async fn jobs_run_reproduces_a_failed_job_here() {
    let app = spawn_app(Options::default()).await;
    push(&app, "fail", "fail").await;
    push(&app, "infinite-loop", "spin").await;
    push(&app, "echo", "echo").await;

    let out =
        wasmq(&app, &["dispatch", "fail", r#"{"mode": "error"}"#, "--max-attempts", "1", "--wait"]).await;
    let id = job_line(&stderr(&out));
    let (_, before) = app.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(before["status"], "dead");
    let here =
        wasmq(&app, &["jobs", "run", &id, "--cache-dir", app.dir.path().join("cache").to_str().unwrap()])
            .await;
    assert_eq!(here.status.code(), Some(10), "plugin_error: {}", stderr(&here));
    let message = before["error"]["message"].as_str().unwrap();
    assert!(stderr(&here).contains(&format!("error (plugin_error): {message}")), "{}", stderr(&here));
    assert!(stderr(&here).contains(&format!("running job {id} here")), "{}", stderr(&here));
    let (_, after) = app.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(
        (after["status"].clone(), after["attempt"].clone()),
        (before["status"].clone(), before["attempt"].clone())
    );

    let out =
        wasmq(&app, &["dispatch", "spin", "{}", "--fuel", "100000", "--max-attempts", "1", "--wait"]).await;
    let id = job_line(&stderr(&out));
    let here = wasmq(&app, &["jobs", "run", &id]).await;
    assert_eq!(here.status.code(), Some(12), "the job's own fuel ran out: {}", stderr(&here));
    let here = wasmq(&app, &["jobs", "run", &id, "--fuel", "1000", "--json"]).await;
    assert_eq!(here.status.code(), Some(12));
    let outcome: serde_json::Value = serde_json::from_str(&stdout(&here)).unwrap();
    assert_eq!(outcome["error"]["kind"], "fuel_exhausted", "{outcome}");

    let out = wasmq(&app, &["dispatch", "echo", r#"{"b": [1, 2]}"#, "--wait"]).await;
    let id = job_line(&stderr(&out));
    let here = wasmq(&app, &["jobs", "run", &id]).await;
    assert_eq!(ok(&here), "{\"b\":[1,2]}\n");

    let missing = wasmq(&app, &["jobs", "run", "01900000-0000-7000-8000-000000000000"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("not found"), "{}", stderr(&missing));
}

#[tokio::test]
async fn output_formats_table_json_and_json_lines() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    push(&app, "echo", "second").await;
    for n in 0..3 {
        ok(&wasmq(&app, &["dispatch", "echo", &format!(r#"{{"n":{n}}}"#), "--wait"]).await);
    }
    // JSON Lines: one job per line, the page's cursor as a note on stderr.
    let out = wasmq(&app, &["jobs", "list", "--limit", "2", "-o", "jsonl"]).await;
    let lines: Vec<Value> = ok(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{}", ok(&out));
    assert!(lines.iter().all(|j| j["alias"] == "echo" && j["status"] == "succeeded"), "{lines:?}");
    assert!(stderr(&out).contains("note: more follow: --cursor "), "{}", stderr(&out));
    // A plain list: each alias on its line.
    let aliases = ok(&wasmq(&app, &["alias", "list", "-o", "jsonl"]).await);
    let names: Vec<String> = aliases
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["name"].as_str().unwrap().into())
        .collect();
    assert_eq!(names, ["echo", "second"]);
    // -o json is --json: the server's answer as sent; -o table the default view.
    let json = ok(&wasmq(&app, &["jobs", "list", "-o", "json"]).await);
    assert_eq!(json, ok(&wasmq(&app, &["jobs", "list", "--json"]).await));
    assert!(serde_json::from_str::<Value>(&json).unwrap()["jobs"].is_array());
    let table = ok(&wasmq(&app, &["jobs", "list", "-o", "table"]).await);
    assert_eq!(table, ok(&wasmq(&app, &["jobs", "list"]).await));
    let bad = wasmq(&app, &["jobs", "list", "-o", "yaml"]).await;
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("jsonl"), "names the choices: {}", stderr(&bad));
}
