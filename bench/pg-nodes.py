#!/usr/bin/env python3
"""wasmq on PostgreSQL with 1 and 2 worker nodes: a no-op backlog drained (stdlib + psql).

Each round makes a fresh database, starts the nodes (`wasmq serve --database postgres://...`,
2 workers each), posts N no-op `bench-job` runs in batches of 1,000 due at one instant a little
ahead (so inserting does not overlap draining), and reads from the database when the first job
was due and the last one finished. Prints jobs/s per round as JSON lines, then the medians.

    bench/pg-nodes.py --wasmq target/release/wasmq --plugins DIR [--n 20000] [--runs 3]
                      [--admin postgres://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse


def psql(admin, db, sql):
    url = urllib.parse.urlparse(admin)._replace(path="/" + db).geturl()
    out = subprocess.run(["psql", url, "-Atc", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def start(wasmq, url, key, tmp, workers):
    err = open(os.path.join(tmp, f"node-{time.monotonic_ns()}.stderr"), "wb")
    argv = [wasmq, "serve", "--listen", "127.0.0.1:0", "--database", url, "--callback-key-file", key,
            "--workers", str(workers), "--cache-dir", os.path.join(tmp, "cache"),
            "--max-queued-jobs", "5000000", "--tenant-max-waiting", "5000000"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMQ_")}
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(err.name, "rb") as f:
            # Whole lines only: the server may be halfway through writing one.
            for line in f.read().decode(errors="replace").split("\n")[:-1]:
                if "listening on http://" in line:
                    return proc, line.split("listening on http://")[1].strip()
        if proc.poll() is not None:
            sys.exit(f"wasmq serve exited; see {err.name}")
        time.sleep(0.05)
    sys.exit(f"wasmq serve did not start; see {err.name}")


def call(addr, method, path, body=None, headers=None):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=120)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status >= 300:
        sys.exit(f"{method} {path} answered {r.status}: {data[:300]!r}")
    return json.loads(data) if data else None


def round_(args, nodes, n):
    tmp = tempfile.mkdtemp(prefix="wasmq-pg-nodes-")
    db = f"wasmq_bench_{os.getpid()}_{time.monotonic_ns()}"
    psql(args.admin, "postgres", f"CREATE DATABASE {db}")
    url = urllib.parse.urlparse(args.admin)._replace(path="/" + db).geturl()
    key = os.path.join(tmp, "callback-key")
    procs = []
    try:
        for _ in range(nodes):
            procs.append(start(args.wasmq, url, key, tmp, 2))
        api = procs[0][1]
        with open(os.path.join(args.plugins, "bench-job.wasm"), "rb") as f:
            module = call(api, "POST", "/v1/modules", f.read(), {"content-type": "application/wasm"})
        call(api, "PUT", "/v1/aliases/bench", json.dumps({"module": module["digest"]}),
             {"content-type": "application/json"})
        due_ms = int(time.time() * 1000) + max(3000, n // 4)
        due = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(due_ms / 1000)) + f".{due_ms % 1000:03d}Z"
        job = {"alias": "bench", "payload": {}, "run_at": due}
        for left in range(n, 0, -1000):
            body = json.dumps({"jobs": [job] * min(1000, left)})
            call(api, "POST", "/v1/batches", body, {"content-type": "application/json"})
        if time.time() * 1000 > due_ms:
            sys.exit("inserting took longer than the lead before the due time: raise it")
        deadline = time.monotonic() + 600
        while psql(args.admin, db, "SELECT count(*) FROM jobs WHERE status = 'succeeded'") != str(n):
            if time.monotonic() > deadline:
                sys.exit("the backlog did not drain in 10 minutes")
            time.sleep(0.2)
        last = int(psql(args.admin, db, "SELECT max(finished_at) FROM jobs"))
        return n / ((last - due_ms) / 1000)
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait()
        psql(args.admin, "postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wasmq", required=True)
    p.add_argument("--plugins", required=True, help="directory with bench-job.wasm")
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--admin", default="postgres://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args()
    medians = {}
    for nodes in (1, 2):
        rates = []
        for run in range(args.runs):
            rate = round_(args, nodes, args.n)
            rates.append(rate)
            print(json.dumps({"nodes": nodes, "run": run, "jobs": args.n, "jobs_per_s": round(rate)}), flush=True)
        medians[nodes] = statistics.median(rates)
    print(json.dumps({"median_jobs_per_s": {f"{k} node(s)": round(v) for k, v in medians.items()}}))


if __name__ == "__main__":
    main()
