// A request mix's figures by name in the test panel (issue 12): one row per entry of the mix,
// from the view's `aggregate.by_request` (exact sums over the drivers, latency from their merged
// histograms), with each driver's own count in a tooltip. Text only, as the rest of the page.

import { $, fill, h, show } from './dom.js';
import { DASH, fmtInt, fmtMs, fmtRps } from './format.js';

const ERROR_KINDS = ['connect', 'timeout', 'http', 'io', 'check'];
const CHECK_KINDS = ['status', 'body', 'json'];

/** The non-zero counts of `kinds` in `o`: `http 200 · io 1`, or '' when all are zero. */
function kinds(o, names) {
  return names.filter((k) => o?.[k] > 0).map((k) => `${k} ${fmtInt(o[k])}`).join(' · ');
}

/** Checks failed by kind (`status 200 · body 3`, too-large bodies noted), or '' when none. */
export function checksText(c) {
  const text = kinds(c, CHECK_KINDS);
  return text && c.too_large > 0 ? `${text} (${fmtInt(c.too_large)} too large to check)` : text;
}

const cell = (metric, text, attrs = {}, ...extra) =>
  h('td', { class: `num ${attrs.class ?? ''}`, title: attrs.title }, h('span', { 'data-metric': metric }, text), extra);

/** The mix's names in the order of its entries (the view's map is sorted by name). */
function names(t) {
  const by = t.aggregate.by_request ?? {};
  const ordered = (t.spec.mix ?? []).map((e) => e.name).filter((n) => n in by);
  return [...ordered, ...Object.keys(by).filter((n) => !ordered.includes(n))];
}

/** The "By request" table; hidden for a test without a mix. */
export function renderByRequest(t) {
  const by = t.aggregate.by_request;
  const list = by ? names(t) : [];
  show($('by-request'), list.length > 0);
  if (!list.length) return;
  const weights = Object.fromEntries((t.spec.mix ?? []).map((e) => [e.name, e.weight]));
  const total = Object.values(weights).reduce((a, b) => a + b, 0);
  fill(
    $('by-request-body'),
    list.map((name) => {
      const s = by[name];
      const perDriver = t.per_driver.map((d) => `${d.driver_id}: ${fmtInt(d.by_request?.[name]?.sent ?? 0)}`).join(' · ');
      const errorKinds = kinds(s.errors, ERROR_KINDS);
      const checks = checksText(s.checks_failed);
      const l = s.latency;
      const lat = (v) => (l?.count > 0 ? fmtMs(v) : DASH);
      return h(
        'tr',
        { class: 'row-driver', 'data-testid': 'by-request-row', dataset: { request: name } },
        h('td', { class: 'l', title: weights[name] ? `weight ${weights[name]} of ${total}` : null }, h('span', { class: 'row-name', 'data-metric': 'name' }, name)),
        cell('sent', fmtInt(s.sent), { title: perDriver }),
        cell('responses', fmtInt(s.responses)),
        cell('ok', fmtInt(s.ok)),
        cell('errors', fmtInt(s.error_total), { class: s.error_total > 0 ? 'bad' : '' },
          errorKinds ? h('span', { class: 'kinds', 'data-metric': 'error-kinds' }, errorKinds) : null),
        cell('checks', checks || DASH, { class: checks ? 'bad' : '' }),
        cell('rps', fmtRps(s.achieved_rps)),
        cell('p50', lat(l?.median_ms)),
        cell('p95', lat(l?.p95_ms)),
        cell('p99', lat(l?.p99_ms)),
      );
    }),
  );
}
