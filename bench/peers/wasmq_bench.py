#!/usr/bin/env python3
"""wasmq under the suite's adapter contract (stdlib only; see benchlib.py).

Each workload starts its own `wasmq serve` on a fresh SQLite file in --tmp, registers the
plugins with `wasmq push`, drives the HTTP API with keep-alive `http.client` connections, and
reads start and finish times from the SQLite file afterwards (the server's clock, unix ms).

With `--database postgres` the node runs on a fresh database on the local PostgreSQL ($BENCH_PG,
default postgres://postgres@127.0.0.1:5432; dropped once the nodes have exited), with a callback
key file shared by the nodes, and the times are read through psql. `--nodes 2` adds a
`wasmq worker` (jobs only, no HTTP API) on the same database; each node has --concurrency workers.

    wasmq_bench.py drain   --n N [--payload progress] [--chunk K]   # backlog due at one instant
    wasmq_bench.py http    --n N                                    # 64 clients / batches, until finished
    wasmq_bench.py cpu     --n N [--target-ms 10]                   # primes calibrated to ~10 ms
    wasmq_bench.py latency --n K                                    # idle dispatch -> start
    wasmq_bench.py rss     --n M --concurrency W                    # idle, then M jobs in flight
"""

import datetime
import http.client
import json
import multiprocessing
import os
import resource
import signal
import sqlite3
import subprocess
import threading
import time

import benchlib as bl

BATCH = 1000
FINISHED = ("succeeded", "failed", "dead", "cancelled")


def extra_args(p):
    p.add_argument("--wasmq", required=True, help="the wasmq binary")
    p.add_argument("--plugins", required=True, help="directory with bench-job.wasm and primes.wasm")
    p.add_argument("--insert-rate", type=float, default=0.0,
                   help="drain: batch insert rate (jobs/s) seen before; 0 = probe it first")
    p.add_argument("--clients", type=int, default=64, help="http: concurrent single-dispatch clients")
    p.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite",
                   help="a fresh SQLite file in --tmp, or a fresh database on $BENCH_PG (dropped afterwards)")
    p.add_argument("--nodes", type=int, choices=[1, 2], default=1,
                   help="postgres: 1 = `wasmq serve`; 2 = `wasmq serve` + `wasmq worker` on the same database")


# ---- the server ---------------------------------------------------------------------

class Node:
    """One wasmq process (`serve` or `worker`) with its own stderr file."""

    def __init__(self, args, argv, stderr_path, cwd):
        self.stderr_path = stderr_path
        self._terminated = False
        self._err = open(stderr_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WASMQ_")}
        self.proc = subprocess.Popen([args.wasmq, *argv], stdout=subprocess.DEVNULL, stderr=self._err, env=env,
                                     cwd=cwd)

    def wait_line(self, accept, what, timeout=60):
        """The first whole stderr line for which accept(line) is true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                bl.fail(f"wasmq {what} exited with {self.proc.returncode}; see {self.stderr_path}")
            with open(self.stderr_path, "rb") as f:
                # Whole lines only: the server may be halfway through writing one.
                for line in f.read().decode(errors="replace").split("\n")[:-1]:
                    if accept(line):
                        return line
            time.sleep(0.02)
        bl.fail(f"wasmq {what} did not say it was ready within {timeout} s; see {self.stderr_path}")

    def check_running(self, what):
        if self.proc.poll() is not None:
            bl.fail(f"wasmq {what} exited with {self.proc.returncode}; see {self.stderr_path}")

    def finished_attempts(self):
        """How many job attempts this node ran to their end (its "job attempt finished" log lines)."""
        with open(self.stderr_path, "rb") as f:
            return f.read().count(b"job attempt finished")

    def terminate(self):
        if self.proc.poll() is None and not self._terminated:
            self.proc.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self):
        self.terminate()
        if self.proc.poll() is None:
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()


def pg_name(ns, name):
    """A database name for this run (the driver drops any `wasmq_bench_<ns>_...` left behind)."""
    return "wasmq_bench_" + "".join(c if c.isalnum() else "_" for c in f"{ns}_{name}").lower()


def write_key_file(path):
    """The key that seals callback secrets, shared by every node: 32 random bytes as 64 hex digits, 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(32).hex() + "\n")


class Server:
    """`wasmq serve` on 127.0.0.1:0 with its own database and cache; on PostgreSQL (--database
    postgres) a fresh database, and with --nodes 2 a `wasmq worker` beside it on the same one.

    The serve node has the HTTP API and runs jobs; a worker node runs jobs only. Each node has
    `workers` workers. Stopping waits for every node to exit, then drops the PostgreSQL database."""

    def __init__(self, args, name, workers, extra=()):
        self.args = args
        self.pg = args.database == "postgres"
        self.dir = os.path.join(args.tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.nodes = []
        self.pg_db = None
        try:
            if self.pg:
                db = pg_name(args.ns, name)
                bl.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
                bl.psql(f"CREATE DATABASE {db}")
                self.pg_db = db  # from here on stop() drops it
                key = os.path.join(self.dir, "callback-key")
                write_key_file(key)
                database = ["--database", f"{bl.PG}/{db}", "--callback-key-file", key]
            else:
                self.db = os.path.join(self.dir, "wasmq.db")
                database = ["--database", f"sqlite://{self.db}"]
            common = [*database, "--cache-dir", os.path.join(args.tmp, "cache"), "--workers", str(workers),
                      # The 1,000,000-job backlog is past both defaults (100,000 per tenant).
                      "--max-queued-jobs", "5000000", "--tenant-max-waiting", "5000000", *extra]
            serve = Node(args, ["serve", "--listen", "127.0.0.1:0", *common],
                         os.path.join(self.dir, "server.stderr"), self.dir)
            self.nodes.append(serve)
            self.url = serve.wait_line(lambda ln: ln.startswith("wasmq listening on "), "serve").split()[-1]
            for i in range(2, args.nodes + 1):
                worker = Node(args, ["worker", *common], os.path.join(self.dir, f"worker{i}.stderr"), self.dir)
                self.nodes.append(worker)
                worker.wait_line(lambda ln: ln.startswith("wasmq worker ") and " running" in ln, "worker")
        except BaseException:
            self.stop()
            raise
        self.proc = serve.proc
        self.stderr_path = serve.stderr_path
        host, port = self.url.split("//", 1)[1].split(":")
        self.host, self.port = host, int(port)

    def push(self, name, alias):
        path = os.path.join(self.args.plugins, name)
        env = dict(os.environ, WASMQ_URL=self.url)
        env.pop("WASMQ_TOKEN", None)
        r = subprocess.run([self.args.wasmq, "push", path, "--alias", alias], env=env,
                           capture_output=True, timeout=120)
        if r.returncode != 0:
            bl.fail(f"wasmq push {name} failed ({r.returncode}): {r.stderr.decode(errors='replace')}"
                    f"; server log {self.stderr_path}")

    def conn(self):
        return Client(self.host, self.port, self.stderr_path)

    def pids(self):
        return [n.proc.pid for n in self.nodes]

    def check_running(self):
        for i, n in enumerate(self.nodes):
            n.check_running("serve" if i == 0 else "worker")

    def jobs_per_node(self):
        return [n.finished_attempts() for n in self.nodes]

    def stop(self):
        for n in self.nodes:
            n.terminate()  # all at once: they finish their runs in parallel
        for n in self.nodes:
            n.stop()
        if self.pg_db:
            # Only after every node has exited: none of their pooled connections is cut.
            bl.psql(f"DROP DATABASE IF EXISTS {self.pg_db} WITH (FORCE)")
            self.pg_db = None

    # Reads of the database: the SQLite file (WAL: a reader does not block the server's writer)
    # or PostgreSQL through psql. Same tables and columns (started_at, finished_at: unix ms).

    def query(self, sql, params=()):
        if self.pg:
            assert not params, "psql takes no parameters"
            return bl.psql(sql, db=self.pg_db, timeout=120)
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def db_bytes(self):
        if self.pg:
            (size,), = self.query("SELECT pg_database_size(current_database())")
            return size
        return os.path.getsize(self.db)

    def unfinished(self):
        # Both counts run on partial indexes (waiting, running) in either backend: cheap at 1M rows.
        # One statement: on PostgreSQL each query is a psql process.
        (unfinished,), = self.query(
            "SELECT (SELECT count(*) FROM jobs WHERE status IN ('queued','scheduled','failed'))"
            " + (SELECT count(*) FROM jobs WHERE status = 'running')")
        return unfinished

    def wait_all_finished(self, timeout):
        deadline = time.monotonic() + timeout
        # psql costs a process and a backend per poll: fewer polls there (the drain's end is read from
        # finished_at afterwards, so the poll interval does not enter the figures).
        every = 0.2 if self.pg else 0.05
        while self.unfinished() > 0:
            self.check_running()
            if time.monotonic() > deadline:
                bl.fail(f"jobs still unfinished after {timeout:.0f} s; see {self.stderr_path}")
            time.sleep(every)

    def check_all_succeeded(self, n):
        rows = dict(self.query("SELECT status, count(*) FROM jobs GROUP BY status"))
        if rows.get("succeeded", 0) != n or sum(rows.values()) != n:
            sample = self.query("SELECT status, error_kind, error_message FROM jobs "
                                "WHERE status != 'succeeded' LIMIT 3")
            bl.fail(f"expected {n} succeeded jobs, found {rows} (e.g. {sample}); see {self.stderr_path}")


class Client:
    """One keep-alive HTTP/1.1 connection speaking JSON."""

    def __init__(self, host, port, server_log):
        self.c = http.client.HTTPConnection(host, port, timeout=120)
        self.server_log = server_log

    def call(self, method, path, body=None, ok=(200, 201, 202)):
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.c.request(method, path, body=data, headers=headers)
        resp = self.c.getresponse()
        raw = resp.read()
        if resp.status not in ok:
            bl.fail(f"{method} {path} answered {resp.status}: {raw[:300]!r}; server log {self.server_log}")
        return json.loads(raw) if raw else None

    def close(self):
        self.c.close()


def rfc3339_ms(unix_ms):
    t = datetime.datetime.fromtimestamp(unix_ms / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{unix_ms % 1000:03d}Z"


def post_batches(client, n, payload, alias="bench", run_at=None):
    """n jobs in batches of BATCH; returns the seconds it took."""
    job = {"alias": alias, "payload": payload}
    if run_at is not None:
        job["run_at"] = rfc3339_ms(run_at)
    t = time.monotonic()
    left = n
    while left > 0:
        k = min(BATCH, left)
        client.call("POST", "/v1/batches", {"jobs": [job] * k})
        left -= k
    return time.monotonic() - t


# ---- workloads ----------------------------------------------------------------------

def probe_insert_rate(args, n=5000):
    """Batch inserts per second on a throwaway server (jobs due in a year, never run)."""
    s = Server(args, "probe", 2)
    try:
        s.push("bench-job.wasm", "bench")
        c = s.conn()
        secs = post_batches(c, n, {}, run_at=int(time.time() * 1000) + 300 * 86400 * 1000)
        c.close()
        return n / secs
    finally:
        s.stop()


def backlog(args, n, alias, payload, plugin, name, chunk=0):
    """Insert n jobs due at one instant T (after the last insert), then drain: T -> last finished_at.

    T is set from the insert rate (probed or passed by the driver) with a margin; if the
    inserts still ran past T the run is repeated with a later T, so no job starts during insertion.
    """
    # A rate measured by an earlier run of the same size is close; a probe on a small table
    # overestimates a large one (inserts slow down as the indexes grow), and a repeat of a
    # million-job insert costs more than idling a little longer.
    if args.insert_rate:
        rate, factor = args.insert_rate, 1.25
    else:
        rate, factor = probe_insert_rate(args, min(5000, n)), (1.6 if n <= 100_000 else 2.0)
    for attempt in range(3):
        margin_s = 0.5 + factor * n / rate * (2 ** attempt)
        s = Server(args, f"{name}-{attempt}", 2)
        try:
            s.push(plugin, alias)
            c = s.conn()
            due = int(time.time() * 1000 + margin_s * 1000)
            insert_s = post_batches(c, n, payload, alias=alias, run_at=due)
            inserted_at = time.time() * 1000
            c.close()
            if inserted_at > due - 50:
                bl.log(f"inserts ended {inserted_at - due:.0f} ms after the due time; again with more margin")
                rate = n / insert_s
                continue
            s.wait_all_finished(timeout=max(120, margin_s + n / 200))
            s.check_all_succeeded(n)
            (first_start, last_finish, mean_ms), = s.query(
                "SELECT min(started_at), max(finished_at), avg(duration_ms) FROM jobs WHERE status='succeeded'")
            if first_start < due:
                bl.fail(f"a job started at {first_start}, before the due time {due}")
            seconds = max(last_finish - due, 1) / 1000.0
            out = {"jobs": n, "seconds": seconds, "jobs_per_s": n / seconds,
                   "insert_jobs_per_s": n / insert_s, "first_start_after_due_ms": first_start - due,
                   "mean_run_ms": mean_ms, "db_bytes": s.db_bytes()}
            if len(s.nodes) > 1:
                out["jobs_per_node"] = s.jobs_per_node()
            if chunk:
                ends = [r[0] for r in s.query("SELECT finished_at FROM jobs ORDER BY finished_at")]
                out["checkpoints"] = bl.checkpoints_from_times([e / 1000.0 for e in ends], due / 1000.0, chunk)
            return out
        finally:
            s.stop()
    bl.fail("inserts kept running past the due time")


def drain(args):
    payload = {"progress": 1} if args.payload == "progress" else {}
    return backlog(args, args.n, "bench", payload, "bench-job.wasm", "drain", args.chunk)


def calibrate_primes(args, target_ms):
    """The primes limit whose run takes ~target_ms in `wasmq run` (the outcome's duration_us)."""
    cache = os.path.join(args.tmp, "cache")
    path = os.path.join(args.plugins, "primes.wasm")

    def run(limit):
        r = subprocess.run([args.wasmq, "run", path, json.dumps({"limit": limit}), "--json",
                            "--cache-dir", cache], capture_output=True, timeout=120)
        if r.returncode != 0:
            bl.fail(f"wasmq run primes failed ({r.returncode}): {r.stderr.decode(errors='replace')[-500:]}")
        return json.loads(r.stdout)["duration_us"] / 1000.0

    def timed(limit):
        return sorted(run(limit) for _ in range(5))[2]

    run(1000)  # compile into the cache
    limit = 1_000_000
    ms = timed(limit)
    for _ in range(6):
        limit = max(2, int(limit * target_ms / ms))
        ms = timed(limit)
        if abs(ms - target_ms) / target_ms < 0.05:
            break
    return limit, ms


def cpu(args):
    limit, ms = calibrate_primes(args, args.target_ms)
    out = backlog(args, args.n, "primes", {"limit": limit}, "primes.wasm", "cpu")
    out.update({"limit": limit, "per_job_ms": ms, "per_job_ms_in_run": out.pop("mean_run_ms")})
    return out


def latency(args):
    s = Server(args, "latency", 2)
    try:
        s.push("bench-job.wasm", "bench")
        c = s.conn()
        if len(s.nodes) > 1:
            # Warm every node (any may claim a job): a burst each node takes a share of.
            warm = 4 * args.concurrency * len(s.nodes)
            post_batches(c, warm, {"sleep_ms": 20})
            s.wait_all_finished(timeout=60)
        for _ in range(3):  # warm: first instantiation, connection
            job = c.call("POST", "/v1/jobs", {"alias": "bench", "payload": {}})
            c.call("GET", f"/v1/jobs/{job['id']}/wait?timeout_ms=10000")
        samples = []
        for _ in range(args.n):
            sent_us = time.time_ns() // 1000
            job = c.call("POST", "/v1/jobs", {"alias": "bench", "payload": {}})
            done = c.call("GET", f"/v1/jobs/{job['id']}/wait?timeout_ms=10000")
            if done.get("status") != "succeeded":
                bl.fail(f"latency job ended {done.get('status')}: {done.get('error')}; see {s.stderr_path}")
            samples.append(done["result"]["started_unix_us"] - sent_us)
        c.close()
        out = bl.latency_summary(samples)
        if len(s.nodes) > 1:
            out["jobs_per_node"] = s.jobs_per_node()  # warm-ups included
        return out
    finally:
        s.stop()


def _single_client_proc(host, port, log, alias, remaining, threads, errors):
    """A process of `threads` clients, each POSTing single jobs while `remaining` is positive."""

    def client():
        c = Client(host, port, log)
        try:
            while True:
                with remaining.get_lock():
                    if remaining.value <= 0:
                        return
                    remaining.value -= 1
                c.call("POST", "/v1/jobs", {"alias": alias, "payload": {}})
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            with errors.get_lock():
                errors.value += 1
            bl.log("client error:", repr(e))
        finally:
            c.close()

    ts = [threading.Thread(target=client) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def _batch_client_proc(host, port, log, n):
    c = Client(host, port, log)
    post_batches(c, n, {})
    c.close()


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_phase(args, name, run_clients):
    """Start a fresh server, run the clients, time from the first request to the last finished_at.

    Also the CPU seconds the server and the client processes used: they share the machine's cores,
    so a client-bound phase shows as client CPU close to the wall time times the cores."""
    s = Server(args, f"http-{name}", 2)
    try:
        s.push("bench-job.wasm", "bench")
        server_cpu0 = sum(cpu_seconds(pid) for pid in s.pids())
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        run_clients(s)
        accepted_s = time.time() - t0
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        s.wait_all_finished(timeout=max(120, args.n / 100))
        s.check_all_succeeded(args.n)
        (last,), = s.query("SELECT max(finished_at) FROM jobs")
        seconds = max(last / 1000.0 - t0, 0.001)
        server_cpu = sum(cpu_seconds(pid) for pid in s.pids()) - server_cpu0
        client_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
        return {"jobs_per_s": args.n / seconds, "accepted_per_s": args.n / accepted_s, "seconds": seconds,
                "server_cpu_s": server_cpu, "client_cpu_s": client_cpu}
    finally:
        s.stop()


def http_api(args):
    ctx = multiprocessing.get_context("fork")
    procs_n = 4  # 64 client threads in 4 processes: one Python process alone is GIL-bound near 3k req/s

    def singles(s):
        remaining, errors = ctx.Value("q", args.n), ctx.Value("i", 0)
        ps = [ctx.Process(target=_single_client_proc,
                          args=(s.host, s.port, s.stderr_path, "bench", remaining,
                                args.clients // procs_n, errors)) for _ in range(procs_n)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        if errors.value or any(p.exitcode for p in ps):
            bl.fail(f"{errors.value} single-dispatch clients failed; see stderr and {s.stderr_path}")

    def batches(k):
        def go(s):
            share = [args.n // k + (1 if i < args.n % k else 0) for i in range(k)]
            ps = [ctx.Process(target=_batch_client_proc, args=(s.host, s.port, s.stderr_path, m))
                  for m in share]
            for p in ps:
                p.start()
            for p in ps:
                p.join()
            if any(p.exitcode for p in ps):
                bl.fail(f"a batch client failed; see stderr and {s.stderr_path}")
        return go

    out = {}
    for name, fn in (("single", singles), ("batch1", batches(1)), ("batch4", batches(4))):
        for k, v in http_phase(args, name, fn).items():
            out[f"{name}_{k}"] = v
    out["clients"] = args.clients
    return out


def rss(args):
    workers = args.concurrency
    s = Server(args, f"rss-{workers}", workers)
    try:
        s.push("bench-job.wasm", "bench")
        c = s.conn()
        c.call("POST", "/v1/jobs", {"alias": "bench", "payload": {}})  # one run: the pool is touched
        time.sleep(0.5)
        idle = bl.sample_memory(s.pids(), seconds=1.0)
        post_batches(c, args.n, {"sleep_ms": args.sleep_ms})
        # Wait until the workers are full (or everything runs), then sample while they sleep.
        want = min(workers, args.n)
        deadline = time.monotonic() + 10
        running = 0
        while time.monotonic() < deadline:
            running = c.call("GET", "/v1/status")["workers"]["busy"]
            if running >= want:
                break
            time.sleep(0.05)
        busy = bl.sample_memory(s.pids(), seconds=min(1.0, args.sleep_ms / 2000))
        st = c.call("GET", "/v1/status")
        c.close()
        failed = {k: v for k, v in st["jobs"].items() if k in ("failed", "dead", "cancelled") and v}
        if failed:
            bl.fail(f"jobs failed while in flight: {failed}; see {s.stderr_path}")
        return {"idle_rss_kib": idle["rss_kib"], "idle_hwm_kib": idle["hwm_kib"],
                "busy_rss_kib": busy["rss_kib"], "busy_hwm_kib": busy["hwm_kib"],
                "running": max(running, st["workers"]["busy"]), "in_flight": args.n, "workers": workers}
    finally:
        s.stop()


WORKLOADS = {"drain": drain, "http": http_api, "cpu": cpu, "latency": latency, "rss": rss}

if __name__ == "__main__":
    a = bl.parse_args(list(WORKLOADS), extra_args)
    if a.nodes > 1 and a.database != "postgres":
        bl.fail("--nodes 2 needs --database postgres (`wasmq worker` shares a PostgreSQL database)")
    bl.emit(WORKLOADS[a.workload](a))
