//! Commands watched while they run: on a pseudo-terminal (util-linux `script`
//! gives the command a terminal for stdin, stdout and stderr, and copies what
//! it draws to a pipe), or on pipes, reading their output as it comes.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{field, job_line, ok, ok_json, push, stderr, stdout, wasmq};
use crate::server::{Options, spawn_app};

/// Generous: the output awaited is due within a second or two.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running command whose stdout is read as it comes.
struct Live {
    child: Child,
    input: Option<ChildStdin>,
    chunks: mpsc::Receiver<Vec<u8>>,
    seen: String,
    stderr: std::thread::JoinHandle<String>,
}

impl Live {
    /// `wasmq <args>` with `WASMQ_URL=url`, on pipes.
    fn wasmq(url: &str, args: &[&str]) -> Live {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasmq"));
        command.args(args).env("WASMQ_URL", url).env_remove("WASMQ_TOKEN");
        Live::spawn(command)
    }

    /// `wasmq <args>` with `WASMQ_URL=url`, on a pseudo-terminal.
    fn wasmq_on_tty(url: &str, args: &[&str]) -> Live {
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let line: Vec<String> =
            std::iter::once(env!("CARGO_BIN_EXE_wasmq")).chain(args.iter().copied()).map(quote).collect();
        let mut command = Command::new("script");
        // -q: no banner; -e: its exit code is the command's; -f: copy output at once.
        // `exec`: the shell `script` starts ($SHELL, else /bin/sh) becomes the
        // command. dash would stay as its parent, in the same process group,
        // and die of the Ctrl-C a test types, making the exit code 130
        // whatever the command did (CI runs without $SHELL set).
        command.args(["-q", "-e", "-f", "-c", &format!("exec {}", line.join(" ")), "/dev/null"]);
        command.env("WASMQ_URL", url).env("TERM", "xterm").env_remove("WASMQ_TOKEN");
        Live::spawn(command)
    }

    fn spawn(mut command: Command) -> Live {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let mut out = child.stdout.take().unwrap();
        let (tx, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = out.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Live { input: child.stdin.take(), child, chunks, seen: String::new(), stderr }
    }

    /// Reads until the output so far satisfies `done`; returns it.
    fn until(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(e) => panic!("no {what} ({e:?}); output so far: {:?}", self.seen),
            }
        }
        self.seen.clone()
    }

    /// Types `bytes` (on a terminal, `\x03` is Ctrl-C).
    fn send(&mut self, bytes: &[u8]) {
        let input = self.input.as_mut().expect("stdin open");
        input.write_all(bytes).unwrap();
        input.flush().unwrap();
    }

    /// Waits for the exit; returns it with all of stdout and stderr.
    fn finish(mut self) -> (ExitStatus, String, String) {
        while let Ok(chunk) = self.chunks.recv_timeout(PATIENCE) {
            self.seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        drop(self.input.take());
        let status = self.child.wait().unwrap();
        (status, self.seen, self.stderr.join().unwrap())
    }
}

#[tokio::test]
async fn dispatch_wait_on_a_terminal_shows_the_id_then_a_progress_bar_and_ctrl_c_leaves_the_job() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    let url = app.url.clone();
    let (id, drawn, rest, status) = tokio::task::spawn_blocking(move || {
        // Scheduled an hour ahead: the wait lasts until it is interrupted.
        let mut tty =
            Live::wasmq_on_tty(&url, &["dispatch", "echo", r#"{"n":1}"#, "--delay", "1h", "--wait"]);
        let first = tty.until("`job <id>` line", |s| s.contains('\n'));
        let id = job_line(first.trim_start_matches('\r').replace('\r', "").as_str());
        // The bar shows the job's status once the first long-poll answers.
        let drawn = tty.until("progress bar", |s| s.contains("scheduled"));
        tty.send(b"\x03");
        let (status, all, _) = tty.finish();
        (id, drawn, all, status)
    })
    .await
    .unwrap();
    assert!(drawn.contains('[') && drawn.contains("0%"), "a progress bar on a terminal: {drawn:?}");
    assert!(drawn.contains('\x1b') || drawn.contains("\r"), "redrawn in place: {drawn:?}");
    assert_eq!(status.code(), Some(130), "{rest:?}");
    let hint = format!("interrupted: job {id} goes on; `wasmq jobs wait {id}` waits again");
    assert!(rest.contains(&hint), "{rest:?}");

    // Ctrl-C stopped the wait, not the job; the id is all it takes to act on it.
    let show = ok(&wasmq(&app, &["jobs", "show", &id]).await);
    assert_eq!(field(&show, "status"), "scheduled");
    assert_eq!(field(&ok(&wasmq(&app, &["jobs", "cancel", &id]).await), "status"), "cancelled");
}

#[tokio::test]
async fn dispatch_wait_in_a_pipe_prints_the_id_and_no_bar() {
    let app = spawn_app(Options::default()).await;
    push(&app, "primes", "primes").await;
    let out = wasmq(&app, &["dispatch", "primes", r#"{"limit": 100000}"#, "--wait"]).await;
    assert_eq!(ok(&out), "{\"limit\":100000,\"count\":9592,\"largest\":99991}\n");
    let id = job_line(&stderr(&out));
    assert_eq!(stderr(&out), format!("job {id}\n"), "no bar, no escape codes in a pipe");

    // On a terminal the result is the same, after the id.
    let url = app.url.clone();
    let (status, all, _) = tokio::task::spawn_blocking(move || {
        Live::wasmq_on_tty(&url, &["dispatch", "primes", r#"{"limit": 100000}"#, "--wait"]).finish()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0), "{all:?}");
    assert!(all.starts_with("job "), "{all:?}");
    assert!(all.contains("{\"limit\":100000,\"count\":9592,\"largest\":99991}"), "{all:?}");
}

#[tokio::test]
async fn jobs_follow_prints_each_change_as_it_comes() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    push(&app, "primes", "primes").await;
    let out = ok(&wasmq(&app, &["dispatch", "echo", "{}", "--delay", "1h"]).await);
    let id = field(&out, "id");

    let url = app.url.clone();
    let follow_id = id.clone();
    let mut live = tokio::task::spawn_blocking(move || {
        let mut live = Live::wasmq(&url, &["jobs", "follow", &follow_id]);
        live.until("the first status", |s| s.ends_with("status: scheduled\n"));
        live
    })
    .await
    .unwrap();
    // Another client cancels it; the follower sees it and ends like `jobs wait`.
    assert_eq!(field(&ok(&wasmq(&app, &["jobs", "cancel", &id]).await), "status"), "cancelled");
    let (status, out, err) = tokio::task::spawn_blocking(move || {
        live.until("the cancellation", |s| s.contains("cancelled"));
        live.finish()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(3), "{out}{err}");
    assert_eq!(out, "status: scheduled\nstatus: cancelled\n");
    assert!(err.starts_with("error (cancelled): "), "{err}");

    // A job that already ended: its last status and progress, then the result.
    let out = ok(&wasmq(&app, &["dispatch", "primes", r#"{"limit": 1000}"#, "--wait"]).await);
    assert_eq!(out, "{\"limit\":1000,\"count\":168,\"largest\":997}\n");
    let page = ok_json(&wasmq(&app, &["jobs", "list", "--json", "--alias", "primes"]).await);
    let primes_id = page["jobs"][0]["id"].as_str().unwrap().to_string();
    let out = ok(&wasmq(&app, &["jobs", "follow", &primes_id]).await);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "status: succeeded (attempt 1)", "{out}");
    assert!(lines[1].starts_with("progress: 100% "), "{out}");
    assert_eq!(lines[2..], ["{\"limit\":1000,\"count\":168,\"largest\":997}"]);
    // With --json: one event per line, the job in the last.
    let out = ok(&wasmq(&app, &["jobs", "follow", &primes_id, "--json"]).await);
    let events: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["status", "progress", "end"]);
    assert_eq!(events[2]["data"]["result"]["count"], 168);

    let out = wasmq(&app, &["jobs", "follow", "no-such-job"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error (404 not_found): "), "{}", stderr(&out));
    // The server answers other clients as before.
    assert!(field(&ok(&wasmq(&app, &["status"]).await), "workers").starts_with("2 max"));
}

#[tokio::test]
async fn a_wait_cut_off_by_the_server_leaves_the_job_id_to_wait_again() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    let url = app.url.clone();
    let live = tokio::task::spawn_blocking(move || {
        Live::wasmq(&url, &["dispatch", "echo", r#"{"n":2}"#, "--delay", "1h", "--wait"])
    })
    .await
    .unwrap();
    // The dispatch has no hook to wait on from here: poll the API for the job.
    let deadline = Instant::now() + PATIENCE;
    let id = loop {
        let (_, page) = app.get("/v1/jobs").await;
        if let Some(id) = page["jobs"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "the dispatch never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let dir = app.stop().await;
    let (status, out, err) = tokio::task::spawn_blocking(move || live.finish()).await.unwrap();
    assert_eq!(status.code(), Some(1), "{out}{err}");
    assert_eq!(out, "");
    assert!(err.starts_with(&format!("job {id}\n")), "{err}");
    assert!(err.contains("error: "), "{err}");
    assert!(
        err.contains(&format!("note: job {id} was dispatched; `wasmq jobs wait {id}` waits for it again")),
        "{err}"
    );

    // The job outlived the wait and the server: a restarted server has it.
    let app = spawn_app(Options { dir: Some(dir), ..Options::default() }).await;
    assert_eq!(field(&ok(&wasmq(&app, &["jobs", "show", &id]).await), "status"), "scheduled");
    assert!(field(&ok(&wasmq(&app, &["status"]).await), "workers").starts_with("2 max"));
}

#[tokio::test]
async fn batch_wait_shows_its_progress_and_ends_with_the_counts() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    push(&app, "fail", "fail").await;
    push(&app, "bench-job", "sleepy").await;
    let dir = tempfile::tempdir().unwrap();
    let mixed = dir.path().join("mixed.jsonl");
    let mut lines: Vec<String> =
        (0..20).map(|i| format!(r#"{{"alias":"echo","payload":{{"i":{i}}}}}"#)).collect();
    lines.push(r#"{"alias":"fail","payload":{"mode":"error"}}"#.into());
    std::fs::write(&mixed, lines.join("\n")).unwrap();
    // On a pipe: no bar, the counts at the end, exit 3 for the job that failed.
    let out = wasmq(&app, &["batch", mixed.to_str().unwrap(), "--wait"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(field(&stdout(&out), "ended"), "20 succeeded, 1 dead");
    assert!(stderr(&out).contains("1 of 21 jobs did not succeed"), "{}", stderr(&out));
    assert!(!stderr(&out).contains('\x1b'), "no escape codes on a pipe: {:?}", stderr(&out));

    // On a terminal: a bar over the batch while its jobs run, then exit 0.
    let slow = dir.path().join("slow.jsonl");
    let lines: Vec<String> =
        (0..4).map(|_| r#"{"alias":"sleepy","payload":{"sleep_ms":400}}"#.to_string()).collect();
    std::fs::write(&slow, lines.join("\n")).unwrap();
    let (url, file) = (app.url.clone(), slow.to_str().unwrap().to_string());
    let (status, all, _) =
        tokio::task::spawn_blocking(move || Live::wasmq_on_tty(&url, &["batch", &file, "--wait"]).finish())
            .await
            .unwrap();
    assert_eq!(status.code(), Some(0), "{all:?}");
    assert!(all.contains("/4 ended") && all.contains('['), "a bar over the batch: {all:?}");
    assert!(all.contains("4 succeeded"), "{all:?}");
}

#[tokio::test]
async fn jobs_watch_prints_each_event_as_it_happens() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    let url = app.url.clone();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let watcher = tokio::task::spawn_blocking(move || {
        let mut live = Live::wasmq(&url, &["jobs", "watch", "--alias", "echo"]);
        // The stream is open once the command runs; the id comes from the test.
        let id = rx.recv().unwrap();
        let seen = live.until("the job's end", |s| s.contains("job.succeeded") && s.contains(&id));
        live.child.kill().unwrap();
        (id, seen)
    });
    // Give the command its stream before dispatching: its first connection
    // is what `jobs watch` starts with (a later one resumes by id).
    let deadline = Instant::now() + PATIENCE;
    while ok(&wasmq(&app, &["status", "--json"]).await).contains("\"event_streams\":0") {
        assert!(Instant::now() < deadline, "jobs watch never opened its stream");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = ok(&wasmq(&app, &["dispatch", "echo", r#"{"w":1}"#]).await);
    tx.send(field(&out, "id")).unwrap();
    let (id, seen) = watcher.await.unwrap();
    let lines: Vec<&str> = seen.lines().filter(|l| l.contains(&id)).collect();
    assert_eq!(lines.len(), 3, "queued, started, succeeded: {seen:?}");
    assert!(lines[0].contains("job.queued") && lines[0].contains("echo@default"), "{seen:?}");
    assert!(lines[2].contains("job.succeeded") && lines[2].contains("attempt 1"), "{seen:?}");
}

#[tokio::test]
async fn jobs_watch_on_a_terminal_keeps_a_table_redrawn_in_place() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    let url = app.url.clone();
    let (opened_tx, opened) = tokio::sync::oneshot::channel::<()>();
    let (id_tx, id_rx) = std::sync::mpsc::channel::<String>();
    let watcher = tokio::task::spawn_blocking(move || {
        let mut tty = Live::wasmq_on_tty(&url, &["jobs", "watch"]);
        // The table is first drawn once the stream is open.
        tty.until("the table's header", |s| s.contains("ALIAS@QUEUE"));
        opened_tx.send(()).unwrap();
        let id = id_rx.recv().unwrap();
        // The row itself in the latest frame: the header's count says
        // "succeeded" too, and a read may end before the table under it.
        let drawn = tty.until("the job's end", |s| {
            let frame = s.rsplit("\x1b[H\x1b[2J").next().unwrap_or("");
            frame.lines().any(|l| l.contains(&id) && l.contains("succeeded\x1b[0m"))
        });
        tty.send(b"\x03");
        let (status, _, _) = tty.finish();
        (id, drawn, status)
    });
    opened.await.unwrap();
    let out = ok(&wasmq(&app, &["dispatch", "echo", r#"{"t":1}"#]).await);
    id_tx.send(field(&out, "id")).unwrap();
    let (id, drawn, status) = watcher.await.unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C ends the watch: {drawn:?}");
    assert!(drawn.contains("\x1b[H\x1b[2J"), "redrawn in place: {drawn:?}");
    let last = drawn.rsplit("\x1b[H\x1b[2J").next().unwrap();
    let row = last.lines().find(|l| l.contains(&id)).unwrap_or_else(|| panic!("{last:?}"));
    assert!(row.contains("echo@default") && row.contains("\x1b[32msucceeded\x1b[0m"), "coloured: {row:?}");
}

#[tokio::test]
async fn tables_are_coloured_on_a_terminal_and_plain_on_a_pipe_or_with_no_color() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    ok(&wasmq(&app, &["dispatch", "echo", "{}", "--wait"]).await);
    let url = app.url.clone();
    let (tty, no_color) = tokio::task::spawn_blocking(move || {
        let (_, tty, _) = Live::wasmq_on_tty(&url, &["jobs", "list"]).finish();
        let mut plain = Command::new("script");
        plain.args([
            "-q",
            "-e",
            "-f",
            "-c",
            &format!("exec {} jobs list", env!("CARGO_BIN_EXE_wasmq")),
            "/dev/null",
        ]);
        plain.env("WASMQ_URL", &url).env("TERM", "xterm").env("NO_COLOR", "1").env_remove("WASMQ_TOKEN");
        let (_, no_color, _) = Live::spawn(plain).finish();
        (tty, no_color)
    })
    .await
    .unwrap();
    assert!(tty.contains("\x1b[1mSTATUS\x1b[0m"), "a bold header: {tty:?}");
    assert!(tty.contains("\x1b[32msucceeded\x1b[0m"), "a green status: {tty:?}");
    assert!(!no_color.contains('\x1b') && no_color.contains("succeeded"), "NO_COLOR: {no_color:?}");
    let piped = ok(&wasmq(&app, &["jobs", "list"]).await);
    assert!(!piped.contains('\x1b') && piped.contains("succeeded"), "a pipe: {piped:?}");
    // Columns line up on the visible text, escapes aside.
    let strip =
        |s: &str| s.replace("\x1b[1m", "").replace("\x1b[32m", "").replace("\x1b[0m", "").replace('\r', "");
    let header = strip(&tty).lines().find(|l| l.contains("STATUS")).unwrap().to_string();
    let row = strip(&tty).lines().find(|l| l.contains("succeeded")).unwrap().to_string();
    assert_eq!(header.find("ALIAS"), row.find("echo"), "{header:?} / {row:?}");
}
