//! Commands watched while they run: on a pseudo-terminal (util-linux `script`
//! gives the command a terminal for stdin, stdout and stderr, and copies what
//! it draws to a pipe), or on pipes, reading their output as it comes.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{field, job_line, ok, ok_json, push, stderr, wasmq};
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
        command.args(["-q", "-e", "-f", "-c", &line.join(" "), "/dev/null"]);
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
