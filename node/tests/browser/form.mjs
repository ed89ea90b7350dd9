#!/usr/bin/env node
// The form's transport, request and threshold options in headless Chromium (issue 12), against a
// running orchestrator with 2 alive drivers and a target that speaks h2c (`--h2c`):
//   1. bad fields: the API's 400 message appears next to the field it names (streams 0, an
//      unparsable threshold on its line, an abort delay, echoed markup as text, TLS settings on an
//      http:// target), nothing is created, a header line without a colon is refused by the form
//      without echoing it, and the insecure-TLS checkbox shows its warning;
//   2. an h2c test from the form (HTTP/2, 4 streams per connection, a secret header) completes
//      with exact counts, and the API holds what the form sent;
//   3. a test whose thresholds pass shows a "passed" verdict pill, one that fails on purpose
//      (`p99 < 1us`) shows "failed" with the measured value, in the panel and the history.
// The Rust test checks the target's own count of every request (2 × (300 + 100 + 100)).
// FORM_SCREENSHOT=<path> saves a full-page screenshot with every section of the form open.
//
//   node form.mjs <dashboard-url> <h2c-target-url>

import { apiAt, assert, assertEqual, invalidSubmissions, log, poll, run, text, tid } from './lib.mjs';

const [base, targetUrl] = process.argv.slice(2).map((a, i) => (i === 0 ? a?.replace(/\/$/, '') : a));
if (!base || !targetUrl) {
  console.error('usage: node form.mjs <dashboard-url> <h2c-target-url>');
  process.exit(2);
}

// The page's rules, re-implemented on purpose: latencies in ms with 3 decimals, comma grouping.
const group = (s) => {
  const [int, frac] = s.split('.');
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (frac === undefined ? '' : `.${frac}`);
};
const fmtMs = (v) => group(v.toFixed(3));
const fmtRatio = (v) => `${+(v * 100).toFixed(4)}%`;

const { get: apiGet, post: apiPost } = apiAt(base);

// The deliberately invalid submissions' 400s.
let invalidPosts = 0;
const expected = invalidSubmissions(() => invalidPosts > 0);

/** Fills the form's base fields: an Avalanche of `n` per driver on 2 connections. */
async function baseForm(page, n) {
  await page.click('label:has([data-testid="input-type-avalanche"])');
  await page.fill(tid('input-requests_per_driver'), String(n));
  await page.fill(tid('input-throughput_per_driver'), '');
  await page.fill(tid('input-concurrency'), '2');
  await page.fill(tid('input-target_url'), targetUrl);
}

/** Opens a closed section of the form by its summary. */
async function openSection(page, name) {
  const open = await page.$eval(`details[data-section="${name}"]`, (d) => d.open);
  if (!open) await page.click(`details[data-section="${name}"] > summary`);
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
    const el = input ? document.querySelector(`[data-testid="${input}"]`) : null;
    return {
      nearField: input ? e.closest('.field')?.contains(el) ?? false : true,
      invalid: input ? el.getAttribute('aria-invalid') : 'true',
      visible: e.getBoundingClientRect().height > 0,
      generalHidden: document.querySelector('[data-testid="form-error"]').hidden,
    };
  }, input);
  assertEqual(placement, { nearField: true, invalid: 'true', visible: true, generalHidden: true }, `placement of the ${field} error`);
  assert((await apiGet('/api/v1/tests')).tests.length === before, `an invalid form (${field}) created a test`);
  log(`${field}: "${shown}" shown at ${slot}`);
}

/** Submits the form; the created test's ID (from the API's answer to the page). */
async function submit(page) {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/api/v1/tests'), { timeout: 10_000 }),
    page.click(tid('submit-run')),
  ]);
  const body = await resp.json();
  assert(resp.status() === 201, `create from the form: HTTP ${resp.status()} ${JSON.stringify(body)}`);
  await poll('the new test on the page', async () => (await text(page, 'test-id')) === body.id, 10_000);
  return body.id;
}

/** Waits for the test shown to complete on the page and be settled in the API. */
async function completed(page, id) {
  await poll(`test ${id} to complete on the page`, async () => {
    const status = await text(page, 'test-status');
    assert(!['failed', 'stopped'].includes(status), `test ${id} ended ${status}`);
    return status === 'completed';
  }, 120_000, 200);
  return poll(`test ${id} settled`, async () => {
    const t = await apiGet(`/api/v1/tests/${id}`);
    return t.settled && t.status === 'completed' ? t : null;
  }, 30_000, 200);
}

/** The thresholds box as shown: verdict and each line. */
const readThresholds = (page) =>
  page.$eval(tid('test-thresholds'), (box) => ({
    hidden: box.hidden,
    verdict: box.querySelector('[data-testid="thresholds-verdict"]')?.textContent,
    results: [...box.querySelectorAll('[data-testid="threshold"]')].map((li) => ({
      threshold: li.querySelector('[data-testid="threshold-text"]').textContent,
      state: li.querySelector('[data-testid="threshold-state"]').textContent,
      measured: li.querySelector('[data-testid="threshold-measured"]').textContent,
    })),
  }));

/** What the page must show for the API's thresholds. */
const expectedThresholds = (th) => ({
  hidden: false,
  verdict: th.verdict,
  results: th.results.map((o) => ({
    threshold: o.threshold,
    state: o.state,
    measured: o.unit === 'ms' ? `${fmtMs(o.measured)} ms` : o.unit === 'ratio' ? fmtRatio(o.measured) : String(o.measured),
  })),
});

async function main(page) {
  log(`opening ${base}/`);
  await page.goto(`${base}/`, { waitUntil: 'load' });
  await poll('the live badge', async () => (await text(page, 'connection')) === 'live', 15_000);
  await poll('2 alive drivers', async () => (await apiGet('/api/v1/drivers')).drivers.filter((d) => d.alive).length >= 2, 15_000);

  // ---- 1. bad fields, each at its own place
  await baseForm(page, 10);
  await openSection(page, 'transport');
  assert(!(await page.isVisible(tid('input-streams_per_connection'))), 'streams are hidden for HTTP/1.1');
  await page.click('label:has([data-testid="input-http_version-2"])');
  assert(await page.isVisible(tid('input-streams_per_connection')), 'streams are shown for HTTP/2');
  await page.fill(tid('input-streams_per_connection'), '0');
  // Closed again: the error must open it.
  await page.click('details[data-section="transport"] > summary');
  const spec = { test_type: 'avalanche', requests_per_driver: 10, target_url: targetUrl, concurrency: 2 };
  await expectFieldError(page, { ...spec, http_version: '2', streams_per_connection: 0 }, {
    field: 'streams_per_connection', slot: 'streams_per_connection', input: 'input-streams_per_connection',
  });
  assert(await page.$eval('details[data-section="transport"]', (d) => d.open), 'the error opened its section');
  await page.fill(tid('input-streams_per_connection'), '4');
  assert((await text(page, 'error-streams_per_connection')) === '', 'the error clears when the field is edited');
  // The fail-safe's window (issue 13): 0 or at least a second, said at its field.
  if (!(await page.isVisible(tid('input-fail_safe_ms')))) await page.click('details.advanced:not([data-section]) > summary');
  await page.fill(tid('input-fail_safe_ms'), '500');
  await expectFieldError(page, { ...spec, http_version: '2', streams_per_connection: 4, fail_safe_ms: 500 }, {
    field: 'fail_safe_ms', slot: 'fail_safe_ms', input: 'input-fail_safe_ms',
  });
  await page.fill(tid('input-fail_safe_ms'), '');

  // An unparsable threshold on the third line (the blank one is skipped): shown with its line.
  await openSection(page, 'thresholds');
  await page.fill(tid('input-thresholds'), 'p99 < 250ms\n\np999x < 1s');
  await expectFieldError(page, { ...spec, http_version: '2', streams_per_connection: 4, thresholds: ['p99 < 250ms', 'p999x < 1s'] }, {
    field: 'thresholds[1]', slot: 'thresholds', input: 'input-thresholds', prefix: 'line 3: ',
  });
  // One abort setting for every line: its bad delay is shown at the delay field.
  await page.fill(tid('input-thresholds'), 'p99 < 250ms');
  assert(await page.isDisabled(tid('input-abort_delay')), 'the delay is off without abort_on_fail');
  await page.check(tid('input-abort_on_fail'));
  await page.fill(tid('input-abort_delay'), 'soon');
  await expectFieldError(page, { ...spec, http_version: '2', streams_per_connection: 4, thresholds: [{ threshold: 'p99 < 250ms', abort_on_fail: true, delay: 'soon' }] }, {
    field: 'thresholds[0].delay', slot: 'abort_delay', input: 'input-abort_delay',
  });
  await page.fill(tid('input-abort_delay'), '');
  await page.uncheck(tid('input-abort_on_fail'));

  // Markup in what the server echoes stays text.
  const markup = '<img src=x onerror="window.__pwned=1">: p99 < 1s';
  await page.fill(tid('input-thresholds'), markup);
  await expectFieldError(page, { ...spec, http_version: '2', streams_per_connection: 4, thresholds: [markup] }, {
    field: 'thresholds[0]', slot: 'thresholds', input: 'input-thresholds', prefix: 'line 1: ',
  });
  assertEqual(
    await page.evaluate(() => [document.querySelectorAll('form img, [data-testid="error-thresholds"] *').length, window.__pwned ?? null]),
    [0, null],
    'nothing injected by an echoed threshold',
  );
  assert((await text(page, 'error-thresholds')).includes('<img src=x'), 'the echoed markup is shown as text');
  await page.fill(tid('input-thresholds'), '');

  // A header line the form cannot read is refused by the form itself (the API would quote it as
  // a name, and it may hold a secret): no request, and the line is not echoed.
  await openSection(page, 'request');
  await page.fill(tid('input-headers'), 'Accept: text/plain\nAuthorization Bearer s3cr3t-token');
  let posts = 0;
  const count = (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/api/v1/tests')) posts += 1;
  };
  page.on('request', count);
  await page.click(tid('submit-run'));
  const headerError = await poll('the headers error', async () => text(page, 'error-headers'), 5_000);
  page.off('request', count);
  assertEqual([headerError, posts], ['line 2: want Name: value (the line has no colon)', 0], 'the form\'s own headers error');
  assert(!(await page.textContent('form')).replace(await page.inputValue(tid('input-headers')), '').includes('s3cr3t'), 'the secret is echoed');
  await page.fill(tid('input-headers'), '');
  log(`headers: "${headerError}" shown, nothing sent`);

  // TLS settings for an http:// target: the section's own message; the checkbox warns first.
  assert(!(await page.isVisible(tid('insecure-warning'))), 'no warning before the box is ticked');
  await page.check(tid('input-tls.insecure_skip_verify'));
  assert(await page.isVisible(tid('insecure-warning')), 'the insecure box shows its warning');
  await expectFieldError(page, { ...spec, http_version: '2', streams_per_connection: 4, tls: { insecure_skip_verify: true } }, {
    field: 'tls', slot: 'tls', input: null,
  });
  await page.uncheck(tid('input-tls.insecure_skip_verify'));
  assert(!(await page.isVisible(tid('insecure-warning'))), 'the warning goes with the tick');

  // ---- 2. h2c from the form, with a secret header
  await baseForm(page, 300);
  await openSection(page, 'request');
  await page.fill(tid('input-headers'), 'X-Tenant: blue-7f3a\nAccept: text/plain');
  await page.fill(tid('input-secret_headers'), 'X-Tenant');
  const h2 = await submit(page);
  let t = await completed(page, h2);
  assertEqual(
    [t.spec.http_version, t.spec.streams_per_connection, t.spec.concurrency, t.spec.headers, t.spec.tls ?? null, t.spec.thresholds ?? null],
    ['2', 4, 2, { Accept: 'text/plain', 'X-Tenant': '<redacted>' }, null, null],
    'the h2c spec the form sent',
  );
  assertEqual([t.aggregate.sent, t.aggregate.ok, t.aggregate.error_total], [600, 600, 0], 'h2c counts');
  // HTTP/2 multiplexes: still one connection per `concurrency`, whatever the streams.
  assertEqual(t.per_driver.map((d) => [d.sent, d.ok, d.connect_time.count]), [[300, 300, 2], [300, 300, 2]], 'per-driver counts and connections');
  assert(!(await page.textContent('body')).includes('blue-7f3a'), 'the secret header value is on the page');
  const sent = await page.$eval('[data-testid="stats-row"][data-row="aggregate"] [data-metric="sent"]', (e) => e.textContent);
  assertEqual(sent, '600', 'sent on the page');
  assert(await page.$eval(tid('test-thresholds'), (e) => e.hidden), 'no thresholds box without thresholds');
  log(`h2c test ${h2}: 2 × 300 over HTTP/2, 4 streams on 2 connections per driver`);
  await page.fill(tid('input-headers'), '');
  await page.fill(tid('input-secret_headers'), '');

  // ---- 3. verdicts: thresholds that pass, then one that fails on purpose
  await openSection(page, 'transport');
  await page.click('label:has([data-testid="input-http_version-1.1"])');
  await baseForm(page, 100);
  await openSection(page, 'thresholds');
  await page.fill(tid('input-thresholds'), 'p99 < 60s\nerror_rate < 1%');
  const pass = await submit(page);
  t = await completed(page, pass);
  assert(t.thresholds?.verdict === 'passed', `API verdict: ${JSON.stringify(t.thresholds)}`);
  assertEqual([t.spec.http_version ?? '1.1', t.aggregate.sent], ['1.1', 200], 'the passing test');
  let shown;
  const wantPass = expectedThresholds(t.thresholds);
  await poll('the passed verdict', async () => JSON.stringify((shown = await readThresholds(page))) === JSON.stringify(wantPass), 10_000).catch(() =>
    assertEqual(shown, wantPass, 'the passing thresholds on the page'));
  log(`test ${pass}: ${JSON.stringify(shown)}`);

  await page.fill(tid('input-thresholds'), 'p99 < 1us');
  const fail = await submit(page);
  t = await completed(page, fail);
  const o = t.thresholds?.results?.[0];
  assert(t.thresholds?.verdict === 'failed' && o?.state === 'failed' && o.measured > 0.001, `API verdict: ${JSON.stringify(t.thresholds)}`);
  const wantFail = expectedThresholds(t.thresholds);
  await poll('the failed verdict', async () => JSON.stringify((shown = await readThresholds(page))) === JSON.stringify(wantFail), 10_000).catch(() =>
    assertEqual(shown, wantFail, 'the failing thresholds on the page'));
  assert(shown.verdict === 'failed' && shown.results[0].measured === `${fmtMs(o.measured)} ms`, `failed with its value: ${JSON.stringify(shown)}`);
  const verdicts = await poll('the verdicts in the history', async () => {
    const v = await page.$$eval(tid('history-row'), (rows) => Object.fromEntries(rows.map((r) => [r.dataset.testId, r.querySelector('[data-testid="history-verdict"]')?.textContent ?? null])));
    return v[fail] === 'failed' ? v : null;
  }, 10_000);
  assertEqual([verdicts[h2], verdicts[pass], verdicts[fail]], [null, 'passed', 'failed'], 'history verdicts');
  log(`test ${fail}: ${JSON.stringify(shown)}; history verdicts shown`);

  // ---- 4. a total shared equally (issue 13), with a fail-safe of its own
  await page.fill(tid('input-thresholds'), '');
  await baseForm(page, '');
  if (!(await page.isVisible(tid('input-total_requests')))) await page.click('details.advanced:not([data-section]) > summary');
  await page.fill(tid('input-total_requests'), '301');
  await page.selectOption(tid('input-split'), 'equal');
  await page.fill(tid('input-fail_safe_ms'), '5000');
  const shared = await submit(page);
  t = await completed(page, shared);
  assertEqual(
    [t.spec.totals?.requests, t.spec.totals?.split, t.spec.fail_safe_ms, t.split?.shares?.map((x) => x.requests), t.aggregate.sent],
    [301, 'equal', 5000, [151, 150], 301],
    'the totals the form sent, shared exactly',
  );
  const line = await page.$eval('[data-testid="test-spec"] .spec-line', (e) => e.textContent);
  assert(line.startsWith('Avalanche · 301 requests over 2 drivers, shared equally') && line.endsWith('fail-safe 5.0 s'), `the spec line: ${line}`);
  log(`test ${shared}: ${line}`);

  // ---- 5. shared by measured capacity: each driver's rate in that unpaced test
  const rates = t.per_driver.map((d) => d.achieved_rps);
  await page.fill(tid('input-total_requests'), '300');
  await page.selectOption(tid('input-split'), 'measured');
  const measured = await submit(page);
  t = await completed(page, measured);
  assertEqual(
    [t.split?.by, t.split?.shares?.map((x) => x.weight), t.split?.shares?.reduce((n, x) => n + x.requests, 0), t.aggregate.sent],
    ['measured', rates, 300, 300],
    'shared by the rates measured in the test before',
  );
  const mline = await page.$eval('[data-testid="test-spec"] .spec-line', (e) => e.textContent);
  assert(mline.startsWith('Avalanche · 300 requests over 2 drivers, shared by measured capacity'), `the spec line: ${mline}`);
  log(`test ${measured}: ${mline}`);

  // ---- 6. a total rate too: each driver paced by its share of it
  await page.fill(tid('input-total_requests'), '301');
  await page.fill(tid('input-total_rate'), '600');
  await page.selectOption(tid('input-split'), 'equal');
  const paced = await submit(page);
  t = await completed(page, paced);
  assertEqual(
    [t.spec.totals?.requests, t.spec.totals?.rate, t.split?.shares?.map((x) => x.requests), t.aggregate.sent],
    [301, 600, [151, 150], 301],
    'the total rate the form sent',
  );
  // Paced: every request of each driver had a due instant.
  assertEqual(t.per_driver.map((d) => d.schedule_lag?.count), t.per_driver.map((d) => d.sent), 'each driver paced');
  const pline = await page.$eval('[data-testid="test-spec"] .spec-line', (e) => e.textContent);
  assert(pline.startsWith('Avalanche · 301 requests over 2 drivers, shared equally · 600 req/s in total'), `the spec line: ${pline}`);
  log(`test ${paced}: ${pline}`);

  // For a look at the layout: every section open, HTTP/2 and the warning on.
  if (process.env.FORM_SCREENSHOT) {
    for (const name of ['request', 'mix', 'checks', 'thresholds', 'transport']) await openSection(page, name);
    await page.$eval('details.advanced:not([data-section])', (d) => { d.open = true; });
    await page.click('label:has([data-testid="input-http_version-2"])');
    await page.check(tid('input-tls.insecure_skip_verify'));
    await page.setViewportSize({ width: 1440, height: 2000 });
    await page.screenshot({ path: process.env.FORM_SCREENSHOT, fullPage: true });
  }
}

await run(base, main, { expected });
