#!/usr/bin/env python3
"""huey on SQLite (SqliteHuey) under the suite's adapter contract (benchlib.py).

This process is the producer and client; the consumer is a second process (`consume`) with
--concurrency worker THREADS (huey's default worker type), started after the backlog is in.
Durability: SqliteHuey's defaults, WAL journal and SQLite's default synchronous (FULL: every
enqueue and result write is its own synced transaction); no result is stored for tasks that
return None (the no-op and CPU jobs). huey's SQLite storage polls for work; its default poll
(0.1 s growing to 10 s when idle) would measure the poll, so the consumer polls every 1 ms.
"""

import json
import os
import sys
import threading
import time

import benchlib as bl

from huey import SqliteHuey
from huey.consumer import Consumer
from huey.signals import SIGNAL_COMPLETE, SIGNAL_ERROR



def _db_path(argv):
    """The SQLite file of this run: both processes (producer and consumer) name it on argv."""
    return os.path.join(argv[argv.index("--tmp") + 1], argv[argv.index("--ns") + 1] + "-huey.db")


huey = SqliteHuey("bench", filename=_db_path(sys.argv))


@huey.task()
def noop():
    return None


@huey.task()
def started():
    return time.monotonic_ns() // 1000


@huey.task()
def sieve(limit):
    bl.sieve(limit)


@huey.task()
def sleep(ms):
    time.sleep(ms / 1000.0)


def consume(expect, chunk, workers):
    """The consumer: prints {"ready"}, and when `expect` tasks completed {"done", "t0", "checkpoints"}."""
    ends, errors = [], []
    lock = threading.Lock()
    consumer = Consumer(huey, workers=workers, worker_type="thread", periodic=False,
                        initial_delay=0.001, backoff=1.0, max_delay=0.001)

    @huey.signal(SIGNAL_COMPLETE)
    def complete(signal, task, *args):
        with lock:
            ends.append(time.time())
            if len(ends) == expect:
                report()

    @huey.signal(SIGNAL_ERROR)
    def error(signal, task, exc=None):
        print(json.dumps({"error": repr(exc)}), flush=True)

    def report():
        cps = bl.checkpoints_from_times(ends, t0, chunk)
        print(json.dumps({"done": ends[-1], "t0": t0, "checkpoints": cps}), flush=True)

    print(json.dumps({"ready": time.time()}), flush=True)
    t0 = time.time()
    consumer.run()


def start_consumer(args, expect):
    argv = [sys.executable, os.path.abspath(__file__), "consume", "--tmp", args.tmp, "--ns", args.ns,
            "--n", str(expect), "--chunk", str(args.chunk), "--concurrency", str(args.concurrency)]
    child = bl.LineChild(argv, os.path.join(args.tmp, "huey-consumer.stderr"))
    child.wait_for("ready", 60)
    return child


def backlog(args, enqueue_one, n):
    t = time.monotonic()
    for _ in range(n):
        enqueue_one()
    insert_s = time.monotonic() - t
    child = start_consumer(args, n)
    try:
        done = child.wait_for("done", max(120, n / 50))
    finally:
        child.stop()
    seconds = done["done"] - done["t0"]
    if huey.pending_count() != 0:
        bl.fail(f"{huey.pending_count()} tasks still pending after all completed")
    out = {"jobs": n, "seconds": seconds, "jobs_per_s": n / seconds, "insert_jobs_per_s": n / insert_s}
    if args.chunk:
        out["checkpoints"] = done["checkpoints"]
    return out


def drain(args):
    return backlog(args, noop, args.n)


def cpu(args):
    limit, ms = bl.calibrate(bl.sieve, args.target_ms)
    out = backlog(args, lambda: sieve(limit), args.n)
    out.update({"limit": limit, "per_job_ms": ms})
    return out


def latency(args):
    child = start_consumer(args, 0)
    try:
        samples = []
        for i in range(args.n + 3):
            sent = time.monotonic_ns() // 1000
            r = started()
            began = r.get(blocking=True, timeout=30, backoff=1.0, max_delay=0.0005)
            if began is None:
                bl.fail(f"no result within 30 s; see {child.stderr_path}")
            if i >= 3:
                samples.append(began - sent)
        return bl.latency_summary(samples)
    finally:
        child.stop()


def rss(args):
    child = start_consumer(args, 0)
    try:
        pid = child.proc.pid
        time.sleep(0.5)
        idle = bl.sample_memory([pid], seconds=1.0)
        for _ in range(args.n):
            sleep(args.sleep_ms)
        time.sleep(0.3)
        busy = bl.sample_memory([pid], seconds=1.0)
        return {"idle_rss_kib": idle["rss_kib"], "idle_hwm_kib": idle["hwm_kib"],
                "busy_rss_kib": busy["rss_kib"], "busy_hwm_kib": busy["hwm_kib"],
                "running": min(args.concurrency, args.n), "in_flight": args.n,
                "processes": busy["processes"]}
    finally:
        child.proc.kill()  # sleeping tasks: no graceful wait


WORKLOADS = {"drain": drain, "cpu": cpu, "latency": latency, "rss": rss}

if __name__ == "__main__":
    a = bl.parse_args(list(WORKLOADS) + ["consume"])
    if a.workload == "consume":
        consume(a.n, a.chunk, a.concurrency)
    else:
        bl.emit(WORKLOADS[a.workload](a))
