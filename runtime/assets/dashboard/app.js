// The wasmq dashboard: a single page over the JSON API, with the caller's
// own token (kept in this tab's sessionStorage) and therefore exactly the
// caller's rights: what the API refuses, the page cannot do. Live updates
// come from GET /v1/events, read with fetch (EventSource cannot send the
// Authorization header) and resumed with Last-Event-ID after a drop.
// Preact + htm (vendor/htm-preact.js): components without a build step.
import { html, render, useState, useEffect, useRef, useCallback } from './vendor/htm-preact.js';

// ---------------------------------------------------------------- the API

const session = {
  token: sessionStorage.getItem('wasmq.token') || '',
  tenant: sessionStorage.getItem('wasmq.tenant') || '',
};

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function authHeaders(extra = {}) {
  const h = { ...extra };
  if (session.token) h['Authorization'] = `Bearer ${session.token}`;
  if (session.tenant) h['X-Wasmq-Tenant'] = session.tenant;
  return h;
}

async function api(method, path, body) {
  const init = { method, headers: authHeaders(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const r = await fetch(path, init);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (!r.ok) {
    const e = data && data.error ? data.error : { code: String(r.status), message: text || r.statusText };
    throw new ApiError(r.status, e.code, e.message);
  }
  return data;
}

const enc = encodeURIComponent;
function query(params) {
  const q = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  return q.length ? '?' + q.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&') : '';
}

// ---------------------------------------------------------------- events

// One stream for the page; views subscribe to it.
const feed = {
  listeners: new Set(),
  // The latest events, newest first, for views that open after they came.
  recent: [],
  statusListeners: new Set(),
  live: false,
  lastId: null,
  controller: null,
  subscribe(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); },
  onStatus(fn) { this.statusListeners.add(fn); fn(this.live); return () => this.statusListeners.delete(fn); },
  setLive(v) { this.live = v; this.statusListeners.forEach((fn) => fn(v)); },
  stop() { if (this.controller) this.controller.abort(); this.controller = null; this.setLive(false); },
  async start() {
    this.stop();
    const controller = new AbortController();
    this.controller = controller;
    let backoff = 500;
    while (!controller.signal.aborted) {
      try {
        const headers = authHeaders({ Accept: 'text/event-stream' });
        if (this.lastId) headers['Last-Event-ID'] = this.lastId;
        const r = await fetch('/v1/events', { headers, signal: controller.signal });
        if (!r.ok) throw new Error(`events: ${r.status}`);
        this.setLive(true);
        backoff = 500;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let at;
          while ((at = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, at);
            buffer = buffer.slice(at + 2);
            const frame = { id: null, event: 'message', data: '' };
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              const i = line.indexOf(':');
              const field = i < 0 ? line : line.slice(0, i);
              const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
              if (field === 'id') frame.id = v;
              else if (field === 'event') frame.event = v;
              else if (field === 'data') frame.data += v;
            }
            if (!frame.data) continue;
            if (frame.id) this.lastId = frame.id;
            let data = null;
            try { data = JSON.parse(frame.data); } catch (_) { continue; }
            this.recent.unshift({ event: frame.event, data, at: Date.now() });
            this.recent.length = Math.min(this.recent.length, 100);
            this.listeners.forEach((fn) => fn(frame.event, data));
          }
        }
      } catch (_) { /* dropped or refused: try again */ }
      this.setLive(false);
      if (controller.signal.aborted) return;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 10000);
    }
  },
};

// Calls `fn(event, data)` for each event while the component is mounted.
function useEvents(fn, deps) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => feed.subscribe((e, d) => ref.current(e, d)), deps || []);
}

// Runs `load` now and again at most every `ms` while `trigger` keeps firing.
function useThrottled(load, ms) {
  const timer = useRef(null);
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => { timer.current = null; load(); }, ms);
  }, [load, ms]);
}

// ---------------------------------------------------------------- helpers

const fmtTime = (s) => (s ? s.replace('T', ' ').replace('Z', '') : '');
const short = (id) => (id ? id.slice(-12) : '');
const Status = ({ s }) => html`<span class="status ${s}">${s}</span>`;
const Err = ({ e }) => (e ? html`<div class="error" role="alert">${e.message || String(e)}</div>` : null);
const canDispatch = (who) => who.scope === 'dispatch' || who.scope === 'admin';
const canAdmin = (who) => who.scope === 'admin';
const TERMINAL = ['succeeded', 'dead', 'cancelled'];
const EVENT_STATUS = { 'job.queued': 'queued', 'job.started': 'running', 'job.succeeded': 'succeeded',
  'job.failed': 'failed', 'job.dead': 'dead', 'job.cancelled': 'cancelled' };

// Loads `load()` now, whenever `deps` change, and after the event stream
// said events were missed (`lagged`: the page fell behind, or came back to a
// restarted server), since then no event may come to correct what it shows.
// A response is shown only while its `deps` are still the current ones: a
// slow answer for the page left behind (or a refresh a timer started there)
// never overwrites the page now shown.
function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null });
  const key = JSON.stringify(deps);
  const current = useRef(key);
  current.current = key;
  const reload = useCallback(async () => {
    let next;
    try { next = { data: await load(), error: null }; } catch (e) { next = (s) => ({ data: s.data, error: e }); }
    if (current.current === key) setState(next);
  }, deps);
  useEffect(() => { reload(); }, [reload]);
  useEffect(() => feed.subscribe((event) => { if (event === 'lagged') reload(); }), [reload]);
  return [state.data, state.error, reload];
}

// ---------------------------------------------------------------- login

function Login({ onIn }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(null);
  const submit = async (ev) => {
    ev.preventDefault();
    session.token = token.trim();
    session.tenant = '';
    try {
      const who = await api('GET', '/v1/whoami');
      sessionStorage.setItem('wasmq.token', session.token);
      sessionStorage.removeItem('wasmq.tenant');
      onIn(who);
    } catch (e) {
      session.token = '';
      setError(e.status === 401 ? new Error('That token is not valid here.') : e);
    }
  };
  return html`<div class="login panel">
    <h2>Sign in to wasmq</h2>
    <p class="muted">Paste an API token: a tenant's (its scope decides what you can do here) or the operator's.
      It stays in this browser tab only.</p>
    <${Err} e=${error} />
    <form onSubmit=${submit}>
      <input type="password" name="token" placeholder="token" autocomplete="off" value=${token}
        onInput=${(e) => setToken(e.target.value)} />
      <button type="submit">Sign in</button>
    </form>
  </div>`;
}

// ---------------------------------------------------------------- overview

function Overview({ who }) {
  const [queues, qError, reloadQueues] = useLoad(() => api('GET', '/v1/queues'), []);
  const today = new Date().toISOString().slice(0, 10);
  const [usage, , reloadUsage] = useLoad(() => api('GET', '/v1/usage' + query({ from: today, to: today })), []);
  const [nodes, , reloadNodes] = useLoad(() => (who.cluster ? api('GET', '/v1/nodes') : Promise.resolve(null)), []);
  // Seeded with what came before this view opened.
  const [recent, setRecent] = useState(() => feed.recent.slice(0, 60).map(({ event, data }) => ({ event, data })));
  const ends = useRef(feed.recent
    .filter((e) => ['job.succeeded', 'job.failed', 'job.dead', 'job.cancelled'].includes(e.event))
    .map((e) => ({ at: e.at, bad: e.event === 'job.failed' || e.event === 'job.dead' })));
  const [, tick] = useState(0);
  const [queueError, setQueueError] = useState(null);
  // Pausing holds the queue on every node (its jobs are still accepted).
  const toggleQueue = async (q) => {
    if (!q.paused && !confirm(`Pause queue ${q.name} on every node? Its jobs wait until it is resumed.`)) return;
    try {
      await api('POST', `/v1/queues/${enc(q.name)}/${q.paused ? 'resume' : 'pause'}`);
      setQueueError(null);
      reloadQueues();
    } catch (e) { setQueueError(e); }
  };
  const refresh = useThrottled(() => { reloadQueues(); reloadUsage(); }, 1000);
  useEvents((event, data) => {
    setRecent((r) => [{ event, data }, ...r].slice(0, 60));
    if (['job.succeeded', 'job.failed', 'job.dead', 'job.cancelled'].includes(event)) {
      ends.current.push({ at: Date.now(), bad: event === 'job.failed' || event === 'job.dead' });
    }
    refresh();
  });
  useEffect(() => {
    const t = setInterval(() => {
      ends.current = ends.current.filter((e) => Date.now() - e.at < 60000);
      tick((n) => n + 1);
      if (who.cluster) reloadNodes();
    }, 2000);
    return () => clearInterval(t);
  }, []);
  const lastMinute = ends.current.filter((e) => Date.now() - e.at < 60000);
  const failedShare = lastMinute.length ? Math.round((100 * lastMinute.filter((e) => e.bad).length) / lastMinute.length) : 0;
  const day = (usage && usage.days) || [];
  const sum = (k) => day.reduce((n, d) => n + (d[k] || 0), 0);
  const runs = sum('runs');
  const dayFailed = runs ? Math.round((100 * (sum('failed') + sum('dead'))) / runs) : 0;
  const qs = (queues && queues.queues) || [];
  const waiting = qs.reduce((n, q) => n + q.depth.queued + q.depth.scheduled + q.depth.retrying, 0);
  const running = qs.reduce((n, q) => n + q.depth.running, 0);
  const upNodes = nodes ? nodes.nodes.filter((n) => n.status === 'up') : [];
  const slots = upNodes.reduce((n, x) => n + x.slots, 0);
  const busy = upNodes.reduce((n, x) => n + x.busy, 0);
  return html`
    <div class="cards">
      <div class="card"><div class="l">Jobs ended / min (live)</div><div class="n" data-testid="throughput">${lastMinute.length}</div></div>
      <div class="card"><div class="l">Failed, last minute</div><div class="n">${failedShare}%</div></div>
      <div class="card"><div class="l">Failed today</div><div class="n">${dayFailed}%</div><div class="muted">${runs} runs</div></div>
      <div class="card"><div class="l">Waiting</div><div class="n" data-testid="waiting">${waiting}</div></div>
      <div class="card"><div class="l">Running</div><div class="n">${running}</div></div>
      ${who.cluster && html`<div class="card"><div class="l">Workers busy</div><div class="n">${busy} / ${slots}</div>
        <div class="muted">${upNodes.length} node(s) up</div></div>`}
    </div>
    <div class="panel"><h2>Queues</h2><${Err} e=${qError || queueError} />
      <table><thead><tr><th>queue</th><th class="num">queued</th><th class="num">scheduled</th><th class="num">retrying</th>
        <th class="num">running</th><th>paused</th><th>limits</th>${who.cluster && html`<th></th>`}</tr></thead>
      <tbody data-testid="queues">${qs.map((q) => html`<tr data-queue=${q.name}><td>${q.name}</td><td class="num">${q.depth.queued}</td><td class="num">${q.depth.scheduled}</td>
        <td class="num">${q.depth.retrying}</td><td class="num">${q.depth.running}</td><td>${q.paused ? 'paused' : ''}</td>
        <td class="mono">${q.limits ? JSON.stringify(q.limits) : ''}</td>
        ${who.cluster && html`<td><button class="plain" onClick=${() => toggleQueue(q)}>${q.paused ? 'Resume' : 'Pause'}</button></td>`}</tr>`)}
      ${qs.length === 0 && html`<tr><td colspan="8" class="muted">No unfinished jobs.</td></tr>`}</tbody></table>
    </div>
    <div class="panel"><h2>Live events</h2>
      <div class="feed"><table><tbody data-testid="feed">${recent.map(({ event, data }) => html`<tr>
        <td class="mono muted">${(data.at || '').slice(11, 23)}</td><td>${event}</td>
        <td>${data.job ? html`<a href="#/jobs/${data.job}" class="mono">${short(data.job)}</a>` : data.batch || data.node || ''}</td>
        <td>${data.alias || ''}</td><td class="muted">${data.message || data.error || ''}</td></tr>`)}</tbody></table>
      ${recent.length === 0 && html`<p class="muted">Waiting for events...</p>`}</div>
    </div>`;
}

// ---------------------------------------------------------------- jobs

function Jobs({ who, params }) {
  const [filter, setFilter] = useState({ status: params.get('status') || '', alias: params.get('alias') || '',
    queue: params.get('queue') || '', context: params.get('context') || '', batch: params.get('batch') || '' });
  const [cursors, setCursors] = useState(['']);
  const cursor = cursors[cursors.length - 1];
  const [page, error, reload] = useLoad(
    () => api('GET', '/v1/jobs' + query({ ...filter, limit: 50, cursor })), [JSON.stringify(filter), cursor]);
  const [rows, setRows] = useState([]);
  const [note, setNote] = useState(null);
  const [actionError, setActionError] = useState(null);
  useEffect(() => { if (page) setRows(page.jobs); }, [page]);
  const refresh = useThrottled(reload, 500);
  useEvents((event, data) => {
    if (!data.job) return;
    const status = EVENT_STATUS[event];
    if (status) setRows((rs) => rs.map((j) => (j.id === data.job ? { ...j, status, attempt: data.attempt || j.attempt } : j)));
    // New jobs appear on the first page.
    if (event === 'job.queued' && cursor === '' && (!filter.alias || filter.alias === data.alias)
      && (!filter.queue || filter.queue === data.queue) && (!filter.batch || filter.batch === data.batch)) refresh();
  });
  const apply = (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(ev.target).entries());
    setFilter(f);
    setCursors(['']);
    location.hash = '#/jobs' + query(f);
  };
  const bulk = async (action) => {
    const body = {};
    if (filter.status) body.status = [filter.status];
    for (const k of ['alias', 'queue', 'context']) if (filter[k]) body[k] = filter[k];
    if (filter.batch) { setActionError(new Error('Bulk actions take status, alias, queue and context, not a batch.')); return; }
    if (!confirm(`${action} every job matching this filter?`)) return;
    try {
      const done = await api('POST', `/v1/jobs/${action}`, body);
      setNote(`${action}: ${done.affected} job(s)`);
      setActionError(null);
      reload();
    } catch (e) { setActionError(e); }
  };
  return html`<div class="panel">
    <h2>Jobs</h2>
    <form class="filters" onSubmit=${apply}>
      <label>status<select name="status" value=${filter.status}>
        ${['', 'queued', 'scheduled', 'running', 'succeeded', 'failed', 'dead', 'cancelled'].map((s) => html`<option value=${s}>${s || 'any'}</option>`)}
      </select></label>
      <label>alias<input name="alias" value=${filter.alias} /></label>
      <label>queue<input name="queue" value=${filter.queue} /></label>
      <label>context<input name="context" value=${filter.context} /></label>
      <label>batch<input name="batch" value=${filter.batch} size="14" /></label>
      <button type="submit">Filter</button>
      ${canDispatch(who) && html`<button type="button" class="plain" onClick=${() => bulk('retry')}>Retry all matching</button>
        <button type="button" class="plain" onClick=${() => bulk('cancel')}>Cancel all matching</button>`}
    </form>
    <${Err} e=${error || actionError} />
    ${note && html`<div class="note">${note}</div>`}
    <table><thead><tr><th>id</th><th>alias</th><th>queue</th><th>status</th><th class="num">attempt</th><th>created</th>
      <th class="num">ms</th><th class="num">fuel</th></tr></thead>
    <tbody data-testid="jobs">${rows.map((j) => html`<tr class="click" data-job=${j.id} onClick=${() => { location.hash = `#/jobs/${j.id}`; }}>
      <td class="mono">${short(j.id)}</td><td>${j.alias}</td><td>${j.queue}</td><td><${Status} s=${j.status} /></td>
      <td class="num">${j.attempt}/${j.max_attempts}</td><td class="mono">${fmtTime(j.created_at)}</td>
      <td class="num">${j.duration_ms ?? ''}</td><td class="num">${j.fuel_used ?? ''}</td></tr>`)}
    ${rows.length === 0 && html`<tr><td colspan="8" class="muted">No jobs match.</td></tr>`}</tbody></table>
    <div class="row" style="margin-top:10px">
      <button class="plain" disabled=${cursors.length === 1} onClick=${() => setCursors((c) => c.slice(0, -1))}>Newer</button>
      <button class="plain" disabled=${!page || !page.next_cursor} onClick=${() => setCursors((c) => [...c, page.next_cursor])}>Older</button>
    </div>
  </div>`;
}

function Job({ who, id }) {
  const [job, error, reload] = useLoad(() => api('GET', `/v1/jobs/${enc(id)}`), [id]);
  const [seen, setSeen] = useState([]);
  const [actionError, setActionError] = useState(null);
  const refresh = useThrottled(reload, 300);
  useEvents((event, data) => {
    if (data.job !== id) return;
    setSeen((s) => [...s, { event, data }]);
    refresh();
  }, [id]);
  const act = async (action) => {
    try { await api('POST', `/v1/jobs/${enc(id)}/${action}`, {}); setActionError(null); reload(); } catch (e) { setActionError(e); }
  };
  if (!job) return html`<${Err} e=${error} />`;
  const p = job.progress;
  return html`<div class="panel">
    <div class="row"><h2 style="margin:0">Job <span class="mono">${job.id}</span></h2> <${Status} s=${job.status} />
      ${canDispatch(who) && !TERMINAL.includes(job.status) && html`<button class="danger" onClick=${() => act('cancel')}>Cancel</button>`}
      ${canDispatch(who) && ['failed', 'dead', 'cancelled'].includes(job.status) && html`<button onClick=${() => act('retry')}>Retry</button>`}
    </div>
    <${Err} e=${actionError} />
    <dl style="margin-top:10px">
      <dt>alias</dt><dd>${job.alias} <span class="mono muted">${job.module}</span></dd>
      <dt>queue / priority</dt><dd>${job.queue} / ${job.priority}</dd>
      <dt>context</dt><dd>${job.context || ''}</dd>
      <dt>attempt</dt><dd>${job.attempt} of ${job.max_attempts}</dd>
      <dt>progress</dt><dd>${p ? html`<span class="bar"><i style="width:${p.percent}%"></i></span> ${p.percent}% ${p.message}` : ''}</dd>
      <dt>fuel / time</dt><dd>${job.fuel_used ?? ''} fuel, ${job.duration_ms ?? ''} ms (limits: ${job.limits.fuel} fuel, ${job.limits.timeout_ms} ms)</dd>
      <dt>batch</dt><dd>${job.batch_id ? html`<a href="#/batches/${job.batch_id}">${job.batch_id}</a>` : ''}</dd>
    </dl>
    <h2>Timeline</h2>
    <ul class="timeline" data-testid="timeline">
      <li>created <span class="mono">${fmtTime(job.created_at)}</span></li>
      <li>due <span class="mono">${fmtTime(job.run_at)}</span></li>
      ${job.started_at && html`<li>last attempt started <span class="mono">${fmtTime(job.started_at)}</span></li>`}
      ${job.finished_at && html`<li>finished <span class="mono">${fmtTime(job.finished_at)}</span></li>`}
      ${seen.map(({ event, data }) => html`<li>${event} <span class="mono">${fmtTime(data.at)}</span> ${data.attempt ? `attempt ${data.attempt}` : ''} ${data.message || ''}</li>`)}
    </ul>
    <h2>Payload</h2><pre>${JSON.stringify(job.payload, null, 2)}</pre>
    ${job.result !== null && job.result !== undefined && html`<h2>Result</h2><pre data-testid="result">${JSON.stringify(job.result, null, 2)}</pre>`}
    ${job.error && html`<h2>Error</h2><pre>${job.error.kind}: ${job.error.message}</pre>`}
    ${job.logs && html`<h2>Logs</h2><pre>${(job.logs.log || []).map((l) => `[${l.level}] ${l.message}`).join('\n')}${job.logs.stdout ? '\n--- stdout\n' + job.logs.stdout : ''}${job.logs.stderr ? '\n--- stderr\n' + job.logs.stderr : ''}</pre>`}
  </div>`;
}

// ---------------------------------------------------------------- batches

function Batches({ id }) {
  return id ? html`<${Batch} id=${id} key=${id} />` : html`<${BatchList} />`;
}

// The tenant's batches, newest first: each row is the batch's own record (no
// job counting); open batches on the page get their counts as events arrive.
function BatchList() {
  const [cursors, setCursors] = useState(['']);
  const cursor = cursors[cursors.length - 1];
  const [page, error, reload] = useLoad(() => api('GET', '/v1/batches' + query({ limit: 25, cursor })), [cursor]);
  const [counts, setCounts] = useState({});
  const [input, setInput] = useState('');
  const refresh = useThrottled(reload, 500);
  const open = page ? page.batches.filter((b) => !b.done).map((b) => b.id) : [];
  const loadCounts = useThrottled(async () => {
    const got = await Promise.all(open.map((b) => api('GET', `/v1/batches/${enc(b)}`).catch(() => null)));
    setCounts(Object.fromEntries(got.filter(Boolean).map((b) => [b.id, b.counts])));
  }, 1000);
  useEffect(() => { if (open.length) loadCounts(); }, [page]);
  useEvents((event, data) => {
    if (event === 'batch.done' || (event === 'job.queued' && data.batch && cursor === '')) refresh();
    else if (data.batch && open.includes(data.batch)) loadCounts();
  }, [page]);
  return html`<div class="panel"><h2>Batches</h2>
    <form class="filters" onSubmit=${(e) => { e.preventDefault(); location.hash = `#/batches/${input.trim()}`; }}>
      <label>batch id<input value=${input} onInput=${(e) => setInput(e.target.value)} size="40" /></label><button>Show</button>
    </form>
    <${Err} e=${error} />
    <table><thead><tr><th>id</th><th>created</th><th class="num">jobs</th><th>state</th><th>callback</th></tr></thead>
    <tbody data-testid="batches">${(page ? page.batches : []).map((b) => html`<tr class="click" data-batch=${b.id}
        onClick=${() => { location.hash = `#/batches/${b.id}`; }}>
      <td class="mono">${short(b.id)}</td><td class="mono">${fmtTime(b.created_at)}</td><td class="num">${b.total}</td>
      <td>${b.done ? html`<${Status} s="succeeded" /> done ${fmtTime(b.done_at)}`
        : html`<span class="muted">open</span> ${Object.entries(counts[b.id] || {}).filter(([, n]) => n).map(([s, n]) => html`<${Status} s=${s} /> ${n} `)}`}</td>
      <td>${b.callback ? b.callback.state : ''}</td></tr>`)}
    ${page && page.batches.length === 0 && html`<tr><td colspan="5" class="muted">No batches yet.</td></tr>`}</tbody></table>
    <div class="row" style="margin-top:10px">
      <button class="plain" disabled=${cursors.length === 1} onClick=${() => setCursors((c) => c.slice(0, -1))}>Newer</button>
      <button class="plain" disabled=${!page || !page.next_cursor} onClick=${() => setCursors((c) => [...c, page.next_cursor])}>Older</button>
    </div>
  </div>`;
}

function Batch({ id }) {
  const [batch, error, reload] = useLoad(() => api('GET', `/v1/batches/${enc(id)}`), [id]);
  const refresh = useThrottled(reload, 500);
  useEvents((event, data) => { if (data.batch === id) refresh(); }, [id]);
  return html`<div class="panel"><h2>Batch <span class="mono">${id}</span></h2>
    <${Err} e=${error} />
    ${batch && html`<dl><dt>id</dt><dd class="mono">${batch.id}</dd><dt>created</dt><dd>${fmtTime(batch.created_at)}</dd>
      <dt>jobs</dt><dd>${batch.total}</dd>
      <dt>done</dt><dd data-testid="batch-done">${batch.done ? 'yes' : 'no'}</dd>
      <dt>counts</dt><dd>${Object.entries(batch.counts).filter(([, n]) => n).map(([s, n]) => html`<${Status} s=${s} /> ${n} `)}</dd>
      <dt>callback</dt><dd>${batch.callback ? `${batch.callback.url} (${batch.callback.state})` : 'none'}</dd></dl>
      <a href="#/jobs${query({ batch: batch.id })}">the batch's jobs</a> · <a href="#/batches">all batches</a>`}
  </div>`;
}

// ---------------------------------------------------------------- modules and aliases

function Aliases({ who, name }) {
  const [aliases, error] = useLoad(() => api('GET', '/v1/aliases'), []);
  const [modules] = useLoad(() => api('GET', '/v1/modules'), []);
  return html`${name ? html`<${Alias} who=${who} name=${name} key=${name} />` : null}
    <div class="panel"><h2>Aliases</h2><${Err} e=${error} />
    <table><thead><tr><th>name</th><th class="num">version</th><th>module</th><th>updated</th></tr></thead>
    <tbody>${(aliases || []).map((a) => html`<tr class="click" onClick=${() => { location.hash = `#/aliases/${a.name}`; }}>
      <td>${a.name}</td><td class="num">${a.version}</td><td class="mono">${a.module}</td><td class="mono">${fmtTime(a.updated_at)}</td></tr>`)}</tbody></table></div>
    <div class="panel"><h2>Modules</h2>
    <table><thead><tr><th>digest</th><th>kind</th><th class="num">bytes</th><th>uploaded</th></tr></thead>
    <tbody>${(modules || []).map((m) => html`<tr><td class="mono">${m.digest}</td><td>${m.kind}</td><td class="num">${m.size}</td>
      <td class="mono">${fmtTime(m.created_at)}</td></tr>`)}</tbody></table></div>`;
}

function Alias({ who, name }) {
  const [alias, error, reload] = useLoad(() => api('GET', `/v1/aliases/${enc(name)}`), [name]);
  const [actionError, setActionError] = useState(null);
  const rollback = async () => {
    try { await api('POST', `/v1/aliases/${enc(name)}/rollback`, {}); setActionError(null); reload(); } catch (e) { setActionError(e); }
  };
  if (!alias) return html`<${Err} e=${error} />`;
  const c = alias.config || {};
  return html`<div class="panel"><div class="row"><h2 style="margin:0">Alias ${alias.name}</h2>
      <span class="muted">version ${alias.version}</span>
      ${canAdmin(who) && (alias.history || []).length > 1 && html`<button class="plain" onClick=${rollback}>Roll back</button>`}</div>
    <${Err} e=${actionError} />
    <dl style="margin-top:10px"><dt>module</dt><dd class="mono">${alias.module}</dd>
      <dt>network</dt><dd>${(c.allowed_hosts || []).join(', ') || 'none'}</dd>
      <dt>configuration</dt><dd class="mono">${c.config ? Object.keys(c.config).join(', ') : 'none'}</dd>
      <dt>secrets</dt><dd class="mono">${c.secrets ? c.secrets.join(', ') : 'none'}</dd>
      <dt>key-value store</dt><dd>${c.kv_store || 'none'}</dd>
      <dt>limits</dt><dd class="mono">${alias.limits ? JSON.stringify(alias.limits) : 'none'}</dd></dl>
    <h2>History</h2><table><thead><tr><th class="num">version</th><th>module</th><th>created</th></tr></thead>
    <tbody>${(alias.history || []).map((v) => html`<tr><td class="num">${v.version}</td><td class="mono">${v.module}</td><td class="mono">${fmtTime(v.created_at)}</td></tr>`)}</tbody></table>
  </div>`;
}

// ---------------------------------------------------------------- schedules

function Schedules({ who }) {
  const [cursors, setCursors] = useState(['']);
  const cursor = cursors[cursors.length - 1];
  const [page, error, reload] = useLoad(() => api('GET', '/v1/schedules' + query({ limit: 50, cursor })), [cursor]);
  const [actionError, setActionError] = useState(null);
  const refresh = useThrottled(reload, 1000);
  // A firing queues its job: the schedule's next due time and last job moved.
  useEvents((event, data) => { if (event === 'job.queued' && data.reason === 'scheduled') refresh(); });
  const toggle = async (s) => {
    try {
      await api('POST', `/v1/schedules/${enc(s.name)}/${s.enabled ? 'pause' : 'resume'}`);
      setActionError(null);
      reload();
    } catch (e) { setActionError(e); }
  };
  const rows = page ? page.schedules : [];
  return html`<div class="panel"><h2>Schedules</h2>
    <${Err} e=${error || actionError} />
    <table><thead><tr><th>name</th><th>alias</th><th>when</th><th>queue</th><th>state</th><th>next due</th>
      <th>last job</th><th>last error</th>${canAdmin(who) && html`<th></th>`}</tr></thead>
    <tbody data-testid="schedules">${rows.map((s) => html`<tr data-schedule=${s.name}>
      <td>${s.name}</td><td><a href="#/aliases/${s.alias}">${s.alias}</a></td>
      <td class="mono">${s.cron ? `${s.cron}${s.timezone ? ` (${s.timezone})` : ''}` : `every ${s.every_ms} ms`}</td>
      <td>${s.queue || ''}</td><td>${s.enabled ? 'active' : 'paused'}</td>
      <td class="mono">${fmtTime(s.next_due[0])}</td>
      <td>${s.last_job_id ? html`<a href="#/jobs/${s.last_job_id}" class="mono">${short(s.last_job_id)}</a>` : ''}
        <span class="muted">${fmtTime(s.last_due_at)}</span></td>
      <td class="error-text">${s.last_error || ''}</td>
      ${canAdmin(who) && html`<td><button class="plain" onClick=${() => toggle(s)}>${s.enabled ? 'Pause' : 'Resume'}</button></td>`}</tr>`)}
    ${page && rows.length === 0 && html`<tr><td colspan="9" class="muted">No schedules. Put one with <span class="mono">PUT /v1/schedules/{name}</span> or <span class="mono">wasmq schedule set</span>.</td></tr>`}</tbody></table>
    <div class="row" style="margin-top:10px">
      <button class="plain" disabled=${cursors.length === 1} onClick=${() => setCursors((c) => c.slice(0, -1))}>Newer</button>
      <button class="plain" disabled=${!page || !page.next_cursor} onClick=${() => setCursors((c) => [...c, page.next_cursor])}>Older</button>
    </div>
  </div>`;
}

// ---------------------------------------------------------------- nodes and tenants

function Nodes() {
  const [nodes, error, reload] = useLoad(() => api('GET', '/v1/nodes'), []);
  useEffect(() => { const t = setInterval(reload, 2000); return () => clearInterval(t); }, [reload]);
  useEvents((event) => { if (event.startsWith('node.') || event.startsWith('worker.')) reload(); });
  return html`<div class="panel"><h2>Nodes</h2><${Err} e=${error} />
    <table><thead><tr><th>id</th><th>role</th><th>status</th><th>host</th><th class="num">busy / slots</th><th>queues</th><th>heartbeat</th><th>version</th></tr></thead>
    <tbody>${((nodes && nodes.nodes) || []).map((n) => html`<tr><td class="mono">${n.id}</td><td>${n.role}</td><td>${n.status}</td>
      <td>${n.host}</td><td class="num">${n.busy} / ${n.slots}</td><td>${(n.queues || ['all']).join(', ')}</td>
      <td class="num">${Math.round(n.heartbeat_age_ms / 100) / 10} s ago</td><td>${n.version}</td></tr>`)}</tbody></table></div>`;
}

function UsageChart({ days }) {
  // Runs per day, succeeded over failed and dead, every tenant together.
  const byDay = {};
  for (const d of days) {
    const e = (byDay[d.day] = byDay[d.day] || { ok: 0, bad: 0 });
    e.ok += d.succeeded; e.bad += d.failed + d.dead;
  }
  const keys = Object.keys(byDay).sort();
  const max = Math.max(1, ...keys.map((k) => byDay[k].ok + byDay[k].bad));
  const w = 28, h = 120;
  return html`<svg width=${keys.length * w + 40} height=${h + 30} role="img" aria-label="runs per day">
    ${keys.map((k, i) => {
      const ok = (byDay[k].ok / max) * h, bad = (byDay[k].bad / max) * h;
      return html`<g transform="translate(${i * w + 30},0)">
        <rect y=${h - ok - bad} width=${w - 6} height=${bad} fill="#c53030"><title>${k}: ${byDay[k].bad} failed or dead</title></rect>
        <rect y=${h - ok} width=${w - 6} height=${ok} fill="#1f8a4c"><title>${k}: ${byDay[k].ok} succeeded</title></rect>
        <text y=${h + 12}>${k.slice(8)}</text></g>`;
    })}
    <text x="0" y="10">${max}</text><text x="0" y=${h}>0</text></svg>`;
}

function Tenants() {
  const [tenants, error] = useLoad(() => api('GET', '/v1/tenants'), []);
  const from = new Date(Date.now() - 13 * 86400000).toISOString().slice(0, 10);
  const [usage, usageError] = useLoad(() => api('GET', '/v1/usage' + query({ from })), []);
  const days = (usage && usage.days) || [];
  const total = (t, k) => days.filter((d) => d.tenant === t).reduce((n, d) => n + (d[k] || 0), 0);
  const list = Array.isArray(tenants) ? tenants : (tenants && tenants.tenants) || [];
  return html`<div class="panel"><h2>Runs per day, last 14 days</h2><${Err} e=${usageError} /><${UsageChart} days=${days} /></div>
    <div class="panel"><h2>Tenants</h2><${Err} e=${error} />
    <table><thead><tr><th>tenant</th><th class="num">weight</th><th class="num">runs (14 d)</th><th class="num">failed+dead</th>
      <th class="num">fuel</th><th>quotas</th></tr></thead>
    <tbody>${list.map((t) => html`<tr><td>${t.id}</td><td class="num">${t.weight}</td><td class="num">${total(t.id, 'runs')}</td>
      <td class="num">${total(t.id, 'failed') + total(t.id, 'dead')}</td><td class="num">${total(t.id, 'fuel_used')}</td>
      <td class="mono">${JSON.stringify(t.effective_quotas)}</td></tr>`)}</tbody></table></div>`;
}

// ---------------------------------------------------------------- the page

function route() {
  const [path, q] = (location.hash.slice(1) || '/').split('?');
  return { parts: path.split('/').filter(Boolean), params: new URLSearchParams(q || '') };
}

function App() {
  const [who, setWho] = useState(null);
  const [checking, setChecking] = useState(!!session.token);
  const [r, setRoute] = useState(route());
  const [live, setLive] = useState(false);
  const [tenants, setTenants] = useState([]);
  useEffect(() => { const on = () => setRoute(route()); addEventListener('hashchange', on); return () => removeEventListener('hashchange', on); }, []);
  useEffect(() => feed.onStatus(setLive), []);
  useEffect(() => {
    if (!session.token) return;
    api('GET', '/v1/whoami').then(setWho, () => { session.token = ''; sessionStorage.removeItem('wasmq.token'); })
      .finally(() => setChecking(false));
  }, []);
  useEffect(() => {
    if (!who) return;
    // Another caller's events are never shown to this one.
    feed.lastId = null;
    feed.recent = [];
    feed.start();
    if (who.caller === 'operator') api('GET', '/v1/tenants').then((t) => setTenants(Array.isArray(t) ? t : t.tenants || []), () => {});
    return () => feed.stop();
  }, [who && `${who.caller}/${who.tenant}`]);
  if (checking) return html`<p class="muted" style="padding:20px">Loading...</p>`;
  if (!who) return html`<${Login} onIn=${setWho} />`;
  const signOut = () => {
    sessionStorage.clear(); session.token = ''; session.tenant = ''; feed.stop(); feed.recent = []; setWho(null);
  };
  const actAs = async (tenant) => {
    session.tenant = tenant;
    if (tenant) sessionStorage.setItem('wasmq.tenant', tenant); else sessionStorage.removeItem('wasmq.tenant');
    setWho(await api('GET', '/v1/whoami'));
  };
  // The operator acting for no tenant sees the cluster; tenant pages need one.
  const tenantPages = who.tenant !== undefined && who.tenant !== null;
  const tabs = [
    tenantPages && ['', 'Overview'], tenantPages && ['jobs', 'Jobs'], tenantPages && ['batches', 'Batches'],
    tenantPages && ['aliases', 'Modules & aliases'], tenantPages && ['schedules', 'Schedules'],
    who.cluster && ['nodes', 'Nodes'],
    who.caller === 'operator' && ['tenants', 'Tenants'],
  ].filter(Boolean);
  const [page, arg] = r.parts;
  const current = page || (tenantPages ? '' : who.cluster ? 'nodes' : '');
  let view;
  // Detail pages are keyed by what they show: another job's page starts afresh
  // (its events, its pending refreshes), never with the last one's data.
  if (!tenantPages && ['', 'jobs', 'batches', 'aliases', 'schedules'].includes(current)) {
    view = html`<div class="panel">Choose a tenant to act for (top right) to see its jobs.</div>`;
  } else if (current === 'jobs' && arg) view = html`<${Job} who=${who} id=${arg} key=${arg} />`;
  else if (current === 'jobs') view = html`<${Jobs} who=${who} params=${r.params} key=${location.hash} />`;
  else if (current === 'batches') view = html`<${Batches} id=${arg} />`;
  else if (current === 'aliases') view = html`<${Aliases} who=${who} name=${arg} />`;
  else if (current === 'schedules') view = html`<${Schedules} who=${who} />`;
  else if (current === 'nodes') view = html`<${Nodes} />`;
  else if (current === 'tenants') view = html`<${Tenants} />`;
  else view = html`<${Overview} who=${who} />`;
  return html`<header><h1>wasmq</h1>
      <nav>${tabs.map(([p, label]) => html`<a href="#/${p}" class=${current === p ? 'on' : ''}>${label}</a>`)}
        <a href="/docs">API</a></nav>
      <div class="who"><span class="live ${live ? 'on' : ''}" title=${live ? 'live' : 'reconnecting'}></span>
        ${who.caller === 'operator'
          ? html`operator, acting for <select data-testid="act-as" value=${session.tenant} onChange=${(e) => actAs(e.target.value)}>
              <option value="">no tenant (cluster view)</option>${tenants.map((t) => html`<option value=${t.id}>${t.id}</option>`)}</select>`
          : html`<span data-testid="who">${who.tenant} (${who.scope})</span>`}
        <button class="plain" onClick=${signOut}>Sign out</button></div>
    </header>
    <main>${view}</main>`;
}

render(html`<${App} />`, document.getElementById('app'));
