#!/usr/bin/env node
// What arrives from the network is shown as text, never as markup: a driver whose ID and address
// are HTML (put on the heartbeat topic by the Rust test) must appear literally in the drivers
// list, create no element, run no script and cause no console error (the page's
// Content-Security-Policy would report an inline handler as one).
//
//   node escaping.mjs <dashboard-url> <driver-id> <driver-address>

import { assert, assertEqual, log, poll, run, tid } from './lib.mjs';

const [base, id, address] = process.argv.slice(2);
if (!base || !id || !address) {
  console.error('usage: node escaping.mjs <dashboard-url> <driver-id> <driver-address>');
  process.exit(2);
}
const origin = base.replace(/\/$/, '');

await run(origin, async (page) => {
  await page.goto(`${origin}/`, { waitUntil: 'load' });
  const shown = await poll('the driver in the list', () =>
    page.$$eval(tid('driver'), (els, want) => {
      const el = els.find((e) => e.dataset.driver === want);
      return el
        ? {
            id: el.querySelector('[data-testid="driver-id"]').textContent,
            title: el.querySelector('[data-testid="driver-id"]').title,
            address: el.querySelector('[data-testid="driver-address"]').textContent,
          }
        : null;
    }, id),
  10_000);
  assertEqual(shown, { id, title: id, address }, 'the driver as shown');
  const injected = await page.evaluate(() => ({
    elements: document.querySelectorAll('[data-testid="drivers-list"] :is(img, b, script, iframe, svg)').length,
    pwned: window.__pwned ?? null,
    title: document.title,
  }));
  assertEqual(injected, { elements: 0, pwned: null, title: 'Floodgate' }, 'nothing injected');
  assert((await page.textContent(tid('drivers-alive'))).includes('/'), 'the drivers count is shown');
  log(`the driver ${JSON.stringify(id)} is shown as text`);
});
