#!/usr/bin/env node
// End-to-end test of the dashboard in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; a fresh profile per run).
//
//   node dashboard.mjs <dashboard-url> <target-url> <screenshot.png>
//
// Against a running orchestrator with at least 2 alive drivers, it:
//   1. opens the page and waits for the live stream and the drivers;
//   2. submits the form with requests = 0 and checks that the API's error appears next to that
//      field (and that no test was created);
//   3. creates and triggers a Tsunami test from the form (2 drivers × 3000 requests, 2 ms apart,
//      about 6 s) and sees every driver's "sent" count on the page increase at least twice while
//      the test runs;
//   4. waits for "completed" and checks that every number on the page (aggregate and per-driver
//      counts, req/s, min/mean/median/mode/p90/p95/p99/max, progress) equals the REST API's
//      /api/v1/tests/{id}, formatted with the page's documented rounding;
//   5. checks the charts were drawn, the table fits 1440×900 and 1920×1080, saves a full-page
//      screenshot, then drills into the test from the history after another test has run;
//   6. fails on any console error, page error or failed request.
// Exit status 0 means every check passed. Set DASHBOARD_WIDE_SCREENSHOT=<path> for a second,
// 1920×1080 screenshot.

import { assert, assertEqual, log, poll, run, text, tid } from './lib.mjs';

const [base, targetUrl, screenshotPath] = process.argv.slice(2).map((a, i) => (i === 0 ? a?.replace(/\/$/, '') : a));
if (!base || !targetUrl || !screenshotPath) {
  console.error('usage: node dashboard.mjs <dashboard-url> <target-url> <screenshot.png>');
  process.exit(2);
}

const REQUESTS = 3000;
const DELAY_MS = 2;

// ----------------------------------------------------------------- the page's formatting rules
// Re-implemented here on purpose (not imported from the page): counts are integers with comma
// grouping, latencies ms with 3 decimals, rates 1 decimal, rounding by Number#toFixed.
const group = (s) => {
  const [int, frac] = s.split('.');
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (frac === undefined ? '' : `.${frac}`);
};
const fmt = {
  int: (n) => group(String(n)),
  ms: (v) => group(v.toFixed(3)),
  rps: (v) => group(v.toFixed(1)),
};

/** What the page must show for one row of the stats table, from the API's Stats. */
function expectedRow(s) {
  const l = s.latency;
  return sorted({
    sent: fmt.int(s.sent),
    responses: fmt.int(s.responses),
    ok: fmt.int(s.ok),
    errors: fmt.int(s.error_total),
    rps: fmt.rps(s.achieved_rps),
    min: fmt.ms(l.min_ms),
    mean: fmt.ms(l.mean_ms),
    median: fmt.ms(l.median_ms),
    mode: fmt.ms(l.mode_ms),
    p90: fmt.ms(l.p90_ms),
    p95: fmt.ms(l.p95_ms),
    p99: fmt.ms(l.p99_ms),
    max: fmt.ms(l.max_ms),
    progress: s.progress >= 1 ? '100%' : `${(Math.floor(s.progress * 1000) / 10).toFixed(1)}%`,
  });
}

// ----------------------------------------------------------------- helpers

async function apiGet(path) {
  const r = await fetch(base + path);
  assert(r.ok, `GET ${path}: HTTP ${r.status}`);
  return r.json();
}

async function apiPost(path, body) {
  const r = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

/** The stats table as shown: [{row, driver, cells: {metric: text}}]. */
const readRows = (page) =>
  page.$$eval(tid('stats-row'), (rows) =>
    rows.map((r) => ({
      row: r.dataset.row,
      driver: r.dataset.driver,
      cells: Object.fromEntries([...r.querySelectorAll('[data-metric]')].map((e) => [e.dataset.metric, e.textContent])),
    })),
  ).then((rows) => rows.map((r) => ({ ...r, cells: sorted(r.cells) })));

/** The same object with its keys in order, for comparing as JSON. */
const sorted = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

const count = (s) => Number(String(s).replace(/,/g, ''));

// ----------------------------------------------------------------- the test

// The one expected failure is the deliberately invalid form's 400 (Chromium logs it as a console
// error too).
let invalidPosts = 0;
const expected = (kind, d) => {
  if (invalidPosts === 0) return false;
  if (kind === 'console') return /status of 400/.test(d.text()) && (d.location()?.url ?? '').endsWith('/api/v1/tests');
  if (kind === 'response') return d.status() === 400 && d.request().method() === 'POST' && d.url().endsWith('/api/v1/tests');
  return false;
};

async function main(page) {
  log(`opening ${base}/`);
  await page.goto(`${base}/`, { waitUntil: 'load' });
  assert((await page.title()) === 'Floodgate', 'page title');
  await poll('the live badge', async () => (await text(page, 'connection')) === 'live', 15_000);

  // Drivers: the page lists what the API lists.
  const apiDrivers = (await apiGet('/api/v1/drivers')).drivers.filter((d) => d.alive);
  assert(apiDrivers.length >= 2, `need 2 alive drivers, the API has ${apiDrivers.length}`);
  await poll('the drivers list', async () => {
    const shown = await page.$$eval(tid('driver'), (els) =>
      els.map((e) => ({
        id: e.dataset.driver,
        state: e.querySelector('[data-testid="driver-state"]').textContent,
        address: e.querySelector('[data-testid="driver-address"]').textContent,
      })),
    );
    return apiDrivers.every((d) => shown.some((s) => s.id === d.id && s.state === 'alive' && s.address === d.address));
  }, 10_000);
  log(`drivers shown: ${apiDrivers.map((d) => d.id).join(', ')}`);

  // ---- an invalid submission: the API's message next to the field, and nothing created
  const before = (await apiGet('/api/v1/tests')).tests.length;
  await page.click('label:has([data-testid="input-type-tsunami"])');
  await page.fill(tid('input-delay_ms'), String(DELAY_MS));
  await page.fill(tid('input-requests_per_driver'), '0');
  await page.fill(tid('input-throughput_per_driver'), '');
  await page.fill(tid('input-concurrency'), '16');
  await page.fill(tid('input-target_url'), targetUrl);
  const invalidSpec = { test_type: 'tsunami', delay_ms: DELAY_MS, requests_per_driver: 0, target_url: targetUrl, concurrency: 16 };
  const apiError = await apiPost('/api/v1/tests', invalidSpec);
  assert(apiError.status === 400 && apiError.body.field === 'requests_per_driver', `API: ${JSON.stringify(apiError)}`);
  const wantMessage = apiError.body.error.replace(/^requests_per_driver: /, '');
  invalidPosts += 1;
  await page.click(tid('submit-run'));
  const shownError = await poll('the error next to "requests"', async () => text(page, 'error-requests_per_driver'), 10_000);
  assertEqual(shownError, wantMessage, 'error shown next to requests_per_driver');
  const placement = await page.$eval(tid('error-requests_per_driver'), (e) => {
    const input = document.querySelector('[data-testid="input-requests_per_driver"]');
    return {
      sameField: e.closest('.field')?.contains(input) ?? false,
      invalid: input.getAttribute('aria-invalid'),
      visible: e.getBoundingClientRect().height > 0,
      generalHidden: document.querySelector('[data-testid="form-error"]').hidden,
    };
  });
  assertEqual(placement, { sameField: true, invalid: 'true', visible: true, generalHidden: true }, 'error placement');
  assert((await apiGet('/api/v1/tests')).tests.length === before, 'an invalid form created a test');
  log(`invalid form: "${shownError}" shown next to the field`);

  // ---- a valid test from the form
  await page.fill(tid('input-requests_per_driver'), String(REQUESTS));
  assert((await text(page, 'error-requests_per_driver')) === '', 'the error clears when the field is edited');
  await page.click(tid('submit-run'));
  await poll('the success message', async () => (await page.isVisible(tid('form-ok'))) || (await page.isVisible(tid('form-error'))), 10_000);
  assert(!(await page.isVisible(tid('form-error'))), `form error: ${await text(page, 'form-error')}`);
  const id = await poll('the new test on the page', async () => {
    const shown = await text(page, 'test-id');
    return shown && shown !== '' ? shown : null;
  }, 10_000);
  const created = (await apiGet('/api/v1/tests')).tests[0];
  assert(created.id === id, `the page shows test ${id}, the API's newest is ${created.id}`);
  assertEqual(
    [created.spec.test_type, created.spec.delay_ms, created.spec.requests_per_driver, created.spec.target_url, created.spec.concurrency, created.spec.throughput_per_driver],
    ['TSUNAMI', DELAY_MS, REQUESTS, targetUrl, 16, null],
    'the spec the form sent',
  );
  log(`test ${id} created and triggered from the form`);

  // ---- per-driver counts move while it runs
  const seen = new Map(created.drivers.map((d) => [d, []]));
  let status = '';
  await poll('every driver\'s "sent" count to increase twice while running', async () => {
    status = await text(page, 'test-status');
    if (status !== 'running') {
      assert(!['completed', 'failed', 'stopped'].includes(status), `the test ended (${status}) before the counts were seen moving: ${JSON.stringify([...seen])}`);
      return false;
    }
    for (const r of await readRows(page)) {
      const values = seen.get(r.driver);
      if (r.row !== 'driver' || !values) continue;
      const v = count(r.cells.sent);
      const last = values.at(-1);
      assert(last === undefined || v >= last, `driver ${r.driver}: sent went back from ${last} to ${v}`);
      if (v > 0 && v < REQUESTS && v !== last) values.push(v);
    }
    return [...seen.values()].every((v) => v.length >= 3);
  }, 60_000, 150);
  log(`sent counts seen moving: ${[...seen].map(([d, v]) => `${d} ${v.join(' → ')}`).join('; ')}`);

  // ---- the end: the page's numbers are the API's
  await poll('the test to complete on the page', async () => {
    status = await text(page, 'test-status');
    assert(!['failed', 'stopped'].includes(status), `the test ended ${status}`);
    return status === 'completed';
  }, 120_000, 200);
  log('completed on the page');
  const api = await apiGet(`/api/v1/tests/${id}`);
  assert(api.status === 'completed', `API status ${api.status}`);
  const want = [
    { row: 'aggregate', driver: '', cells: expectedRow(api.aggregate) },
    ...api.per_driver.map((d) => ({ row: 'driver', driver: d.driver_id, cells: expectedRow(d) })),
  ];
  let shown;
  try {
    await poll('the final numbers', async () => JSON.stringify((shown = await readRows(page))) === JSON.stringify(want), 5_000);
  } catch {
    assertEqual(shown, want, 'final numbers on the page');
  }
  assert(api.aggregate.sent === REQUESTS * api.drivers.length, `aggregate sent ${api.aggregate.sent}`);
  assertEqual(
    [await text(page, 'kpi-sent'), await text(page, 'kpi-progress'), await text(page, 'kpi-errors'), await text(page, 'kpi-p99')],
    [fmt.int(api.aggregate.sent), '100%', fmt.int(api.aggregate.error_total), fmt.ms(api.aggregate.latency.p99_ms)],
    'summary figures',
  );
  log(`final numbers equal the API's: aggregate ${JSON.stringify(want[0].cells)}`);
  // A Tsunami is paced: its three timings side by side, the API's numbers.
  const pair = (l) => `${fmt.ms(l.median_ms)} / ${fmt.ms(l.p99_ms)}`;
  assert(api.aggregate.schedule_lag.count === api.aggregate.sent, `one schedule lag per request: ${JSON.stringify(api.aggregate.schedule_lag)}`);
  assertEqual(
    await text(page, 'timing-line'),
    `p50 / p99 ms: latency from due ${pair(api.aggregate.latency)} · service time ${pair(api.aggregate.service_time)} · schedule lag ${pair(api.aggregate.schedule_lag)}`,
    'the timing line',
  );
  // How far apart the drivers started, as the API says, with each driver's lag percentiles.
  const skew = api.start_skew;
  assert(skew && skew.drivers === api.drivers.length, `a start skew over every driver: ${JSON.stringify(skew)}`);
  const lags = api.per_driver
    .map((d) => `${d.driver_id} ${fmt.ms(d.schedule_lag.median_ms)} / ${fmt.ms(d.schedule_lag.p99_ms)} / ${fmt.ms(d.schedule_lag.max_ms)}`)
    .join(' · ');
  assertEqual(
    await text(page, 'start-skew'),
    `start skew ${fmt.ms(skew.skew_ms)} ms over ${fmt.int(skew.drivers)} drivers (clock bound ±${fmt.ms(skew.bound_ms)} ms) · schedule lag p50 / p99 / max ms: ${lags}`,
    'the start line',
  );

  // ---- charts, history, footnote, layout
  const series = await apiGet(`/api/v1/tests/${id}/series`);
  const points = await poll('the charts', async () => {
    const n = await page.$eval(tid('chart-rps'), (e) => (e.querySelector('canvas') ? Number(e.dataset.points) : 0));
    return n >= series.points.length && n >= 5 ? n : 0;
  }, 10_000);
  const legend = await page.$$eval(`${tid('chart-rps')} .u-legend .u-label`, (els) => els.map((e) => e.textContent));
  assert(created.drivers.every((d) => legend.includes(d)) && legend.includes('Total'), `rps legend: ${legend}`);
  const latLegend = await page.$$eval(`${tid('chart-latency')} .u-legend .u-label`, (els) => els.map((e) => e.textContent));
  assert(['p50 ms', 'p95 ms', 'p99 ms'].every((l) => latLegend.includes(l)), `latency legend: ${latLegend}`);
  await poll('the history row', async () =>
    page.$eval(`[data-testid="history-row"][data-test-id="${id}"]`, (r) => r.querySelector('[data-testid="history-status"]').textContent === 'completed').catch(() => false),
  10_000);
  assert(/0\.1 ms bins/.test(await text(page, 'mode-footnote')), 'the mode footnote explains the 0.1 ms bins');
  assert(/0\.1 ms/.test(await page.getAttribute(tid('mode-header'), 'title')), 'the Mode header has a tooltip');
  log(`charts drawn with ${points} points; history row completed`);

  for (const viewport of [{ width: 1440, height: 900 }, { width: 1920, height: 1080 }]) {
    await page.setViewportSize(viewport);
    let fit;
    await poll(`layout at ${viewport.width}×${viewport.height}`, async () => {
      fit = await page.evaluate(() => {
        const wrap = document.querySelector('[data-testid="stats-table"]').parentElement;
        const canvas = document.querySelector('[data-testid="chart-rps"] canvas');
        const panel = document.querySelector('[data-testid="chart-rps"]');
        return {
          page: [document.documentElement.scrollWidth, window.innerWidth],
          table: [wrap.scrollWidth, wrap.clientWidth],
          chart: [canvas ? Math.round(canvas.getBoundingClientRect().width) : 0, panel.clientWidth],
        };
      });
      const fits = ([need, have]) => need <= have;
      return fits(fit.page) && fits(fit.table) && Math.abs(fit.chart[0] - fit.chart[1]) <= 2;
    }, 5_000).catch((e) => {
      throw new Error(`${e.message}: [needed, available] widths ${JSON.stringify(fit)}`);
    });
  }
  if (process.env.DASHBOARD_WIDE_SCREENSHOT) {
    await page.screenshot({ path: process.env.DASHBOARD_WIDE_SCREENSHOT, fullPage: true });
  }
  await page.setViewportSize({ width: 1440, height: 900 });
  await poll('the charts to fit 1440 px again', async () =>
    page.evaluate(() => {
      const canvas = document.querySelector('[data-testid="chart-rps"] canvas');
      return Math.abs(canvas.getBoundingClientRect().width - document.querySelector('[data-testid="chart-rps"]').clientWidth) <= 2;
    }),
  5_000);
  await page.mouse.move(0, 0);
  await page.screenshot({ path: screenshotPath, fullPage: true });
  log(`layout fits 1440×900 and 1920×1080; screenshot saved to ${screenshotPath}`);

  // ---- drill into the test from the history once another test is the live one
  const second = await apiPost('/api/v1/tests', { test_type: 'avalanche', requests_per_driver: 200, target_url: targetUrl, concurrency: 4, trigger: true });
  assert(second.status === 201, `second test: ${JSON.stringify(second)}`);
  await poll('the second test to complete on the page', async () =>
    (await text(page, 'test-id')) === second.body.id && (await text(page, 'test-status')) === 'completed',
  60_000, 200);
  await page.click(`[data-testid="history-row"][data-test-id="${id}"]`);
  await poll('the drill-in view', async () => (await text(page, 'test-id')) === id && (await page.isVisible(tid('back-live'))), 10_000);
  assertEqual(await readRows(page), want, 'drilled-in numbers');
  const drilled = await poll('the drilled-in charts', async () => {
    const n = await page.$eval(tid('chart-rps'), (e) => Number(e.dataset.points));
    return n === series.points.length ? n : 0;
  }, 10_000);
  await page.click(tid('back-live'));
  await poll('back to live', async () => (await text(page, 'test-id')) === second.body.id, 10_000);
  log(`drill-in from the history shows test ${id.slice(0, 8)} with its ${drilled} chart points`);
}

await run(base, main, { expected, failureShot: screenshotPath.replace(/(\.png)?$/, '.failure.png') });
