#!/usr/bin/env python3
"""What one SQLite writer can do with wasmq's schema and statements, without wasmq.

Runs the real migrations, then the three writes every job costs -- the bulk
INSERT (json_each), the claim UPDATE ... RETURNING, and the completion
UPDATE ... FROM json_each -- on N jobs, with WAL and synchronous=NORMAL like
the server, and prints rows per second for each. It bounds what the job server
can reach end to end on one SQLite writer (see docs/benchmarks.md).

    python3 scripts/sqlite-row-costs.py [N]
"""
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 40000
COLS = ("id, tenant, alias, module, status, priority, queue, context, payload, attempt, max_attempts, limits, "
        "run_at, created_at, started_at, finished_at, lease_owner, result, error_kind, error_message, "
        "progress_percent, progress_message, logs, fuel_used, duration_ms, idempotency_key, batch_id, "
        "callback, callback_state, callback_attempts, callback_last_error, lease_token")

# The statements, as the server runs them (runtime/src/store/sqlite/jobs.rs `INSERT`, claim.rs `CLAIM`
# (one tenant's share) and leases.rs `COMPLETE`): the unit test `the_row_cost_script_mirrors_the_insert_claim_and_completion` fails
# when they drift apart.
INSERT = """WITH r AS MATERIALIZED (SELECT jsonb(value) AS v FROM json_each(?1))
  INSERT INTO jobs (id, tenant, alias, module, status, priority, queue, context, payload, max_attempts,
    limits, run_at, created_at, idempotency_key, idempotency_fingerprint, batch_id, callback, callback_state,
    attempt, lease_token, started_at, lease_owner, lease_expires_at, unique_key, trace)
  SELECT v ->> 'id', v ->> 'tenant', v ->> 'alias', v ->> 'module', v ->> 'status',
    v ->> 'priority', v ->> 'queue', v ->> 'context', v ->> 'payload', v ->> 'max_attempts',
    v ->> 'limits', v ->> 'run_at', v ->> 'created_at', v ->> 'idempotency_key',
    v ->> 'idempotency_fingerprint', v ->> 'batch_id', v ->> 'callback', v ->> 'callback_state',
    v ->> 'attempt', v ->> 'lease_token', v ->> 'started_at', v ->> 'lease_owner',
    v ->> 'lease_expires_at', v ->> 'unique_key',
    v ->> 'trace'
  FROM r"""

CLAIM = f"""UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_token = lease_token + 1,
    started_at = ?1, lease_owner = ?2, lease_expires_at = ?3, progress_percent = NULL, progress_message = NULL,
    fuel_used = NULL
  WHERE id IN (SELECT id FROM jobs WHERE tenant = ?5 AND status IN ('queued', 'scheduled', 'failed') AND run_at <= ?1
    AND attempt < max_attempts
    AND queue NOT IN (SELECT name FROM queues WHERE paused OR concurrency IS NOT NULL OR rate_max IS NOT NULL)
    AND ('@' || tenant || '/' || alias) NOT IN
      (SELECT name FROM queues WHERE paused OR concurrency IS NOT NULL OR rate_max IS NOT NULL)
    AND (?6 IS NULL OR queue IN (SELECT value FROM json_each(?6))) ORDER BY priority DESC, run_at, id LIMIT ?4)
  RETURNING {COLS}"""

COMPLETE = """WITH r AS MATERIALIZED (SELECT jsonb(value) AS v FROM json_each(?1))
  UPDATE jobs SET status = c.status, result = c.result, error_kind = c.error_kind,
    error_message = c.error_message, fuel_used = c.fuel_used, duration_ms = c.duration_ms, logs = c.logs,
    progress_percent = COALESCE(c.progress_percent, jobs.progress_percent),
    progress_message = COALESCE(c.progress_message, jobs.progress_message),
    finished_at = CASE WHEN c.terminal THEN c.finished_at ELSE NULL END,
    run_at = c.run_at, started_at = c.started_at, lease_owner = NULL, lease_expires_at = NULL,
    callback_state = CASE WHEN c.terminal AND jobs.callback IS NOT NULL THEN 'sending' ELSE jobs.callback_state END,
    callback_next_at = CASE WHEN c.terminal AND jobs.callback IS NOT NULL THEN c.finished_at
                            ELSE jobs.callback_next_at END
  FROM (SELECT v ->> 'id' AS id, v ->> 'token' AS token, v ->> 'owner' AS owner, v ->> 'status' AS status,
          v ->> 'terminal' AS terminal, v ->> 'result' AS result, v ->> 'error_kind' AS error_kind,
          v ->> 'error_message' AS error_message, v ->> 'fuel_used' AS fuel_used,
          v ->> 'duration_ms' AS duration_ms, v ->> 'logs' AS logs,
          v ->> 'progress_percent' AS progress_percent, v ->> 'progress_message' AS progress_message,
          v ->> 'started_at' AS started_at, v ->> 'finished_at' AS finished_at, v ->> 'run_at' AS run_at
        FROM r) AS c
  WHERE jobs.id = c.id AND jobs.status = 'running' AND jobs.lease_owner = c.owner AND jobs.lease_token = c.token
  RETURNING jobs.id, jobs.lease_token, jobs.batch_id, jobs.status"""

# In the completion's transaction (runtime/src/store/sqlite/usage.rs): the batch's usage summed per
# tenant-day. (Runs whose completion is fenced off are also recorded in usage_runs; applied ones, the hot
# path, are not: a completion applies once.)
COUNTERS = ["runs", "succeeded", "failed", "dead", "cancelled", "timed_out", "fuel_used", "run_ms",
            "callbacks_sent", "callbacks_delivered", "kv_writes", "http_requests", "http_bytes_sent",
            "http_bytes_received"]
USAGE_ADD = (f"""INSERT INTO usage (tenant, day, {', '.join(COUNTERS)})
  SELECT value ->> 'tenant', value ->> 'day', {', '.join(f"value ->> '{c}'" for c in COUNTERS)}
  FROM json_each(?1) WHERE true
  ON CONFLICT (tenant, day) DO UPDATE SET {', '.join(f'{c} = {c} + excluded.{c}' for c in COUNTERS)}""")


def runnable(sql):
    """The statement as this SQLite can run it: the server's SQLite (3.45+) reads each row from
    binary JSON taken out once (`jsonb(value)`); an older one (Python's own, often) has no
    jsonb() and reads the text, slower for the same result."""
    if sqlite3.sqlite_version_info < (3, 45, 0):
        return sql.replace("jsonb(value)", "value")
    return sql


def main():
    db = os.path.join(tempfile.mkdtemp(), "rows.db")
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    migrations = os.path.join(ROOT, "runtime", "migrations", "sqlite")
    for name in sorted(os.listdir(migrations)):
        con.executescript(open(os.path.join(migrations, name)).read())
    jobs = [{"id": str(uuid.uuid4()), "tenant": "default", "alias": "echo", "module": "blake3:" + "a" * 64,
             "status": "queued", "priority": 500, "queue": "default", "context": None,
             "payload": json.dumps({"b": 1, "i": k}), "max_attempts": 3, "limits": '{"timeout_ms":30000}',
             "run_at": 1, "created_at": 1, "idempotency_key": None, "idempotency_fingerprint": None,
             "batch_id": "batch-1", "callback": None, "callback_state": None,
             "attempt": 0, "lease_token": 0, "started_at": None, "lease_owner": None,
             "lease_expires_at": None, "unique_key": None} for k in range(N)]

    t = time.perf_counter()
    for k in range(0, N, 1000):
        con.execute("BEGIN")
        con.execute(runnable(INSERT), (json.dumps(jobs[k:k + 1000]),))
        con.execute("COMMIT")
    insert = time.perf_counter() - t

    claim = complete = 0.0
    done = 0
    while done < N:
        t = time.perf_counter()
        got = con.execute(CLAIM, (2, "node-1", 99999, 256, "default", None)).fetchall()
        claim += time.perf_counter() - t
        if not got:
            break
        for k in range(0, len(got), 32):
            outcomes = [{"id": r[0], "token": r[31], "owner": "node-1", "status": "succeeded", "terminal": True, "result": r[8],
                         "error_kind": None, "error_message": None, "fuel_used": 4906, "duration_ms": 0,
                         "logs": None, "progress_percent": None, "progress_message": None, "started_at": 3,
                         "finished_at": 4, "run_at": 1} for r in got[k:k + 32]]
            t = time.perf_counter()
            usage = {c: 0 for c in COUNTERS}
            usage.update(tenant="default", day="1970-01-01", runs=len(outcomes), succeeded=len(outcomes))
            con.execute("BEGIN")
            con.execute(runnable(COMPLETE), (json.dumps(outcomes),)).fetchall()
            con.execute(USAGE_ADD, (json.dumps([usage]),))
            con.execute("COMMIT")
            complete += time.perf_counter() - t
        done += len(got)

    per_job = (insert + claim + complete) / N * 1e6
    print(f"SQLite {sqlite3.sqlite_version}, {N} jobs")
    print(f"insert (1000 per transaction):  {N / insert:8.0f} rows/s")
    print(f"claim (256 per statement):      {N / claim:8.0f} rows/s")
    print(f"complete (32 per transaction, with usage):  {N / complete:8.0f} rows/s")
    print(f"all three: {per_job:.0f} us per job -> at most {1e6 / per_job:.0f} jobs/s on one writer")


if __name__ == "__main__":
    main()
