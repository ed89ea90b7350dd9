#!/usr/bin/env node
// A running test's live rate change from the dashboard (issue 13), in headless Chromium, against
// a running orchestrator with 2 alive drivers and the real target:
//   1. a test given in totals (3,000 requests at 300 req/s, shared equally) is started through
//      the API; the panel offers "Change rate" labelled for its pace (Total rate), prefilled 300;
//   2. a bad value (0) is refused: the API's 400 message is shown at the field, which is marked
//      invalid, and nothing changes; editing clears it;
//   3. 600 is applied once 600 requests are sent: the view gets rate change 1 at 600 req/s with both drivers having
//      switched, the control shows 600, the panel's history says so (the instant after the
//      start, the total, 2 drivers and their switch skew), and the rate chart marks it at its
//      instant, labelled with the new rate;
//   4. the test completes with every request sent (3,000): the control is gone, the history and
//      the marker stay, and the history table counts the change.
// The Rust test checks the target's own count (exactly 3,000).
// RATE_SCREENSHOT=<path> saves a full-page screenshot of the finished test.
//
//   node rate.mjs <dashboard-url> <target-url>

import { apiAt, assert, assertEqual, log, poll, run, text, tid } from './lib.mjs';

const [base, targetUrl] = process.argv.slice(2).map((a, i) => (i === 0 ? a?.replace(/\/$/, '') : a));
if (!base || !targetUrl) {
  console.error('usage: node rate.mjs <dashboard-url> <target-url>');
  process.exit(2);
}

// The page's rules, re-implemented on purpose: rates with 1 decimal and latencies in ms with 3,
// comma grouping; a duration under a minute as 850 ms or 6.2 s.
const group = (s) => {
  const [int, frac] = s.split('.');
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (frac === undefined ? '' : `.${frac}`);
};
const fmtRps = (v) => group(v.toFixed(1));
const fmtMs = (v) => group(v.toFixed(3));
const fmtShort = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

const { get: apiGet, post: apiPost } = apiAt(base);

async function apiPatch(path, body) {
  const r = await fetch(base + path, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

// The deliberately refused rate change's 400 (Chromium logs it as a console error too).
let testPath = null;
let refused = 0;
const expected = (kind, d) => {
  if (!refused || !testPath) return false;
  if (kind === 'console') return /status of 400/.test(d.text()) && (d.location()?.url ?? '').endsWith(testPath);
  if (kind === 'response') return d.status() === 400 && d.request().method() === 'PATCH' && d.url().endsWith(testPath);
  return false;
};

/** The control as shown. */
const readControl = (page) =>
  page.$eval(tid('rate-form'), (f) => {
    const input = f.querySelector('[data-testid="rate-input"]');
    return {
      hidden: f.hidden,
      label: f.querySelector('[data-testid="rate-label"]').textContent.replace(/\s+/g, ' ').trim(),
      value: input.value,
      field: input.dataset.field,
    };
  });

/** The rate chart's markers as shown. */
const readMarkers = (page) =>
  page.$$eval(`${tid('chart-rps')} [data-testid="rate-change-marker"]`, (els) => els.map((e) => {
    const box = e.getBoundingClientRect();
    const over = e.closest('.u-over').getBoundingClientRect();
    return {
      seq: e.dataset.seq,
      t: Number(e.dataset.t),
      label: e.textContent,
      visible: !e.hidden && box.height > 0,
      inside: box.left >= over.left - 1 && box.left <= over.right + 1,
      // Where it is along the plot, 0..1.
      at: (box.left - over.left) / over.width,
    };
  }));

async function main(page) {
  log(`opening ${base}/`);
  await page.goto(`${base}/`, { waitUntil: 'load' });
  await poll('the live badge', async () => (await text(page, 'connection')) === 'live', 15_000);
  await poll('2 alive drivers', async () => (await apiGet('/api/v1/drivers')).drivers.filter((d) => d.alive).length >= 2, 15_000);

  // ---- 1. a running test given in totals, and its control
  const created = await apiPost('/api/v1/tests', {
    test_type: 'avalanche', total_requests: 3000, total_rate: 300, split: 'equal', concurrency: 4,
    target_url: targetUrl, trigger: true,
  });
  assert(created.status === 201, `create: ${JSON.stringify(created)}`);
  const id = created.body.id;
  testPath = `/api/v1/tests/${id}`;
  await poll('the running test in the panel', async () => (await text(page, 'test-id')) === id && (await text(page, 'test-status')) === 'running', 15_000);
  const control = await poll('the rate control', async () => {
    const c = await readControl(page);
    return !c.hidden && c.value !== '' ? c : null;
  }, 10_000);
  assertEqual(control, { hidden: false, label: 'Total rate req/s over all drivers', value: '300', field: 'total_rate' }, 'the control for a test given in totals');
  assert(await page.$eval(tid('rate-changes'), (e) => e.hidden), 'no history of changes before one');

  // ---- 2. a bad value: the API's message at the field, nothing changes
  const direct = await apiPatch(testPath, { total_rate: 0 });
  assert(direct.status === 400 && direct.body.field === 'total_rate', `the API for total_rate 0: ${JSON.stringify(direct)}`);
  const want = direct.body.error.replace('total_rate: ', '');
  await page.fill(tid('rate-input'), '0');
  refused += 1;
  await page.click(tid('rate-apply'));
  const shown = await poll('the error at the rate field', async () => text(page, 'rate-error'), 10_000);
  assertEqual(shown, want, 'the error shown at the rate field');
  const placement = await page.$eval(tid('rate-error'), (e) => {
    const input = document.querySelector('[data-testid="rate-input"]');
    return {
      nearField: e.closest('.field')?.contains(input) ?? false,
      invalid: input.getAttribute('aria-invalid'),
      focused: document.activeElement === input,
      visible: e.getBoundingClientRect().height > 0,
    };
  });
  assertEqual(placement, { nearField: true, invalid: 'true', focused: true, visible: true }, 'placement of the rate error');
  assert(!(await apiGet(testPath)).rate_changes, 'a refused value changed the rate');
  log(`total_rate 0: "${shown}" shown at the field`);

  // ---- 3. 600 req/s, mid-test: once a fifth of the requests are sent (2 s at 300 req/s)
  await poll('600 requests sent', async () => (await apiGet(testPath)).aggregate.sent >= 600, 20_000, 100);
  await page.fill(tid('rate-input'), '600');
  assertEqual([await text(page, 'rate-error'), await page.getAttribute(tid('rate-input'), 'aria-invalid')], ['', null], 'the error clears when the field is edited');
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().endsWith(testPath), { timeout: 10_000 }),
    page.click(tid('rate-apply')),
  ]);
  const answer = await resp.json();
  assert(resp.status() === 200, `the change from the page: HTTP ${resp.status()} ${JSON.stringify(answer)}`);
  assertEqual(answer.rate_changes?.map((c) => [c.seq, c.input, c.total_rate]), [[1, { total_rate: 600 }, 600]], 'the change the page asked for');
  const v = await poll('both drivers to switch', async () => {
    const t = await apiGet(testPath);
    return t.rate_changes?.[0]?.applied?.length === 2 ? t : null;
  }, 20_000, 200);
  const ch = v.rate_changes[0];
  assertEqual([v.rate_changes.length, ch.seq, ch.total_rate, ch.applied.map((a) => a.driver_id).sort(), Object.keys(ch.rates).sort()],
    [1, 1, 600, [...v.drivers].sort(), [...v.drivers].sort()], 'the change in the view');
  assert(typeof ch.switch_skew_ms === 'number', `no switch skew: ${JSON.stringify(ch)}`);
  const line = `rate change 1 at ${fmtShort(ch.at_ms - v.started_at_ms)}: ${fmtRps(600)} req/s in total · 2 drivers switched within ${fmtMs(ch.switch_skew_ms)} ms`;
  await poll('the change in the panel', async () => {
    const lines = await page.$$eval(`${tid('rate-changes')} [data-testid="rate-change"]`, (els) => els.map((e) => e.textContent));
    return lines.length === 1 && lines[0] === line;
  }, 10_000).catch(async (e) => {
    assertEqual(await page.$$eval(`${tid('rate-changes')} [data-testid="rate-change"]`, (els) => els.map((x) => x.textContent)), [line], 'the panel\'s history');
    throw e;
  });
  assertEqual((await readControl(page)).value, '600', 'the control shows the new pace');
  log(`panel: "${line}"`);

  // The marker, once the chart's time axis reaches the change.
  const tSwitch = (ch.at_ms - v.started_at_ms) / 1000;
  const marker = await poll('the marker on the rate chart', async () => {
    const m = await readMarkers(page);
    return m.length === 1 && m[0].visible ? m[0] : null;
  }, 20_000, 200);
  assertEqual([marker.seq, marker.t, marker.label, marker.inside], ['1', tSwitch, `${fmtRps(600)} req/s`, true], 'the marker');
  log(`marker at ${tSwitch.toFixed(3)} s (${(marker.at * 100).toFixed(1)}% along the plot): "${marker.label}"`);

  // ---- 4. the end: every request, the control gone, the history and the marker kept
  await poll(`test ${id} to complete on the page`, async () => {
    const status = await text(page, 'test-status');
    assert(!['failed', 'stopped'].includes(status), `test ${id} ended ${status}`);
    return status === 'completed';
  }, 60_000, 200);
  const t = await poll(`test ${id} settled`, async () => {
    const x = await apiGet(testPath);
    return x.settled && x.status === 'completed' ? x : null;
  }, 30_000, 200);
  assertEqual([t.aggregate.sent, t.aggregate.responses, t.aggregate.error_total], [3000, 3000, 0], 'the totals');
  assertEqual(t.per_driver.map((d) => d.sent), [1500, 1500], 'each driver\'s share');
  assert(await page.$eval(tid('rate-form'), (f) => f.hidden), 'no rate control on a finished test');
  const end = await poll('the final marker and history', async () => {
    const m = await readMarkers(page);
    const lines = await page.$$eval(`${tid('rate-changes')} [data-testid="rate-change"]`, (els) => els.length);
    return m.length === 1 && m[0].visible && lines === 1 ? m[0] : null;
  }, 10_000);
  // The whole test on the axis now: the switch is inside it, not at an edge.
  assert(end.at > 0.02 && end.at < 0.98, `the marker at ${end.at} of the plot`);
  const pill = await poll('the count in the history table', async () =>
    page.$eval(`[data-testid="history-row"][data-test-id="${id}"] [data-testid="history-rate-changes"]`, (e) => e.textContent).catch(() => null), 10_000);
  assertEqual(pill, '1 rate change', 'the history table\'s count');
  log(`test ${id}: completed, 3,000 sent, history "${pill}"`);

  if (process.env.RATE_SCREENSHOT) await page.screenshot({ path: process.env.RATE_SCREENSHOT, fullPage: true });
}

await run(base, main, { expected });
