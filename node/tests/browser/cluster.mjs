#!/usr/bin/env node
// The dashboard of an operator in a real cluster, reached through `kubectl port-forward`, in
// headless Chromium (operator/tests/cluster.rs).
//
//   node cluster.mjs <forwarded-url> <token> <test-id>
//
// It signs in with the API token, waits for the live stream, finds the LoadTest's finished test
// in the history, opens it and checks that the aggregate "sent" the page shows is the REST API's.
// Exit status 0 (and "dashboard ok") means every check passed.

import { assert, log, poll, run, text, tid } from './lib.mjs';

const [base, token, id] = process.argv.slice(2).map((a, i) => (i === 0 ? a?.replace(/\/$/, '') : a));
if (!base || !token || !id) {
  console.error('usage: node cluster.mjs <forwarded-url> <token> <test-id>');
  process.exit(2);
}

// Before signing in, the page's reads are refused (401), which Chromium logs as console errors.
let signedIn = false;
const expected = (kind, d) => {
  if (signedIn) return false;
  if (kind === 'console') return /status of 401/.test(d.text());
  if (kind === 'response') return d.status() === 401;
  if (kind === 'requestfailed') return d.url().endsWith('/api/v1/events');
  return false;
};

async function main(page) {
  log(`opening ${base}/ (a kubectl port-forward)`);
  await page.goto(`${base}/`, { waitUntil: 'load' });
  await poll('the sign-in panel', () => page.isVisible(tid('login')), 20_000);
  await page.fill(tid('login-token'), token);
  await page.click(tid('login-submit'));
  await poll('the live badge', async () => (await text(page, 'connection')) === 'live', 20_000);
  signedIn = true;
  log('signed in, live');

  const view = await page.evaluate(async ([id, token]) => {
    const r = await fetch(`/api/v1/tests/${id}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: r.status, body: await r.json() };
  }, [id, token]);
  assert(view.status === 200, `GET /api/v1/tests/${id}: ${view.status}`);
  const sent = view.body.aggregate.sent;

  const row = `[data-testid="history-row"][data-test-id="${id}"]`;
  await poll('the test in the history', async () => (await page.$(row)) !== null, 20_000);
  await page.click(row);
  await poll('the drill-in view', async () => (await text(page, 'test-id')) === id, 10_000);
  const shown = await poll('the aggregate row', () =>
    page.$eval('[data-testid="stats-row"][data-row="aggregate"] [data-metric="sent"]', (e) => e.textContent).catch(() => null),
  10_000);
  assert(Number(shown.replace(/,/g, '')) === sent, `sent on the page ${shown}, in the API ${sent}`);
  log(`test ${id.slice(0, 8)}: ${shown} sent, as the API says`);
  console.log('dashboard ok');
}

await run(base, main, { expected });
