#!/usr/bin/env node
// A lost driver's share handed over (issue 13, re-split on loss), on the dashboard in headless
// Chromium, against a running orchestrator whose test (given in totals, 3 drivers) lost a driver
// mid-test (the Rust test killed it before starting this script):
//   1. the live panel shows the test and, once the orchestrator judges the driver lost, a line
//      for the hand-over;
//   2. once the test completes, that line says exactly what the REST view says (the instant
//      after the start, the lost driver and why, what it reported sent of its share, the
//      unsent count, each receiver's part and pace, the unknown), and the rate chart marks the
//      hand-over at its instant, labelled "hand-over 1", in place of its switch's rate marker;
//   3. a second, short test becomes the live one: no hand-over shown or marked; the first one,
//      opened from the history, shows its hand-over and its marker again.
// HANDOVER_SCREENSHOT=<path> saves a full-page screenshot of the test opened from the history.
//
//   node handover.mjs <dashboard-url> <test-id> <lost-driver-id> <target-url>

import { apiAt, assert, assertEqual, log, poll, run, text, tid } from './lib.mjs';

const [base, id, lost, targetUrl] = process.argv.slice(2).map((a, i) => (i === 0 ? a?.replace(/\/$/, '') : a));
if (!base || !id || !lost || !targetUrl) {
  console.error('usage: node handover.mjs <dashboard-url> <test-id> <lost-driver-id> <target-url>');
  process.exit(2);
}

// The page's rules, re-implemented on purpose: counts with comma grouping, rates with 1 decimal,
// a duration under a minute as 850 ms or 6.2 s.
const grouped = (s) => s.replace(/^(\d+)/, (int) => int.replace(/\B(?=(\d{3})+(?!\d))/g, ','));
const count = (n) => grouped(n.toFixed(0));
const pace = (v) => grouped(v.toFixed(1));
const since = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

const { get: apiGet, post: apiPost } = apiAt(base);
const testPath = `/api/v1/tests/${id}`;

/** The line the panel must show for hand-over `o` of test view `v` (given to the others). */
function lineFor(v, o) {
  const parts = Object.entries(o.parts).map(([d, p]) => `${d} +${count(p.requests)} at ${pace(p.rate)} req/s`).join(', ');
  const unknown = o.sent_after != null ? `none unknown: it reported ${count(o.sent_after)} more` : `up to ${count(o.unknown)} may have left it unreported`;
  return `hand-over ${o.seq} at ${since(o.at_ms - v.started_at_ms)}: ${o.from} was lost (${o.why}) after reporting `
    + `${count(o.reported_sent)} of ${count(o.share)} sent; the ${count(o.unsent)} unsent were handed to the others: ${parts} · ${unknown}`;
}

// Each read queries and measures in one evaluation: the panel is rebuilt twice a second, and an
// element found in one call may be replaced (detached, with no box) by the next.

/** The panel's hand-over lines as shown. */
const readLines = (page) =>
  page.evaluate((sel) => [...document.querySelectorAll(sel)].map((e) => {
    const one = (name) => e.querySelector(`[data-testid="${name}"]`)?.textContent ?? null;
    return {
      seq: e.dataset.seq,
      text: e.textContent,
      from: one('hand-over-from'),
      unsent: one('hand-over-unsent'),
      receivers: [...e.querySelectorAll('[data-testid="hand-over-part"]')].map((p) => p.dataset.driver),
      visible: e.getBoundingClientRect().height > 0,
    };
  }), `${tid('hand-overs')}:not([hidden]) [data-testid="hand-over"]`);

/** The markers of one chart, by kind, as shown: where along the plot (0..1) and their label. */
const readMarks = (page, chart) =>
  page.evaluate((sel) => [...document.querySelectorAll(sel)].map((e) => {
    const box = e.getBoundingClientRect();
    const plot = e.closest('.u-over').getBoundingClientRect();
    return {
      kind: e.dataset.testid,
      seq: e.dataset.seq,
      t: Number(e.dataset.t),
      label: e.textContent,
      shown: !e.hidden && box.height > 0,
      along: (box.left - plot.left) / plot.width,
    };
  }), `${tid(chart)} .rate-markers > div`);

/** The line, its parts and the markers of the test view `v`, as the page must show them. */
async function checkShown(page, v, where) {
  const o = v.hand_overs[0];
  const want = lineFor(v, o);
  const lines = await poll(`the completed test's hand-over line (${where})`, async () => {
    const l = await readLines(page);
    const done = (await text(page, 'test-id')) === v.id && (await text(page, 'test-status')) === 'completed';
    return done && l.length === 1 && l[0].text === want ? l : null;
  }, 15_000).catch(async (e) => {
    assertEqual((await readLines(page)).map((l) => l.text), [want], `the panel's hand-over (${where})`);
    throw e;
  });
  assertEqual(lines[0], { seq: String(o.seq), text: want, from: lost, unsent: count(o.unsent), receivers: Object.keys(o.parts), visible: true },
    `the hand-over's parts (${where})`);
  const at = (o.at_ms - v.started_at_ms) / 1000;
  const marks = await poll(`the hand-over's marker (${where})`, async () => {
    const m = (await readMarks(page, 'chart-rps')).filter((x) => x.shown);
    return m.some((x) => x.kind === 'hand-over-marker') ? m : null;
  }, 15_000);
  // One line per instant: the hand-over's own, not also its paced switch's rate-change marker.
  assertEqual(marks.map((m) => [m.kind, m.seq, m.t, m.label]), [['hand-over-marker', String(o.seq), at, `hand-over ${o.seq}`]], `the rate chart's markers (${where})`);
  assert(marks[0].along > 0.02 && marks[0].along < 0.98, `the marker at ${marks[0].along} of the plot (${where})`);
  const latency = (await readMarks(page, 'chart-latency')).filter((x) => x.shown).map((m) => [m.kind, m.t]);
  assertEqual(latency, [['hand-over-marker', at]], `the latency chart's markers (${where})`);
  log(`${where}: "${want}"; marker "${marks[0].label}" at ${at.toFixed(3)} s (${(marks[0].along * 100).toFixed(1)}% along)`);
}

async function main(page) {
  log(`opening ${base}/`);
  await page.goto(`${base}/`, { waitUntil: 'load' });
  await poll('the live badge', async () => (await text(page, 'connection')) === 'live', 15_000);

  // ---- 1. live: the test, then its hand-over once the driver is judged lost
  await poll(`test ${id} in the panel`, async () => (await text(page, 'test-id')) === id, 15_000);
  const first = await poll('a hand-over in the live panel', async () => {
    const l = await readLines(page);
    return l.length ? { line: l[0], status: await text(page, 'test-status') } : null;
  }, 40_000, 200);
  assertEqual([first.line.from, first.line.receivers.length], [lost, 2], 'the live hand-over');
  log(`live (test ${first.status}): "${first.line.text}"`);

  // ---- 2. completed: the line and the marker as the REST view says
  const v = await poll(`test ${id} to complete, its numbers final`, async () => {
    const x = await apiGet(testPath);
    assert(!['failed', 'stopped'].includes(x.status), `test ${id} ended ${x.status}`);
    return x.settled && x.status === 'completed' ? x : null;
  }, 60_000, 200);
  assertEqual(v.hand_overs?.length, 1, 'hand-overs in the view');
  const o = v.hand_overs[0];
  const receivers = Object.keys(o.parts);
  assertEqual([o.from, o.replacement ?? null, receivers.length, receivers.includes(lost)], [lost, null, 2, false], 'the hand-over in the view');
  assert(o.unsent > 0 && o.unsent === o.share - o.reported_sent, `unsent: ${JSON.stringify(o)}`);
  await checkShown(page, v, 'live, completed');

  // ---- 3. another test live: nothing marked; the first one drilled into from the history
  const next = await apiPost('/api/v1/tests', {
    test_type: 'avalanche', total_requests: 100, split: 'equal', concurrency: 2, target_url: targetUrl, trigger: true,
  });
  assert(next.status === 201, `the second test: ${JSON.stringify(next)}`);
  await poll('the second test live and completed', async () =>
    (await text(page, 'test-id')) === next.body.id && (await text(page, 'test-status')) === 'completed', 30_000, 200);
  assert(await page.$eval(tid('hand-overs'), (e) => e.hidden), 'no hand-over shown for the second test');
  assertEqual((await readMarks(page, 'chart-rps')).filter((m) => m.shown), [], 'no marker for the second test');
  const row = `[data-testid="history-row"][data-test-id="${id}"]`;
  await poll('the first test in the history', async () => (await page.$(row)) !== null, 10_000);
  await page.click(row);
  await poll('the drill-in view', async () => (await text(page, 'test-id')) === id, 10_000);
  await checkShown(page, v, 'opened from the history');

  if (process.env.HANDOVER_SCREENSHOT) await page.screenshot({ path: process.env.HANDOVER_SCREENSHOT, fullPage: true });
}

await run(base, main);
