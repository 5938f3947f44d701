// Drives the dashboard in a real headless Chromium (Debian's, through
// playwright-core) against a running wasmq server. tests/all/dashboard.rs
// starts the server, makes the tenant and its tokens and runs this with:
//   WASMQ_URL, ADMIN_TOKEN, DISPATCH_TOKEN, OPERATOR_TOKEN, CHROMIUM, SHOTS (a folder for screenshots)
// Exits non-zero, naming the step, if anything is not as expected.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const url = process.env.WASMQ_URL;
const admin = process.env.ADMIN_TOKEN;
const dispatchToken = process.env.DISPATCH_TOKEN;
const operatorToken = process.env.OPERATOR_TOKEN;
const shots = process.env.SHOTS;
mkdirSync(shots, { recursive: true });
const step = (name) => console.log(`step: ${name}`);

async function api(method, path, body, token = admin) {
  const r = await fetch(url + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(data)}`);
  return data;
}
const dispatch = (alias, payload, extra = {}) => api('POST', '/v1/jobs', { alias, payload, ...extra });

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => { if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`); });
// Nothing may come from anywhere but the server (no CDN).
page.on('request', (r) => { if (!r.url().startsWith(url)) problems.push(`request to ${r.url()}`); });

try {
  step('without a token: the sign-in form, and no data');
  await page.goto(url + '/');
  await page.getByRole('heading', { name: 'Sign in to wasmq' }).waitFor();
  const anonymous = await page.evaluate(async () => (await fetch('/v1/jobs')).status);
  if (anonymous !== 401) throw new Error(`GET /v1/jobs without a token answered ${anonymous}`);
  await page.fill('input[name=token]', 'not-a-token');
  await page.click('button[type=submit]');
  await page.getByText('That token is not valid here.').waitFor();

  step('sign in with the admin token');
  await page.fill('input[name=token]', admin);
  await page.click('button[type=submit]');
  await page.getByTestId('who').filter({ hasText: 'acme (admin)' }).waitFor();

  step('a job appears and finishes live on the jobs page');
  await page.goto(url + '/#/jobs');
  await page.getByText('No jobs match.').or(page.locator('[data-job]').first()).waitFor();
  const echo = await dispatch('echo', { hello: 'dashboard' });
  const row = page.locator(`tr[data-job="${echo.id}"]`);
  await row.waitFor({ timeout: 15000 });
  await row.locator('.status.succeeded').waitFor({ timeout: 15000 });
  await page.screenshot({ path: `${shots}/dashboard-jobs.png` });

  step('open it: its result and timeline');
  await row.click();
  await page.getByTestId('result').filter({ hasText: 'dashboard' }).waitFor();
  await page.getByTestId('timeline').filter({ hasText: 'finished' }).waitFor();
  await page.screenshot({ path: `${shots}/dashboard-job.png` });

  step('retry a dead job from its page');
  const dead = await dispatch('fail', { mode: 'error' });
  await page.goto(`${url}/#/jobs/${dead.id}`);
  await page.locator('.status.dead').first().waitFor({ timeout: 15000 });
  await page.getByRole('button', { name: 'Retry' }).click();
  await page.getByTestId('timeline').filter({ hasText: 'job.queued' }).waitFor({ timeout: 15000 });
  const retried = await api('GET', `/v1/jobs/${dead.id}`);
  // Queued again with a fresh budget (attempt 0 until claimed), or already run again.
  const fresh = { queued: 0, running: 1, dead: 1 }[retried.status];
  if (fresh === undefined || retried.attempt !== fresh) {
    throw new Error(`after Retry the job is ${retried.status}, attempt ${retried.attempt}`);
  }

  step('cancel a running job from its page');
  const long = await dispatch('sleepy', { sleep_ms: 120000 });
  await page.goto(`${url}/#/jobs/${long.id}`);
  // This job's page, not the last one's (whose refreshes may still be due).
  const longPanel = page.locator('.panel').filter({ has: page.locator('h2', { hasText: long.id }) });
  await longPanel.locator('.status.running').first().waitFor({ timeout: 15000 });
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.locator('.status.cancelled').first().waitFor({ timeout: 15000 });
  if ((await api('GET', `/v1/jobs/${long.id}`)).status !== 'cancelled') throw new Error('the job was not cancelled');

  step('events missed meanwhile: the page reads its job again');
  // The page's next stream shows no job event and ends after 5 s; the one
  // after it resumes from an id no server gave, so it starts with `lagged`.
  let streams = 0;
  await page.route('**/v1/events*', (route) => {
    streams += 1;
    if (streams === 1) return route.continue({ url: `${url}/v1/events?types=node.joined&timeout_ms=5000` });
    return route.continue({ headers: { ...route.request().headers(), 'last-event-id': 'elsewhere-1' } });
  });
  const unseen = await dispatch('sleepy', { sleep_ms: 120000 });
  // Running before the page loads it: the page will see no job.started.
  for (let i = 0; (await api('GET', `/v1/jobs/${unseen.id}`)).status !== 'running'; i++) {
    if (i > 300) throw new Error('the sleepy job never ran');
    await new Promise((r) => setTimeout(r, 50));
  }
  await page.goto(`${url}/#/jobs/${unseen.id}`);
  await page.reload();
  const unseenPanel = page.locator('.panel').filter({ has: page.locator('h2', { hasText: unseen.id }) });
  await unseenPanel.locator('.status.running').first().waitFor({ timeout: 15000 });
  // Cancelled behind the page's back: its stream does not show it.
  await api('POST', `/v1/jobs/${unseen.id}/cancel`, {});
  await unseenPanel.locator('.status.cancelled').first().waitFor({ timeout: 20000 });
  if (streams < 2) throw new Error('the page did not open a second stream');
  await page.unroute('**/v1/events*');

  step('the overview is live');
  await page.goto(url + '/#/');
  await page.getByTestId('waiting').waitFor();
  await dispatch('echo', { overview: true });
  await page.getByTestId('feed').filter({ hasText: 'job.succeeded' }).waitFor({ timeout: 15000 });
  await page.screenshot({ path: `${shots}/dashboard-overview.png` });

  step('a batch, its counts and its jobs');
  const batch = await api('POST', '/v1/batches', { jobs: [1, 2, 3].map((n) => ({ alias: 'echo', payload: { n } })) });
  await page.goto(`${url}/#/batches`);
  // The list shows it, done once its jobs ended (live: batch.done reloads it).
  const batchRow = page.locator(`tr[data-batch="${batch.id}"]`);
  await batchRow.filter({ hasText: "done" }).waitFor({ timeout: 15000 });
  if ((await page.locator('[data-batch]').first().getAttribute('data-batch')) !== batch.id) {
    throw new Error('the newest batch is not listed first');
  }
  await batchRow.click();
  await page.getByTestId('batch-done').filter({ hasText: 'yes' }).waitFor({ timeout: 15000 });
  await page.getByRole('link', { name: "the batch's jobs" }).click();
  for (const id of batch.job_ids) await page.locator(`tr[data-job="${id}"]`).waitFor();
  if ((await page.locator('[data-job]').count()) !== 3) throw new Error('the batch filter shows other jobs');

  step('a schedule fires live, is paused and resumed');
  await api('PUT', '/v1/schedules/tick', { alias: 'echo', payload: { tick: true }, every_ms: 1000 });
  await page.goto(`${url}/#/schedules`);
  const tick = page.locator('tr[data-schedule="tick"]');
  await tick.filter({ hasText: 'active' }).waitFor();
  // Its first firing shows up without a reload (job.queued, reason scheduled).
  await tick.locator('a[href^="#/jobs/"]').waitFor({ timeout: 15000 });
  await tick.getByRole('button', { name: 'Pause' }).click();
  await tick.filter({ hasText: 'paused' }).waitFor();
  if ((await api('GET', '/v1/schedules/tick')).enabled !== false) throw new Error('Pause did not pause the schedule');
  await tick.getByRole('button', { name: 'Resume' }).click();
  await tick.filter({ hasText: 'active' }).waitFor();
  await api('DELETE', '/v1/schedules/tick');

  step('an alias and its history');
  await page.goto(url + '/#/aliases/echo');
  await page.getByRole('heading', { name: 'Alias echo' }).waitFor();
  await page.getByRole('button', { name: 'Roll back' }).waitFor();

  step('a dispatch token sees no admin action');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.fill('input[name=token]', dispatchToken);
  await page.click('button[type=submit]');
  await page.getByTestId('who').filter({ hasText: 'acme (dispatch)' }).waitFor();
  await page.goto(url + '/#/aliases/echo');
  await page.getByRole('heading', { name: 'Alias echo' }).waitFor();
  if (await page.getByRole('button', { name: 'Roll back' }).count()) throw new Error('a dispatch token is offered Roll back');
  // The API refuses it all the same.
  const refused = await page.evaluate(async (t) => (await fetch('/v1/aliases/echo/rollback', {
    method: 'POST', headers: { Authorization: `Bearer ${t}` } })).status, dispatchToken);
  if (refused !== 403) throw new Error(`rollback with a dispatch token answered ${refused}`);

  step('the operator, acting for the tenant, pauses and resumes a queue');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await dispatch('echo', { later: true }, { delay_ms: 3600000 });
  await page.fill('input[name=token]', operatorToken);
  await page.click('button[type=submit]');
  await page.getByTestId('act-as').selectOption('acme');
  await page.goto(url + '/#/');
  const queue = page.locator('tr[data-queue="default"]');
  await queue.waitFor();
  page.once('dialog', (d) => d.accept());
  await queue.getByRole('button', { name: 'Pause' }).click();
  await queue.filter({ hasText: 'paused' }).getByRole('button', { name: 'Resume' }).waitFor();
  const paused = (await api('GET', '/v1/queues', undefined, operatorToken)).queues.find((q) => q.name === 'default');
  if (!paused || !paused.paused) throw new Error('Pause did not pause the queue');
  await queue.getByRole('button', { name: 'Resume' }).click();
  await queue.getByRole('button', { name: 'Pause' }).waitFor();

  step('signed out: nothing visible again');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.goto(url + '/#/jobs');
  await page.getByRole('heading', { name: 'Sign in to wasmq' }).waitFor();
  if (await page.locator('[data-job]').count()) throw new Error('jobs are shown without a token');
  if (problems.length) throw new Error(problems.join('\n'));
  console.log('dashboard: every step passed');
} catch (e) {
  await page.screenshot({ path: `${shots}/failure.png` }).catch(() => {});
  console.error(`FAILED: ${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
