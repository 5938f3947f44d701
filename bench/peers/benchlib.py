"""What every Python adapter of the side-by-side suite shares (stdlib only).

The adapter contract (`bench/README.md`): `ADAPTER WORKLOAD --n N --tmp DIR --ns NAME [...]`
runs one workload against one system in a fresh namespace and prints ONE JSON line, the last
line of stdout, with the figures; anything else goes to stderr. A failure exits non-zero with
the reason on stderr. The driver (`bench/run`) kills the adapter's process group on a timeout,
so children need no cleanup of their own beyond what would outlive the group (databases).
"""

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import threading
import time


def parse_args(workloads, extra=None):
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=workloads)
    p.add_argument("--n", type=int, default=100, help="jobs (samples for latency)")
    p.add_argument("--tmp", required=True, help="a fresh directory this run may use")
    p.add_argument("--ns", required=True, help="namespace: prefix for databases and keys")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--payload", choices=["noop", "progress"], default="noop")
    p.add_argument("--chunk", type=int, default=0, help="record a checkpoint every CHUNK completions")
    p.add_argument("--sleep-ms", type=int, default=2000, help="rss: how long each in-flight job sleeps")
    p.add_argument("--target-ms", type=float, default=10.0, help="cpu: per-job time to calibrate to")
    if extra:
        extra(p)
    return p.parse_args()


def emit(result):
    """The one JSON line the driver reads."""
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def fail(message):
    log("error:", message)
    sys.exit(1)


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def latency_summary(samples_us):
    return {
        "samples": len(samples_us),
        "p50_ms": percentile(samples_us, 50) / 1000.0,
        "p99_ms": percentile(samples_us, 99) / 1000.0,
        "min_ms": min(samples_us) / 1000.0,
        "max_ms": max(samples_us) / 1000.0,
    }


def checkpoints_from_times(times, t0, chunk):
    """[[finished, seconds since t0], ...] every `chunk` jobs of a sorted list of end times."""
    if chunk <= 0:
        return []
    return [[i, times[i - 1] - t0] for i in range(chunk, len(times) + 1, chunk)]


# ---- PostgreSQL (psql: the adapters stay stdlib only) ---------------------------------

# The local server, without a database; the same variable as the Node adapters' (common.mjs).
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def _pg_value(text):
    if text == "":
        return None  # NULL (psql's CSV also prints an empty string so: the callers read no text)
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def psql(sql, db="postgres", timeout=60):
    """The rows of one SQL statement on $BENCH_PG/db, as tuples of int, float, str or None (NULL).

    Each call is a psql process and a server backend (tens of ms): for set-up, teardown and polls
    a few times a second, not for anything timed."""
    argv = ["psql", f"{PG}/{db}", "-X", "--csv", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        fail(f"psql {db}: {sql[:200]}: {e}")
    if r.returncode != 0:
        fail(f"psql {db}: {sql[:200]} failed ({r.returncode}): {r.stderr.strip()[-1000:]}")
    return [tuple(_pg_value(v) for v in row) for row in csv.reader(io.StringIO(r.stdout))]


# ---- memory of a process tree ------------------------------------------------

def _status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def descendants(pid):
    """pid and every process below it (scans /proc once)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command may hold spaces and parentheses: fields start after the last ')'.
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(parents.get(p, []))
    return found


def tree_memory(pids):
    """Summed VmRSS and VmHWM (KiB) of the given processes and all their descendants."""
    seen, rss, hwm = set(), 0, 0
    for root in pids:
        for p in descendants(root):
            if p in seen:
                continue
            seen.add(p)
            st = _status(p)
            rss += st.get("VmRSS", 0)
            hwm += st.get("VmHWM", 0)
    return {"rss_kib": rss, "hwm_kib": hwm, "processes": len(seen)}


def sample_memory(pids, seconds=1.5, every=0.25):
    """The largest summed RSS seen over `seconds` (jobs start and end meanwhile), with its HWM."""
    best = tree_memory(pids)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(every)
        m = tree_memory(pids)
        if m["rss_kib"] > best["rss_kib"]:
            best = m
    return best


# ---- a child that reports JSON lines ---------------------------------------------

class LineChild:
    """A worker process that prints one JSON object per line on stdout (events), stderr to a file."""

    def __init__(self, argv, stderr_path, env=None, cwd=None):
        self.stderr_path = stderr_path
        self._err = open(stderr_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._err, env=env, cwd=cwd)
        self._lines = []
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            with self._cv:
                self._lines.append(msg)
                self._cv.notify_all()
        with self._cv:
            self._lines.append(None)  # end of stream
            self._cv.notify_all()

    def wait_for(self, key, timeout):
        """The first event holding `key`; fails naming the stderr file on exit or timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for i, msg in enumerate(self._lines):
                    if msg is None:
                        fail(f"worker exited ({self.proc.poll()}) before '{key}'; see {self.stderr_path}")
                    if key in msg:
                        del self._lines[i]
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    fail(f"no '{key}' from the worker within {timeout:.0f} s; see {self.stderr_path}")
                self._cv.wait(left)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()


# ---- the same CPU job in Python ----------------------------------------------------

def sieve(limit):
    """Counts the primes up to `limit` (plain sieve, one byte per number: the job of `primes`)."""
    flags = bytearray([1]) * (limit + 1)
    flags[0] = flags[1] = 0
    i = 2
    while i * i <= limit:
        if flags[i]:
            j = i * i
            while j <= limit:
                flags[j] = 0
                j += i
        i += 1
    return sum(flags)


def calibrate(run, target_ms, start=10_000):
    """The limit at which `run(limit)` takes about target_ms (median of 5), and that time."""

    def timed(limit):
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            run(limit)
            ts.append((time.perf_counter() - t) * 1000)
        return sorted(ts)[2]

    limit = start
    ms = timed(limit)
    while ms < target_ms / 2:
        limit *= 2
        ms = timed(limit)
    for _ in range(6):  # proportional refinement: time is ~linear in limit
        limit = max(2, int(limit * target_ms / ms))
        ms = timed(limit)
        if abs(ms - target_ms) / target_ms < 0.05:
            break
    return limit, ms
