#!/usr/bin/env python3
"""Celery with Redis under the suite's adapter contract (benchlib.py).

This process is the producer and client; the worker is `celery worker --pool prefork
--concurrency 2` (Celery's default pool: 2 worker PROCESSES under a main process), broker and
result backend on the local Redis (its own two databases, flushed before and after). Results
are stored (Celery's default once a backend is set): completion is read from them. The worker
starts consuming nothing (`-Q` on an unused queue) and is told to consume the backlog's queue
with `add_consumer` once every job is in; the drain is timed from its confirmation.
"""

import datetime
import json
import os
import subprocess
import sys
import time

import benchlib as bl

import redis
from celery import Celery

# Two Redis databases of their own (flushed before and after each workload); BullMQ uses another.
BROKER_DB = int(os.environ.get("BENCH_CELERY_DB", "12"))
RESULT_DB = BROKER_DB + 1
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
QUEUE = "bench"

app = Celery("celery_bench", broker=f"{REDIS}/{BROKER_DB}", backend=f"{REDIS}/{RESULT_DB}")
app.conf.update(task_default_queue=QUEUE, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)


@app.task(name="bench.noop")
def noop():
    return None


@app.task(name="bench.started")
def started():
    return time.monotonic_ns() // 1000


@app.task(name="bench.sieve")
def sieve(limit):
    bl.sieve(limit)


@app.task(name="bench.sleep")
def sleep(ms):
    time.sleep(ms / 1000.0)


def flush():
    for db in (BROKER_DB, RESULT_DB):
        redis.Redis.from_url(f"{REDIS}/{db}").flushdb()


class Worker:
    def __init__(self, args, consume_now):
        self.name = f"{args.ns}@bench"
        self.stderr_path = os.path.join(args.tmp, "celery-worker.stderr")
        self._err = open(self.stderr_path, "ab")
        argv = [sys.executable, "-m", "celery", "-A", "celery_bench", "worker", "--pool", "prefork",
                "--concurrency", str(args.concurrency), "--loglevel", os.environ.get("BENCH_CELERY_LOGLEVEL", "WARNING"), "-n", self.name,
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-Q", QUEUE if consume_now else f"{QUEUE}-idle"]
        here = os.path.dirname(os.path.abspath(__file__))
        env = dict(os.environ, PYTHONPATH=here + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(argv, stdout=self._err, stderr=self._err, env=env, cwd=args.tmp)
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[self.name], timeout=0.5):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                bl.fail(f"celery worker did not answer a ping; see {self.stderr_path}")

    def consume(self):
        replies = app.control.add_consumer(QUEUE, destination=[self.name], reply=True, timeout=5)
        if not replies:
            bl.fail(f"celery worker did not confirm add_consumer; see {self.stderr_path}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()  # warm shutdown waits for sleeping tasks; nothing to keep here
            self.proc.wait()
        self._err.close()


def results_db():
    return redis.Redis.from_url(f"{REDIS}/{RESULT_DB}")


def done_times(r):
    """date_done of every stored result, as unix seconds, sorted (and the failures)."""
    keys = [k for k in r.scan_iter(match="celery-task-meta-*", count=10000)]
    times, failures = [], []
    for i in range(0, len(keys), 5000):
        for raw in r.mget(keys[i:i + 5000]):
            meta = json.loads(raw)
            if meta["status"] != "SUCCESS":
                failures.append(meta)
            d = datetime.datetime.fromisoformat(meta["date_done"])
            if d.tzinfo is None:
                d = d.replace(tzinfo=datetime.timezone.utc)
            times.append(d.timestamp())
    return sorted(times), failures


def backlog(args, enqueue_one, n):
    flush()
    w = Worker(args, consume_now=False)
    try:
        t = time.monotonic()
        for _ in range(n):
            enqueue_one()
        insert_s = time.monotonic() - t
        r = results_db()
        # From the worker's confirmation on: what add_consumer itself takes (~0.4 s here, its
        # control round trip through Redis pub/sub) is not charged to the drain.
        w.consume()
        t0 = time.time()
        deadline = time.monotonic() + max(120, n / 50)
        while r.dbsize() < n:
            if w.proc.poll() is not None or time.monotonic() > deadline:
                bl.fail(f"{r.dbsize()} of {n} results after the deadline; see {w.stderr_path}")
            time.sleep(0.05)
        times, failures = done_times(r)
        if failures or len(times) != n:
            bl.fail(f"{len(failures)} tasks failed, {len(times)} results for {n} tasks: {failures[:1]}")
        seconds = times[-1] - t0
        out = {"jobs": n, "seconds": seconds, "jobs_per_s": n / seconds, "insert_jobs_per_s": n / insert_s}
        if args.chunk:
            out["checkpoints"] = bl.checkpoints_from_times(times, t0, args.chunk)
        return out
    finally:
        w.stop()
        flush()


def drain(args):
    return backlog(args, noop.delay, args.n)


def cpu(args):
    limit, ms = bl.calibrate(bl.sieve, args.target_ms)
    out = backlog(args, lambda: sieve.delay(limit), args.n)
    out.update({"limit": limit, "per_job_ms": ms})
    return out


def latency(args):
    flush()
    w = Worker(args, consume_now=True)
    try:
        samples = []
        for i in range(args.n + 3):
            sent = time.monotonic_ns() // 1000
            began = started.delay().get(timeout=30)
            if i >= 3:
                samples.append(began - sent)
        return bl.latency_summary(samples)
    finally:
        w.stop()
        flush()


def rss(args):
    flush()
    w = Worker(args, consume_now=True)
    try:
        time.sleep(0.5)
        idle = bl.sample_memory([w.proc.pid], seconds=1.0)
        for _ in range(args.n):
            sleep.delay(args.sleep_ms)
        time.sleep(0.3)
        busy = bl.sample_memory([w.proc.pid], seconds=1.0)
        return {"idle_rss_kib": idle["rss_kib"], "idle_hwm_kib": idle["hwm_kib"],
                "busy_rss_kib": busy["rss_kib"], "busy_hwm_kib": busy["hwm_kib"],
                "running": min(args.concurrency, args.n), "in_flight": args.n,
                "processes": busy["processes"]}
    finally:
        w.stop()
        flush()


WORKLOADS = {"drain": drain, "cpu": cpu, "latency": latency, "rss": rss}

if __name__ == "__main__":
    a = bl.parse_args(list(WORKLOADS))
    bl.emit(WORKLOADS[a.workload](a))
