// BullMQ on Redis under the suite's adapter contract (common.mjs).
//
// This process is the producer and client; the worker is a second Node process (`worker`) with
// one BullMQ Worker of --concurrency (2 or 50: jobs interleaved on one event loop, BullMQ's
// default in-process processor). Redis: database 11 of the local server with a prefix of this
// run's namespace, flushed before and after. Completed jobs are kept (BullMQ's default
// removeOnComplete: false). Redis's own persistence is what the server runs with (the driver
// prints it). The worker connects first and starts consuming (`worker.run()`) only when told,
// so a drain is timed from that call.

import { Queue, QueueEvents, Worker } from "bullmq";
import IORedis from "ioredis";
import * as c from "./common.mjs";

const DB = Number(process.env.BENCH_BULLMQ_DB || 11);
const a = c.parseArgs();
const connection = { host: "127.0.0.1", port: 6379, db: DB, maxRetriesPerRequest: null };
const prefix = `bench-${a.ns}`;
const NAME = "bench";
const script = new URL(import.meta.url).pathname;

async function flush() {
  const r = new IORedis({ ...connection });
  await r.flushdb();
  await r.quit();
}

// ---- the worker process -----------------------------------------------------------------

async function workerMain() {
  const expect = a.expect || 0;
  const ends = [];
  let t0 = 0;
  const processor = async (job) => {
    switch (job.name) {
      case "noop":
        return null;
      case "started":
        return { started: c.monoUs() };
      case "sieve":
        c.sieve(job.data.limit);
        return null;
      case "sleep":
        await c.sleep(job.data.ms);
        return null;
      default:
        throw new Error(`unknown job ${job.name}`);
    }
  };
  const worker = new Worker(NAME, processor, { connection, prefix, concurrency: a.concurrency, autorun: false });
  worker.on("completed", () => {
    ends.push(c.wallS());
    if (ends.length === expect) process.send({ done: ends[ends.length - 1], t0, checkpoints: c.checkpoints(ends, t0, a.chunk) });
  });
  worker.on("failed", (job, err) => process.send({ error: `${job && job.name}: ${err}` }));
  await worker.waitUntilReady();
  process.on("message", (m) => {
    if (m.go) {
      t0 = c.wallS();
      worker.run();
    }
  });
  process.send({ ready: true });
}

// ---- the producer and client ----------------------------------------------------------------

function startWorker(expect) {
  const w = c.forkWorker(script, ["worker", "--tmp", a.tmp, "--ns", a.ns, "--concurrency", String(a.concurrency),
    "--expect", String(expect), "--chunk", String(a.chunk || 0)], `${a.tmp}/bullmq-worker.stderr`);
  return w;
}

async function addMany(queue, n, name, data) {
  for (let i = 0; i < n; i += 1000) {
    const k = Math.min(1000, n - i);
    await queue.addBulk(Array.from({ length: k }, () => ({ name, data })));
  }
}

async function backlog(n, name, data) {
  await flush();
  const queue = new Queue(NAME, { connection, prefix });
  const w = startWorker(n);
  try {
    await w.next("ready", 60);
    const t = performance.now();
    await addMany(queue, n, name, data);
    const insertS = (performance.now() - t) / 1000;
    w.child.send({ go: true });
    const done = await Promise.race([w.next("done", Math.max(120, n / 50)), w.next("error", 1e6).then((m) => {
      throw new Error(`a job failed: ${m.error}`);
    })]);
    const counts = await queue.getJobCounts("completed", "failed", "waiting", "active");
    if (counts.completed !== n || counts.failed) throw new Error(`expected ${n} completed, found ${JSON.stringify(counts)}`);
    const seconds = done.done - done.t0;
    const out = { jobs: n, seconds, jobs_per_s: n / seconds, insert_jobs_per_s: n / insertS };
    if (a.chunk) out.checkpoints = done.checkpoints;
    return out;
  } finally {
    w.kill();
    await queue.close();
    await flush();
  }
}

async function latency() {
  await flush();
  const queue = new Queue(NAME, { connection, prefix });
  const events = new QueueEvents(NAME, { connection, prefix });
  const w = startWorker(0);
  try {
    await w.next("ready", 60);
    w.child.send({ go: true });
    await events.waitUntilReady();
    const samples = [];
    for (let i = 0; i < a.n + 3; i++) {
      const sent = c.monoUs();
      const job = await queue.add("started", {});
      const r = await job.waitUntilFinished(events, 30000);
      if (i >= 3) samples.push(r.started - sent);
    }
    return c.latencySummary(samples);
  } finally {
    w.kill();
    await events.close();
    await queue.close();
    await flush();
  }
}

async function rss() {
  await flush();
  const queue = new Queue(NAME, { connection, prefix });
  const w = startWorker(0);
  try {
    await w.next("ready", 60);
    w.child.send({ go: true });
    await c.sleep(500);
    const idle = await c.sampleMemory(w.child.pid, 1.0);
    await addMany(queue, a.n, "sleep", { ms: a.sleepMs });
    await c.sleep(300);
    const busy = await c.sampleMemory(w.child.pid, 1.0);
    const counts = await queue.getJobCounts("active");
    return c.memoryResult(idle, busy, counts.active, a.n);
  } finally {
    w.kill();
    await queue.close();
    await flush();
  }
}

c.adapterMain(a, { backlog, latency, rss, workerMain });
