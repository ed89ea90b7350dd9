// Shared by the dashboard's browser tests: Chromium launch, page watching, polling, assertions.

import { chromium } from 'playwright-core';

/** Debian's Chromium, headless; `launch()` gives every run a fresh, empty profile. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Collects everything that must not happen on the page: console errors and warnings, page errors,
 * dialogs (an injected script's alert), failed requests, HTTP errors, requests to another origin.
 * `expected(kind, detail)` may excuse a problem (e.g. the 400 of a deliberately invalid form).
 * Returns {problems, closing()}: call closing() before closing the browser.
 */
export function watchPage(page, origin, expected = () => false) {
  const problems = [];
  let closed = false;
  const add = (kind, detail, text) => {
    if (!closed && !expected(kind, detail)) problems.push(text);
  };
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') {
      add('console', m, `console ${m.type()}: ${m.text()} (${m.location()?.url ?? ''})`);
    }
  });
  page.on('pageerror', (e) => add('pageerror', e, `page error: ${e.message}`));
  page.on('dialog', async (d) => {
    add('dialog', d, `a dialog opened (an injected script?): ${d.message()}`);
    await d.dismiss().catch(() => {});
  });
  page.on('request', (r) => {
    if (!r.url().startsWith(`${origin}/`) && !r.url().startsWith('data:')) add('request', r, `request to another origin: ${r.url()}`);
  });
  page.on('requestfailed', (r) => add('requestfailed', r, `request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) add('response', r, `HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
  return {
    problems,
    closing() {
      closed = true;
    },
  };
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

export function assertEqual(actual, expected, what) {
  const a = JSON.stringify(actual, null, 1);
  const e = JSON.stringify(expected, null, 1);
  assert(a === e, `${what}:\n  page: ${a}\n  want: ${e}`);
}

/** Calls `f` until it returns a truthy value; fails naming `what` at the deadline. */
export async function poll(what, f, timeoutMs, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A [data-testid] selector. */
export const tid = (id) => `[data-testid="${id}"]`;

/** The trimmed text of a [data-testid] element. */
export const text = (page, id) => page.$eval(tid(id), (e) => e.textContent.trim());

/** Prints a line prefixed with the seconds since start. */
const t0 = Date.now();
export const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

/** Runs `body(page)` in a 1440×900 page, then reports: exit 0 only if it passed with no problems. */
export async function run(origin, body, { expected, failureShot } = {}) {
  const browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const watch = watchPage(page, origin, expected);
  let failed = false;
  try {
    await body(page);
  } catch (e) {
    failed = true;
    console.error(`FAIL: ${e.message}`);
    if (failureShot) await page.screenshot({ path: failureShot, fullPage: true }).catch(() => {});
  }
  watch.closing();
  await browser.close();
  if (watch.problems.length > 0) {
    failed = true;
    console.error(`FAIL: the page reported ${watch.problems.length} problem(s):\n  ${watch.problems.join('\n  ')}`);
  }
  if (!failed) log('PASS');
  process.exit(failed ? 1 : 0);
}

/** The API at `base`: `get` (which must succeed) and `post` (any status, with its JSON body). */
export function apiAt(base) {
  return {
    get: async (path) => {
      const r = await fetch(base + path);
      assert(r.ok, `GET ${path}: HTTP ${r.status}`);
      return r.json();
    },
    post: async (path, body) => {
      const r = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, body: await r.json() };
    },
  };
}

/**
 * A `watchPage` predicate for the 400s of deliberately invalid test submissions (Chromium logs
 * each as a console error too), expected only once `armed()` says some were sent.
 */
export const invalidSubmissions = (armed) => (kind, d) => {
  if (!armed()) return false;
  if (kind === 'console') return /status of 400/.test(d.text()) && (d.location()?.url ?? '').endsWith('/api/v1/tests');
  if (kind === 'response') return d.status() === 400 && d.request().method() === 'POST' && d.url().endsWith('/api/v1/tests');
  return false;
};
