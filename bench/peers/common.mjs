// What the Node adapters (bullmq.mjs, graphile.mjs) share: the suite's adapter contract, as
// in benchlib.py. `ADAPTER WORKLOAD --n N --tmp DIR --ns NAME [...]` prints ONE JSON line (the
// last of stdout); anything else goes to stderr; a failure exits non-zero. bench/run copies
// these files next to the installed node_modules and runs them from there.

import { closeSync, openSync, readFileSync, readdirSync } from "node:fs";
import { fork } from "node:child_process";

export function parseArgs(argv = process.argv.slice(2)) {
  const a = { workload: argv[0], n: 100, concurrency: 2, payload: "noop", chunk: 0, sleepMs: 2000, targetMs: 10 };
  for (let i = 1; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const v = argv[i + 1];
    a[k] = ["n", "concurrency", "chunk", "sleepMs", "targetMs", "expect"].includes(k) ? Number(v) : v;
  }
  if (!a.tmp || !a.ns) fail("--tmp and --ns are required");
  return a;
}

export function emit(result) {
  process.stdout.write(JSON.stringify(result) + "\n");
}

export function log(...parts) {
  console.error(...parts);
}

export function fail(message) {
  console.error("error:", message);
  process.exit(1);
}

/** Wall clock in seconds with sub-millisecond digits (for drains: ends minus start). */
export const wallS = () => (performance.timeOrigin + performance.now()) / 1000;

/** CLOCK_MONOTONIC in microseconds: the same kernel clock in every process of the machine. */
export const monoUs = () => Number(process.hrtime.bigint() / 1000n);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function percentile(values, p) {
  const s = [...values].sort((x, y) => x - y);
  const k = Math.max(0, Math.min(s.length - 1, Math.round((p / 100) * s.length + 0.5) - 1));
  return s[k];
}

export function latencySummary(samplesUs) {
  return {
    samples: samplesUs.length,
    p50_ms: percentile(samplesUs, 50) / 1000,
    p99_ms: percentile(samplesUs, 99) / 1000,
    min_ms: Math.min(...samplesUs) / 1000,
    max_ms: Math.max(...samplesUs) / 1000,
  };
}

/** [[finished, seconds since t0], ...] every `chunk` completions of sorted end times. */
export function checkpoints(ends, t0, chunk) {
  const out = [];
  if (!chunk) return out;
  for (let i = chunk; i <= ends.length; i += chunk) out.push([i, ends[i - 1] - t0]);
  return out;
}

// ---- memory of a process tree -------------------------------------------------------

function status(pid) {
  const out = {};
  try {
    for (const line of readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
      const [k, v] = line.split(":");
      if (k === "VmRSS" || k === "VmHWM") out[k] = parseInt(v, 10);
    }
  } catch {
    /* gone */
  }
  return out;
}

function descendants(pid) {
  const parents = new Map();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${e}/stat`, "utf8");
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!parents.has(ppid)) parents.set(ppid, []);
    parents.get(ppid).push(Number(e));
  }
  const found = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop();
    found.push(p);
    todo.push(...(parents.get(p) || []));
  }
  return found;
}

export function treeMemory(pid) {
  let rss = 0;
  let hwm = 0;
  const ps = descendants(pid);
  for (const p of ps) {
    const s = status(p);
    rss += s.VmRSS || 0;
    hwm += s.VmHWM || 0;
  }
  return { rss_kib: rss, hwm_kib: hwm, processes: ps.length };
}

/** The largest summed RSS seen over `seconds`, with its HWM. */
export async function sampleMemory(pid, seconds = 1.5, every = 250) {
  let best = treeMemory(pid);
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    await sleep(every);
    const m = treeMemory(pid);
    if (m.rss_kib > best.rss_kib) best = m;
  }
  return best;
}

// ---- the worker child: JSON messages over the IPC channel ---------------------------

/**
 * Forks this same script as `worker ...` with its stderr going to `stderrPath` (a file: the
 * worker's own logging costs what it would in production, no pipe reader in this process);
 * `next(key, timeoutS)` resolves with its next IPC message holding `key`.
 */
export function forkWorker(script, args, stderrPath) {
  const fd = openSync(stderrPath, "a");
  const child = fork(script, args, { stdio: ["ignore", "ignore", fd, "ipc"] });
  closeSync(fd);
  const messages = [];
  const waiters = [];
  let exited = null;
  const stderr = () => {
    try {
      return readFileSync(stderrPath, "utf8").slice(-2000);
    } catch {
      return "";
    }
  };
  const settle = () => {
    for (const w of [...waiters]) {
      const i = messages.findIndex((m) => w.key in m);
      if (i >= 0) {
        waiters.splice(waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(messages.splice(i, 1)[0]);
      } else if (exited !== null) {
        waiters.splice(waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.reject(new Error(`worker exited (${exited}) before '${w.key}'; ${stderrPath}: ${stderr()}`));
      }
    }
  };
  child.on("message", (m) => {
    messages.push(m);
    settle();
  });
  child.on("exit", (code, sig) => {
    exited = code ?? sig;
    settle();
  });
  return {
    child,
    next(key, timeoutS) {
      return new Promise((resolve, reject) => {
        const w = { key, resolve, reject };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no '${key}' from the worker within ${timeoutS} s; ${stderrPath}: ${stderr()}`));
        }, timeoutS * 1000);
        waiters.push(w);
        settle();
      });
    },
    kill() {
      if (exited === null) child.kill("SIGKILL");
    },
    /** SIGKILLs the worker and resolves once it has exited (its connections are gone). */
    stop() {
      if (exited !== null) return Promise.resolve();
      const gone = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      return gone;
    },
  };
}

// ---- the same CPU job in JavaScript -------------------------------------------------

/** Counts the primes up to `limit` (plain sieve, one byte per number: the job of `primes`). */
export function sieve(limit) {
  const flags = new Uint8Array(limit + 1).fill(1);
  flags[0] = 0;
  flags[1] = 0;
  for (let i = 2; i * i <= limit; i++) {
    if (flags[i]) for (let j = i * i; j <= limit; j += i) flags[j] = 0;
  }
  let count = 0;
  for (let i = 0; i <= limit; i++) count += flags[i];
  return count;
}

/** The limit at which sieve(limit) takes about targetMs (median of 5, JIT warm), and that time. */
export function calibrate(targetMs) {
  const timed = (limit) => {
    const ts = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      sieve(limit);
      ts.push(performance.now() - t);
    }
    return ts.sort((x, y) => x - y)[2];
  };
  for (let i = 0; i < 20; i++) sieve(100000); // warm the JIT
  let limit = 100000;
  let ms = timed(limit);
  while (ms < targetMs / 2) {
    limit *= 2;
    ms = timed(limit);
  }
  for (let i = 0; i < 6; i++) {
    limit = Math.max(2, Math.floor((limit * targetMs) / ms));
    ms = timed(limit);
    if (Math.abs(ms - targetMs) / targetMs < 0.05) break;
  }
  return { limit, ms };
}

/** Runs main() and turns a rejection into a failure exit. */
export function runMain(main) {
  main().then(
    (r) => {
      if (r !== undefined) emit(r);
      process.exit(0);
    },
    (e) => fail(e && e.stack ? e.stack : String(e)),
  );
}

/** The memory workload's answer from two samples (idle, then with jobs in flight). */
export function memoryResult(idle, busy, running, inFlight) {
  return { idle_rss_kib: idle.rss_kib, idle_hwm_kib: idle.hwm_kib, busy_rss_kib: busy.rss_kib,
    busy_hwm_kib: busy.hwm_kib, running, in_flight: inFlight, processes: busy.processes };
}

/**
 * The adapter's entry point, alike for every Node peer: `worker` runs the worker process,
 * every other workload is built from the adapter's `backlog` (drain, cpu), `latency` and `rss`.
 */
export function adapterMain(a, { backlog, latency, rss, workerMain }) {
  const workloads = {
    drain: () => backlog(a.n, "noop", {}),
    cpu: async () => {
      const { limit, ms } = calibrate(a.targetMs);
      const out = await backlog(a.n, "sieve", { limit });
      return { ...out, limit, per_job_ms: ms };
    },
    latency,
    rss,
  };
  if (a.workload === "worker") {
    workerMain().catch((e) => fail(e.stack || String(e)));
  } else if (workloads[a.workload]) {
    runMain(workloads[a.workload]);
  } else {
    fail(`unknown workload ${a.workload}`);
  }
}
