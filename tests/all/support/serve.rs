//! The one way tests start a `wasmq serve` process: [`Serve`] says how (its
//! flags, environment, database, directory), [`ServeProcess`] is the running
//! server (its URL, its stderr line by line, signals), killed when dropped.

use std::io::BufRead;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{artifacts_dir, callback_key_file, database_url};

/// How long a server may take to start, or a line to appear on its stderr
/// (generous: the machine is shared and loaded).
const PATIENCE: Duration = Duration::from_secs(120);

/// How to start `wasmq serve`. By default: `--listen 127.0.0.1:0`, the test
/// database (`support::database_url`: `WASMQ_TEST_DATABASE_URL` or a SQLite
/// file) in a fresh temp directory, which is also its working directory, the
/// shared artifact cache (`WASMQ_CACHE_DIR`), and none of the caller's
/// `WASMQ_*` variables nor `RUST_LOG`.
#[must_use]
pub struct Serve {
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: Option<Arc<tempfile::TempDir>>,
    /// No `--listen`, `--database` nor key file from the builder.
    operator: bool,
    nofile: Option<u32>,
    /// `wasmq worker` (no HTTP API) instead of `wasmq serve`.
    worker: bool,
}

impl Serve {
    /// `wasmq serve` with the defaults above.
    pub fn new() -> Serve {
        Serve { args: Vec::new(), env: Vec::new(), dir: None, operator: false, nofile: None, worker: false }
    }

    /// `wasmq worker` as an operator starts it (only the test's flags): it
    /// has no API, so its `ServeProcess` has no URL.
    pub fn worker() -> Serve {
        Serve { worker: true, ..Serve::as_operator() }
    }

    /// As an operator starts it: only the flags and variables the test gives
    /// (and the shared cache); listen address and database come from them, a
    /// config file or the defaults (a `wasmq.db` in the working directory).
    pub fn as_operator() -> Serve {
        Serve { operator: true, ..Serve::new() }
    }

    /// More flags, after the builder's own.
    pub fn args(mut self, args: &[&str]) -> Serve {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// A variable for the server (applied after the defaults, so it wins).
    pub fn env(mut self, name: &str, value: &str) -> Serve {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Runs in `dir` and keeps its database there: a restart.
    pub fn dir(mut self, dir: Arc<tempfile::TempDir>) -> Serve {
        self.dir = Some(dir);
        self
    }

    /// Runs the server under the open-file limit `n` (the shell's `ulimit -n`).
    pub fn nofile(mut self, n: u32) -> Serve {
        self.nofile = Some(n);
        self
    }

    /// The command, and the database URL it names (none as an operator).
    fn command(&self, dir: &std::path::Path) -> (Command, Option<String>) {
        let mut args = vec![if self.worker { "worker" } else { "serve" }.to_string()];
        let mut database = None;
        if !self.operator {
            let url = database_url(dir);
            args.extend(["--listen".into(), "127.0.0.1:0".into(), "--database".into(), url.clone()]);
            if let Some(key) = callback_key_file(&url, dir) {
                args.extend(["--callback-key-file".into(), key.display().to_string()]);
            }
            database = Some(url);
        }
        args.extend(self.args.iter().cloned());
        let mut command = match self.nofile {
            None => Command::new(env!("CARGO_BIN_EXE_wasmq")),
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_wasmq"));
                sh
            }
        };
        command.args(&args).current_dir(dir).env_remove("RUST_LOG");
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("WASMQ_")) {
            command.env_remove(name);
        }
        command.env("WASMQ_CACHE_DIR", artifacts_dir());
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        (command, database)
    }

    fn take_dir(&mut self) -> Arc<tempfile::TempDir> {
        self.dir.take().unwrap_or_else(|| Arc::new(tempfile::tempdir().unwrap()))
    }

    /// Runs it to its exit (a server that refuses to start); its output.
    pub async fn exit(mut self) -> Output {
        let dir = self.take_dir();
        let (mut command, _) = self.command(dir.path());
        command.stdin(Stdio::null());
        tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
    }

    /// Starts it; returns once it listens and answers `/healthz` (a worker:
    /// once it says it runs).
    pub async fn start(mut self) -> ServeProcess {
        let worker = self.worker;
        let dir = self.take_dir();
        let (mut command, database_url) = self.command(dir.path());
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        // A thread, not a task: it keeps the pipe drained even while the test
        // blocks, so a chatty server never stalls on a full pipe.
        let stderr = child.stderr.take().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::unbounded_channel();
        let kept = output.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                kept.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut server = ServeProcess { url: String::new(), dir, database_url, child, lines, output };
        if worker {
            server.line_with("wasmq worker ").await;
            return server;
        }
        let line = server.line_with("wasmq listening on http://").await;
        server.url = line.split("listening on ").nth(1).unwrap().trim().to_string();
        server.until_healthy().await;
        server
    }
}

/// A running `wasmq serve` (or `worker`); killed (and reaped) when dropped.
pub struct ServeProcess {
    /// `http://host:port` (empty for a worker).
    pub url: String,
    /// Its working directory, where its database lives by default.
    pub dir: Arc<tempfile::TempDir>,
    /// The database it was given (`None` as an operator starts it).
    pub database_url: Option<String>,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    output: Arc<Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// `host:port`.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// The host it listens on.
    pub fn host(&self) -> &str {
        self.addr().rsplit_once(':').unwrap().0
    }

    async fn until_healthy(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let resp = client.get(format!("{}/healthz", self.url)).send().await;
            if resp.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(Instant::now() < deadline, "{} never answered /healthz:\n{}", self.url, self.stderr());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The next stderr line containing `needle` (waits for it, up to a deadline).
    pub async fn line_with(&mut self, needle: &str) -> String {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        };
        match tokio::time::timeout(PATIENCE, wait).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("wasmq serve exited without a line with {needle:?}:\n{}", self.stderr()),
            Err(_) => panic!("no line with {needle:?} on stderr; so far:\n{}", self.stderr()),
        }
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends `signal` (e.g. `-TERM`, `-STOP`, `-CONT`) with `kill`.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill {signal}");
    }

    /// Waits for it to exit (polling), at most `within`; its exit status.
    pub async fn exited(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wasmq serve still running after {within:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Kills it; returns every line it wrote to stderr.
    pub async fn stop(mut self) -> Vec<String> {
        self.kill();
        // The pipe closes with the process (or with the last compile child
        // that inherited it); what came before is kept either way.
        let _ = tokio::time::timeout(PATIENCE, async { while self.lines.recv().await.is_some() {} }).await;
        self.output.lock().unwrap().clone()
    }

    /// Its database opened through `wasmq::store::connect`, as the server
    /// opens it: the backend-neutral way to look at (or plant) rows.
    pub async fn store(&self) -> Arc<dyn wasmq::store::Store> {
        let url = self.database_url.as_deref().expect("a server started with a test database");
        wasmq::store::connect(url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"))
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // A stopped process dies of SIGKILL only once continued.
            let _ = Command::new("kill").args(["-CONT", &self.child.id().to_string()]).status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
