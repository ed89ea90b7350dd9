#!/usr/bin/env node
// The dashboard against an orchestrator that requires an API token, in headless Chromium.
//
//   node login.mjs <dashboard-url> <token> <target-url>
//
// Against a running orchestrator (token required, at least 2 alive drivers), it:
//   1. opens the page: the sign-in panel shows, and no test or driver data is shown;
//   2. signs in with a wrong token: the API's refusal is shown, still signed out;
//   3. signs in with the right one: the live stream runs (read with fetch, the token in a
//      header) and the drivers appear;
//   4. creates and triggers a test from the form (2 × 200 requests) and sees it complete;
//   5. reloads: still signed in (sessionStorage); signs out: the panel shows again;
//   6. checks that no URL the page ever requested or showed holds the token, and that the
//      token is in sessionStorage only (not localStorage, not a cookie).
// Exit status 0 means every check passed.

import { assert, log, poll, run, text, tid } from './lib.mjs';

const [base, token, targetUrl] = process.argv.slice(2).map((a, i) => (i === 0 ? a?.replace(/\/$/, '') : a));
if (!base || !token || !targetUrl) {
  console.error('usage: node login.mjs <dashboard-url> <token> <target-url>');
  process.exit(2);
}
const WRONG = 'not-the-token-0123456789';

// The 401s before signing in, and with the wrong token, are expected (Chromium logs each as a
// console error too); aborted event streams (a sign-in or a reload replaces them) as well.
const expected = (kind, d) => {
  if (kind === 'console') return /status of 401/.test(d.text());
  if (kind === 'response') return d.status() === 401;
  if (kind === 'requestfailed') return d.url().endsWith('/api/v1/events');
  return false;
};

const urls = [];

async function signIn(page, value) {
  await page.fill(tid('login-token'), value);
  await page.click(tid('login-submit'));
}

async function main(page) {
  page.on('request', (r) => urls.push(r.url()));
  log(`opening ${base}/`);
  await page.goto(`${base}/`, { waitUntil: 'load' });
  await poll('the sign-in panel', () => page.isVisible(tid('login')), 15_000);
  assert((await text(page, 'connection')) === 'sign-in needed', `connection badge: ${await text(page, 'connection')}`);
  assert((await page.$$(tid('driver'))).length === 0, 'drivers shown before signing in');
  assert((await text(page, 'login-error')) === '', 'an error before any attempt');

  await signIn(page, WRONG);
  const refused = await poll('the refusal', async () => (await page.isVisible(tid('login'))) && text(page, 'login-error'), 15_000);
  assert(/refused/.test(refused), `refusal shown: ${refused}`);
  assert((await page.evaluate(() => sessionStorage.length)) === 0, 'a refused token is kept');
  log(`wrong token: "${refused}"`);

  await signIn(page, token);
  await poll('the live badge', async () => (await text(page, 'connection')) === 'live', 15_000);
  assert(!(await page.isVisible(tid('login'))), 'the sign-in panel stays after signing in');
  await poll('2 drivers', async () => (await page.$$(tid('driver'))).length >= 2, 15_000);
  log('signed in: live, drivers shown');

  await page.click('label:has([data-testid="input-type-avalanche"])');
  await page.fill(tid('input-requests_per_driver'), '200');
  await page.fill(tid('input-concurrency'), '4');
  await page.fill(tid('input-target_url'), targetUrl);
  await page.click(tid('submit-run'));
  await poll('the test to complete', async () => (await text(page, 'test-status')) === 'completed', 60_000);
  log(`test ${await text(page, 'test-id')} created from the form and completed`);

  await page.reload({ waitUntil: 'load' });
  await poll('live again after a reload', async () => (await text(page, 'connection')) === 'live', 15_000);
  assert(!(await page.isVisible(tid('login'))), 'signed out by a reload');
  const where = await page.evaluate(() => ({
    session: Object.keys(sessionStorage),
    local: localStorage.length,
    cookie: document.cookie,
    href: location.href,
  }));
  assert(where.session.length === 1 && where.local === 0 && where.cookie === '', `token storage: ${JSON.stringify(where)}`);

  await page.click(tid('logout'));
  await poll('the sign-in panel after signing out', () => page.isVisible(tid('login')), 15_000);
  assert((await page.evaluate(() => sessionStorage.length)) === 0, 'the token is kept after signing out');
  log('reload keeps the sign-in; sign-out forgets it');

  const leaks = [...urls, where.href].filter((u) => u.includes(token) || u.includes(encodeURIComponent(token)));
  assert(leaks.length === 0, `the token is in a URL: ${leaks.join(', ')}`);
  log(`${urls.length} requests, none with the token in its URL`);
}

run(base, main, { expected });
