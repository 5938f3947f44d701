#!/usr/bin/env python3
"""The exec model that wasmq replaces: a supervisor starting one process per job.

This process is the supervisor: an in-memory queue (nothing durable), `--concurrency` threads
(2) each starting the next job's process and waiting for it (Python's subprocess: vfork +
exec). No-op jobs are `/bin/true`; the latency, memory and CPU jobs are `exec_job.c`,
compiled here with `gcc -O2` (a C program, so the figures are the process's cost, not an
interpreter's start-up). Same contract as the other adapters (benchlib.py).
"""

import collections
import os
import subprocess
import threading
import time

import benchlib as bl

HERE = os.path.dirname(os.path.abspath(__file__))


def build_job(tmp):
    exe = os.path.join(tmp, "exec_job")
    r = subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(HERE, "exec_job.c")],
                       capture_output=True, timeout=120)
    if r.returncode != 0:
        bl.fail(f"gcc exec_job.c failed: {r.stderr.decode(errors='replace')}")
    return exe


def run_queue(jobs, concurrency):
    """Runs every argv in `jobs` with `concurrency` at once; returns (t0, sorted end times)."""
    queue = collections.deque(jobs)
    lock = threading.Lock()
    ends, failures = [], []

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                argv = queue.popleft()
            rc = subprocess.run(argv, stdout=subprocess.DEVNULL).returncode
            with lock:
                if rc != 0:
                    failures.append((argv, rc))
                ends.append(time.time())

    ts = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if failures:
        bl.fail(f"{len(failures)} jobs failed, e.g. {failures[0]}")
    return t0, sorted(ends)


def drain(args):
    true = "/bin/true"
    t0, ends = run_queue([[true]] * args.n, args.concurrency)
    seconds = ends[-1] - t0
    out = {"jobs": args.n, "seconds": seconds, "jobs_per_s": args.n / seconds}
    if args.chunk:
        out["checkpoints"] = bl.checkpoints_from_times(ends, t0, args.chunk)
    return out


def cpu(args):
    exe = build_job(args.tmp)

    def own_ms(limit):
        r = subprocess.run([exe, "sieve", str(limit)], capture_output=True, check=True)
        return int(r.stdout.split()[1]) / 1000.0

    limit, ms = bl.calibrate(own_ms, args.target_ms, start=1_000_000)
    t0, ends = run_queue([[exe, "sieve", str(limit)]] * args.n, args.concurrency)
    seconds = ends[-1] - t0
    # per_job_ms: the sieve's own time inside the process; the process around it is the model's cost.
    return {"jobs": args.n, "seconds": seconds, "jobs_per_s": args.n / seconds, "limit": limit,
            "per_job_ms": ms}


def latency(args):
    exe = build_job(args.tmp)
    samples = []
    for i in range(args.n + 3):
        sent = time.monotonic_ns() // 1000
        r = subprocess.run([exe, "start"], capture_output=True, check=True)
        if i >= 3:  # the first runs warm the page cache
            samples.append(int(r.stdout) - sent)
    return bl.latency_summary(samples)


def rss(args):
    exe = build_job(args.tmp)
    me = os.getpid()
    idle = bl.sample_memory([me], seconds=1.0)
    th = threading.Thread(target=run_queue, args=([[exe, "sleep", str(args.sleep_ms)]] * args.n,
                                                   args.concurrency), daemon=True)
    th.start()
    time.sleep(0.3)
    busy = bl.sample_memory([me], seconds=1.0)
    # The supervisor and its running job processes; the queued jobs are list entries. The driver
    # ends this process group when the JSON line is out: the remaining sleeps are not waited for.
    return {"idle_rss_kib": idle["rss_kib"], "idle_hwm_kib": idle["hwm_kib"],
            "busy_rss_kib": busy["rss_kib"], "busy_hwm_kib": busy["hwm_kib"],
            "running": busy["processes"] - 1, "in_flight": args.n, "processes": busy["processes"]}


WORKLOADS = {"drain": drain, "cpu": cpu, "latency": latency, "rss": rss}

if __name__ == "__main__":
    a = bl.parse_args(list(WORKLOADS))
    result = WORKLOADS[a.workload](a)
    bl.emit(result)
    os._exit(0)  # rss leaves sleeping jobs behind: do not wait for them
