// graphile-worker on PostgreSQL under the suite's adapter contract (common.mjs).
//
// This process is the producer and client; the worker is a second Node process (`worker`)
// running graphile-worker's `run()` with --concurrency 10 (jobs interleaved on one event loop;
// new jobs are announced with LISTEN/NOTIFY). Each run creates a fresh database on the local
// PostgreSQL and drops it afterwards. A finished job is deleted (graphile-worker keeps no
// results). Durability is the server's (the driver prints synchronous_commit and fsync).
// The worker is started after the backlog is in; the drain is timed from its first
// `worker:create` event (pool connected, schema checked) to the last `job:success`.

import pg from "pg";
import { EventEmitter } from "node:events";
import { makeWorkerUtils, run } from "graphile-worker";
import * as c from "./common.mjs";

const a = c.parseArgs();
const PG = process.env.BENCH_PG || "postgres://postgres@127.0.0.1:5432";
const dbName = `wasmq_bench_${a.ns.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}`;
const connectionString = `${PG}/${dbName}`;
const script = new URL(import.meta.url).pathname;

async function admin(sql) {
  const client = new pg.Client({ connectionString: `${PG}/postgres` });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const dropDb = () => admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);

// ---- the worker process -----------------------------------------------------------------

async function workerMain() {
  const expect = a.expect || 0;
  const ends = [];
  const began = new Map();
  let t0 = 0;
  const events = new EventEmitter();
  events.on("worker:create", () => {
    if (!t0) t0 = c.wallS();
  });
  events.on("job:success", ({ job }) => {
    if (job.task_identifier === "started") {
      process.send({ latency: began.get(job.id) });
      began.delete(job.id);
      return;
    }
    ends.push(c.wallS());
    if (ends.length === expect) process.send({ done: ends[ends.length - 1], t0, checkpoints: c.checkpoints(ends, t0, a.chunk) });
  });
  events.on("job:error", ({ job, error }) => process.send({ error: `${job.task_identifier}: ${error}` }));
  const taskList = {
    noop: async () => {},
    started: async (_payload, helpers) => {
      began.set(helpers.job.id, c.monoUs());
    },
    sieve: async (payload) => {
      c.sieve(payload.limit);
    },
    sleep: async (payload) => {
      await c.sleep(payload.ms);
    },
  };
  const runner = await run({ connectionString, concurrency: a.concurrency, noHandleSignals: true, taskList, events,
    logger: undefined });
  process.send({ ready: true });
  await runner.promise;
}

// ---- the producer and client ----------------------------------------------------------------

async function setup() {
  await dropDb();
  await admin(`CREATE DATABASE ${dbName}`);
  // Our own pool, so its errors have a handler: the database is dropped WITH (FORCE) after
  // each run, and a client the pool still holds then gets "terminating connection due to
  // administrator command"; unhandled, that event ended this process with exit 1.
  const pgPool = new pg.Pool({ connectionString });
  pgPool.on("error", () => {});
  const utils = await makeWorkerUtils({ pgPool });
  await utils.migrate();
  utils.pgPool = pgPool;
  return utils;
}

/** Stops the worker (waiting for its exit), closes the pool, then drops the database. */
async function teardown(utils, w) {
  if (w) await w.stop();
  await utils.release();
  await utils.pgPool.end();
  await dropDb();
}

function startWorker(expect) {
  return c.forkWorker(script, ["worker", "--tmp", a.tmp, "--ns", a.ns, "--concurrency", String(a.concurrency),
    "--expect", String(expect), "--chunk", String(a.chunk || 0)], `${a.tmp}/graphile-worker.stderr`);
}

async function addMany(utils, n, identifier, payload) {
  for (let i = 0; i < n; i += 1000) {
    const k = Math.min(1000, n - i);
    await utils.addJobs(Array.from({ length: k }, () => ({ identifier, payload })));
  }
}

async function count(utils) {
  return utils.withPgClient(async (client) => {
    const r = await client.query("SELECT count(*)::int AS n FROM graphile_worker.jobs");
    return r.rows[0].n;
  });
}

async function backlog(n, identifier, payload) {
  const utils = await setup();
  let w;
  try {
    const t = performance.now();
    await addMany(utils, n, identifier, payload);
    const insertS = (performance.now() - t) / 1000;
    w = startWorker(n);
    const done = await Promise.race([w.next("done", Math.max(120, n / 50)), w.next("error", 1e6).then((m) => {
      throw new Error(`a job failed: ${m.error}`);
    })]);
    // job:success fires when the task returned; the row's delete is committed in a batch just
    // after (as wasmq's finished_at is the run's end, committed with the next completions).
    const deadline = Date.now() + 30000;
    let left;
    while ((left = await count(utils)) !== 0) {
      if (Date.now() > deadline) throw new Error(`${left} jobs left in graphile_worker.jobs after ${n} succeeded`);
      await c.sleep(20);
    }
    const seconds = done.done - done.t0;
    const out = { jobs: n, seconds, jobs_per_s: n / seconds, insert_jobs_per_s: n / insertS };
    if (a.chunk) out.checkpoints = done.checkpoints;
    return out;
  } finally {
    await teardown(utils, w);
  }
}

async function latency() {
  const utils = await setup();
  const w = startWorker(0);
  try {
    await w.next("ready", 60);
    const samples = [];
    for (let i = 0; i < a.n + 3; i++) {
      const sent = c.monoUs();
      await utils.addJob("started", {});
      const m = await w.next("latency", 30);
      if (i >= 3) samples.push(m.latency - sent);
    }
    return c.latencySummary(samples);
  } finally {
    await teardown(utils, w);
  }
}

async function rss() {
  const utils = await setup();
  const w = startWorker(0);
  try {
    await w.next("ready", 60);
    await c.sleep(500);
    const idle = await c.sampleMemory(w.child.pid, 1.0);
    await addMany(utils, a.n, "sleep", { ms: a.sleepMs });
    await c.sleep(300);
    const busy = await c.sampleMemory(w.child.pid, 1.0);
    const running = await utils.withPgClient(async (client) => {
      const r = await client.query("SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE locked_at IS NOT NULL");
      return r.rows[0].n;
    });
    return c.memoryResult(idle, busy, running, a.n);
  } finally {
    await teardown(utils, w);
  }
}

c.adapterMain(a, { backlog, latency, rss, workerMain });
