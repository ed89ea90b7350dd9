#!/usr/bin/env node
// The form's request mix and checks in headless Chromium (issue 12), against a running
// orchestrator with 2 alive drivers and the real target:
//   1. bad entries and checks: the API's 400 appears next to the field it names, in the entry it
//      names (a third entry's weight 0, the first entry's expected statuses, the test's statuses,
//      a JSON pointer check on its line), nothing is created; removing an entry renumbers the rest;
//   2. a mix from the form, `home` GET /ping weight 3 (the test's checks: 2xx and
//      `/message = "pong"`) and `missing` GET /status/404 weight 1 (its own body check), 2 drivers
//      × 400: the single-request fields are off and not sent, the API holds the mix as typed, and
//      the "By request" table shows the exact counts (300 + 100 per driver), the 404s as http
//      errors and failed status checks of `missing`, and its latency as the API has it;
//   3. entry names that are markup (a mix started through the API, 2 × 2 on /echo) are shown as
//      text in the table and the spec line: no element, no script.
// The Rust test checks the target's own counts by path (600 on /ping, 200 on /status/404, 4 on
// /echo).
// MIX_SCREENSHOT=<path> saves a full-page screenshot of the finished test with the form open.
//
//   node mix.mjs <dashboard-url> <target-origin>

import { apiAt, assert, assertEqual, invalidSubmissions, log, poll, run, text, tid } from './lib.mjs';

const [base, origin] = process.argv.slice(2).map((a) => a?.replace(/\/$/, ''));
if (!base || !origin) {
  console.error('usage: node mix.mjs <dashboard-url> <target-origin>');
  process.exit(2);
}

// The page's rules, re-implemented on purpose: comma grouping, latencies in ms with 3 decimals.
const group = (s) => {
  const [int, frac] = s.split('.');
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (frac === undefined ? '' : `.${frac}`);
};
const fmtMs = (v) => group(v.toFixed(3));
const fmtRps = (v) => group(v.toFixed(1));

const { get: apiGet, post: apiPost } = apiAt(base);

// The deliberately invalid submissions' 400s.
let invalidPosts = 0;
const expected = invalidSubmissions(() => invalidPosts > 0);

async function openSection(page, name) {
  const open = await page.$eval(`details[data-section="${name}"]`, (d) => d.open);
  if (!open) await page.click(`details[data-section="${name}"] > summary`);
}

/** Fills entry `i`'s fields (only those given). */
async function fillEntry(page, i, fields) {
  for (const [key, v] of Object.entries(fields)) await page.fill(tid(`input-mix[${i}].${key}`), v);
}

/** Submits an invalid form and checks the API's message for `spec` is shown at `slot`. */
async function expectFieldError(page, spec, { field, slot, input, prefix = '' }) {
  const before = (await apiGet('/api/v1/tests')).tests.length;
  const direct = await apiPost('/api/v1/tests', spec);
  assert(direct.status === 400 && direct.body.field === field, `API for ${JSON.stringify(spec)}: ${JSON.stringify(direct)}`);
  const want = prefix + direct.body.error.replace(`${field}: `, '');
  invalidPosts += 1;
  await page.click(tid('submit-run'));
  const shown = await poll(`the error at ${slot}`, async () => text(page, `error-${slot}`), 10_000);
  assertEqual(shown, want, `the error shown at ${slot}`);
  const placement = await page.$eval(tid(`error-${slot}`), (e, input) => {
    const el = document.querySelector(`[data-testid="${input}"]`);
    return {
      nearField: e.closest('.field')?.contains(el) ?? false,
      invalid: el.getAttribute('aria-invalid'),
      visible: e.getBoundingClientRect().height > 0,
      generalHidden: document.querySelector('[data-testid="form-error"]').hidden,
    };
  }, input);
  assertEqual(placement, { nearField: true, invalid: 'true', visible: true, generalHidden: true }, `placement of the ${field} error`);
  assert((await apiGet('/api/v1/tests')).tests.length === before, `an invalid form (${field}) created a test`);
  log(`${field}: "${shown}" shown at ${slot}`);
}

/** The "By request" table as shown. */
const readByRequest = (page) =>
  page.$$eval('[data-testid="by-request-row"]', (rows) => rows.map((r) => {
    const m = (k) => r.querySelector(`[data-metric="${k}"]`)?.textContent ?? null;
    return [m('name'), m('sent'), m('responses'), m('ok'), m('errors'), m('error-kinds'), m('checks'), m('rps'), m('p50'), m('p95'), m('p99')];
  }));

/** What the table must show for the API's figures. */
const expectedRows = (t) => ['home', 'missing'].map((name) => {
  const s = t.aggregate.by_request[name];
  return [name, group(String(s.sent)), group(String(s.responses)), group(String(s.ok)), group(String(s.error_total)),
    s.errors.http > 0 ? `http ${s.errors.http}` : null, s.checks_failed?.status > 0 ? `status ${s.checks_failed.status}` : '–',
    fmtRps(s.achieved_rps), fmtMs(s.latency.median_ms), fmtMs(s.latency.p95_ms), fmtMs(s.latency.p99_ms)];
});

async function main(page) {
  log(`opening ${base}/`);
  await page.goto(`${base}/`, { waitUntil: 'load' });
  await poll('the live badge', async () => (await text(page, 'connection')) === 'live', 15_000);
  await poll('2 alive drivers', async () => (await apiGet('/api/v1/drivers')).drivers.filter((d) => d.alive).length >= 2, 15_000);

  // An Avalanche of 400 per driver on 2 connections; the single URL is typed first, and the
  // first entry takes it over.
  await page.click('label:has([data-testid="input-type-avalanche"])');
  await page.fill(tid('input-requests_per_driver'), '400');
  await page.fill(tid('input-throughput_per_driver'), '');
  await page.fill(tid('input-concurrency'), '2');
  await page.fill(tid('input-target_url'), `${origin}/ping`);
  await openSection(page, 'request');
  await page.fill(tid('input-headers'), 'X-Single: not-sent');
  assert(!(await page.isVisible(tid('mix-note'))), 'no mix note without a mix');

  await openSection(page, 'mix');
  await page.click(tid('mix-add'));
  assertEqual(await page.inputValue(tid('input-mix[0].url')), `${origin}/ping`, 'the first entry takes the single URL');
  await fillEntry(page, 0, { name: 'home', method: 'GET', weight: '3' });
  await page.click(tid('mix-add'));
  await fillEntry(page, 1, { name: 'missing', url: `${origin}/status/404`, weight: '1', 'checks.body_contains': 'not found' });
  await page.click(tid('mix-add'));
  await fillEntry(page, 2, { name: 'extra', weight: '0' });
  const off = await page.evaluate(() => ['target_url', 'method', 'headers', 'body'].map((n) => document.querySelector(`[name="${n}"]`).disabled));
  assertEqual(off, [true, true, true, true], 'the single-request fields are off with a mix');
  assert(await page.isVisible(tid('mix-note')) && await page.isVisible(tid('mix-note-request')), 'the mix notes are shown');

  // ---- 1. bad entries and checks, each at its field
  const home = { name: 'home', method: 'GET', url: `${origin}/ping`, weight: 3 };
  const missing = { name: 'missing', url: `${origin}/status/404`, weight: 1, checks: { body_contains: 'not found' } };
  const spec = { test_type: 'avalanche', requests_per_driver: 400, concurrency: 2 };
  await expectFieldError(page, { ...spec, mix: [home, missing, { name: 'extra', url: `${origin}/status/404`, weight: 0 }] }, {
    field: 'mix[2].weight', slot: 'mix[2].weight', input: 'input-mix[2].weight',
  });
  assert(await page.$eval(tid('error-mix[2].weight'), (e) => e.closest('[data-testid="mix-entry"]').dataset.index === '2'), 'the weight error is in the third entry');
  // Removing the first of three renumbers the rest; put it back by removing the last instead.
  await page.click(tid('mix-remove-2'));
  assertEqual(await page.$$eval(tid('mix-entry'), (els) => els.length), 2, 'two entries after a removal');
  assertEqual(await page.inputValue(tid('input-mix[1].name')), 'missing', 'the second entry kept its values');
  await page.click(tid('mix-add'));
  await fillEntry(page, 2, { name: 'gone' });
  await page.click(tid('mix-remove-0'));
  assertEqual(
    await page.$$eval(tid('mix-entry'), (els) => els.map((e) => [e.dataset.index, e.querySelector('input[name$=".name"]').name, e.querySelector('input[name$=".name"]').value])),
    [['0', 'mix[0].name', 'missing'], ['1', 'mix[1].name', 'gone']],
    'entries renumbered after removing the first',
  );
  await page.click(tid('mix-remove-1'));
  await page.click(tid('mix-remove-0'));
  assert(!(await page.isDisabled(tid('input-target_url'))), 'the single URL is back without a mix');
  await page.click(tid('mix-add'));
  await fillEntry(page, 0, { name: 'home', method: 'GET', weight: '3', 'checks.status': '7xx' });
  await page.click(tid('mix-add'));
  await fillEntry(page, 1, { name: 'missing', url: `${origin}/status/404`, weight: '1', 'checks.body_contains': 'not found' });

  // The first entry's own statuses, then the test's checks.
  await expectFieldError(page, { ...spec, mix: [{ ...home, checks: { status: ['7xx'] } }, missing] }, {
    field: 'mix[0].checks.status', slot: 'mix[0].checks.status', input: 'input-mix[0].checks.status',
  });
  await page.fill(tid('input-mix[0].checks.status'), '');
  await openSection(page, 'checks');
  await page.fill(tid('input-checks.status'), '2xx, 999');
  await expectFieldError(page, { ...spec, mix: [home, missing], checks: { status: ['2xx', 999] } }, {
    field: 'checks.status', slot: 'checks.status', input: 'input-checks.status',
  });
  await page.fill(tid('input-checks.status'), '2xx');
  await page.fill(tid('input-checks.json'), '\nmessage = "pong"');
  await expectFieldError(page, { ...spec, mix: [home, missing], checks: { status: ['2xx'], json: [{ pointer: 'message', equals: 'pong' }] } }, {
    field: 'checks.json[0].pointer', slot: 'checks.json', input: 'input-checks.json', prefix: 'line 2: ',
  });

  // ---- 2. the mix runs
  await page.fill(tid('input-checks.json'), '\n/message = "pong"');
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/api/v1/tests'), { timeout: 10_000 }),
    page.click(tid('submit-run')),
  ]);
  const created = await resp.json();
  assert(resp.status() === 201, `create from the form: HTTP ${resp.status()} ${JSON.stringify(created)}`);
  const id = created.id;
  await poll(`test ${id} to complete on the page`, async () => {
    const status = await text(page, 'test-status');
    assert(!['failed', 'stopped'].includes(status), `test ${id} ended ${status}`);
    return (await text(page, 'test-id')) === id && status === 'completed';
  }, 120_000, 200);
  const t = await poll(`test ${id} settled`, async () => {
    const v = await apiGet(`/api/v1/tests/${id}`);
    return v.settled && v.status === 'completed' ? v : null;
  }, 30_000, 200);

  // What the form sent: the mix as typed, methods upper case, no single request.
  assertEqual(
    [t.spec.mix, t.spec.checks, t.spec.headers ?? {}, t.spec.body ?? null],
    [[home, { name: 'missing', method: 'GET', url: missing.url, weight: 1, checks: missing.checks }],
      // Statuses come back as ranges.
      { status: ['200-299'], json: [{ pointer: '/message', equals: 'pong' }] }, {}, null],
    'the spec the form sent',
  );
  const by = t.aggregate.by_request;
  assert(by, `no by_request in the view: ${JSON.stringify(t.aggregate)}`);
  const counts = (s) => [s.sent, s.responses, s.ok, s.errors.http, s.error_total, s.checks_failed?.status ?? 0, s.checks_failed?.body ?? 0, s.checks_failed?.json ?? 0];
  assertEqual([counts(by.home), counts(by.missing)], [[600, 600, 600, 0, 0, 0, 0, 0], [200, 200, 0, 200, 200, 200, 0, 0]], 'by request in the API');
  assertEqual(t.per_driver.map((d) => [d.by_request.home.sent, d.by_request.missing.sent]), [[300, 100], [300, 100]], 'by request per driver');
  assertEqual([t.aggregate.sent, t.aggregate.error_total, t.aggregate.checks_failed?.status], [800, 200, 200], 'the totals');

  // The page: the table (from the view the page polls last), the totals' checks.
  const want = expectedRows(t);
  let shown;
  await poll('the by-request table', async () => JSON.stringify((shown = await readByRequest(page))) === JSON.stringify(want), 10_000).catch(() =>
    assertEqual(shown, want, 'the by-request table'));
  assertEqual(shown.map((r) => r.slice(0, 7)), [
    ['home', '600', '600', '600', '0', null, '–'],
    ['missing', '200', '200', '0', '200', 'http 200', 'status 200'],
  ], 'the by-request counts on the page');
  assertEqual(await text(page, 'kpi-checks'), 'status 200', 'checks failed in the totals');
  const sentTitle = await page.$eval('[data-testid="by-request-row"][data-request="home"] td:nth-child(2)', (e) => e.title);
  assertEqual(sentTitle, t.per_driver.map((d) => `${d.driver_id}: 300`).join(' · '), 'each driver\'s count in the tooltip');
  assert((await text(page, 'spec-request')).startsWith('mix: home ×3 GET '), `the spec line: ${await text(page, 'spec-request')}`);
  log(`test ${id}: ${JSON.stringify(shown)}`);

  // ---- 3. names from the server are text
  const names = ['<img src=x onerror="window.__pwned=1">', '<b>bold</b>&amp;'];
  const hostile = await apiPost('/api/v1/tests', {
    ...spec, requests_per_driver: 2, trigger: true,
    mix: names.map((name) => ({ name, url: `${origin}/echo` })),
  });
  assert(hostile.status === 201, `the markup mix: ${JSON.stringify(hostile)}`);
  await poll('the markup mix on the page', async () => {
    const rows = await readByRequest(page);
    return (await text(page, 'test-id')) === hostile.body.id && rows.length === 2 && rows.every((r) => r[1] === '2');
  }, 60_000, 200);
  assertEqual((await readByRequest(page)).map((r) => r[0]), names, 'the names as shown');
  assertEqual(
    await page.evaluate(() => [document.querySelectorAll('[data-testid="test-panel"] :is(img, b)').length, window.__pwned ?? null]),
    [0, null],
    'nothing injected by the names',
  );
  assert((await text(page, 'spec-request')).includes(names[0]), 'the spec line shows the name as text');
  log(`test ${hostile.body.id}: the markup names are shown as text`);

  if (process.env.MIX_SCREENSHOT) {
    await page.setViewportSize({ width: 1440, height: 2000 });
    await page.screenshot({ path: process.env.MIX_SCREENSHOT, fullPage: true });
  }
}

await run(base, main, { expected });
