// Rendering of the drivers list, the test panel (summary, per-driver table) and the history, from
// the API's JSON. Pure functions of their input: each call rebuilds its part of the page.

import { checksText, renderByRequest } from './byrequest.js';
import { $, fill, h, setText, show } from './dom.js';
import { renderHandOvers } from './handover.js';
import { historyRateChanges, renderRate } from './rate.js';
import {
  DASH, capitalize, fmtAge, fmtDuration, fmtInt, fmtMs, fmtPct, fmtRps, fmtTime, isFinished, shortId,
} from './format.js';

// How a test given in totals was shared, as its `split` names it.
const SHARED = { equal: 'equally', capacity: 'by capacity', measured: 'by measured capacity' };

const LATENCY_FIELDS = [
  ['min', 'min_ms'],
  ['mean', 'mean_ms'],
  ['median', 'median_ms'],
  ['mode', 'mode_ms'],
  ['p90', 'p90_ms'],
  ['p95', 'p95_ms'],
  ['p99', 'p99_ms'],
  ['max', 'max_ms'],
];

/** Whether a latency block has figures: exact ones, or a driver's own summary (other implementations'). */
const hasFigures = (l) => !!l && (l.source ? l.source !== 'none' : l.count > 0);

/** Why a figure is missing from a block ("n/a"), for its tooltip. */
const missingWhy = (l, field) => (l?.not_mergeable?.fields?.includes(field) ? l.not_mergeable.reason : undefined);

const pill = (text, kind, testid) => h('span', { class: `pill pill-${kind}`, 'data-testid': testid }, text);

// ---------------------------------------------------------------- drivers

/** The drivers list in the sidebar; `onOpen(testId)` drills into a driver's test. */
export function renderDrivers(drivers, onOpen) {
  const list = $('drivers-list');
  const alive = drivers.filter((d) => d.alive).length;
  setText($('drivers-alive'), `${alive} / ${drivers.length}`);
  show($('drivers-empty'), drivers.length === 0);
  fill(
    list,
    drivers.map((d) => {
      const state = d.alive ? 'alive' : 'lost';
      return h(
        'li',
        { class: `driver driver-${state}`, 'data-testid': 'driver', dataset: { driver: d.id } },
        h(
          'div',
          { class: 'driver-top' },
          h('span', { class: `dot dot-${state}`, 'aria-hidden': 'true' }),
          h('span', { class: 'driver-id', title: d.id, 'data-testid': 'driver-id' }, d.id),
          pill(state, state, 'driver-state'),
        ),
        h(
          'div',
          { class: 'driver-meta' },
          h('span', { title: 'Address (its /healthz)', 'data-testid': 'driver-address' }, d.address || DASH),
          h(
            'span',
            { title: `Last heartbeat; ${fmtInt(d.heartbeats)} received since it registered`, 'data-testid': 'driver-heartbeat' },
            `♥ ${fmtAge(d.heartbeat_age_ms)}`,
          ),
          d.test_id
            ? h(
                'button',
                { type: 'button', class: 'link', title: `In test ${d.test_id}`, 'data-testid': 'driver-test', onclick: () => onOpen(d.test_id) },
                `test ${shortId(d.test_id)}`,
              )
            : h('span', { class: 'muted', 'data-testid': 'driver-test' }, 'idle'),
        ),
      );
    }),
  );
}

// ---------------------------------------------------------------- test panel

function describeSpec(t) {
  const s = t.spec;
  const type = capitalize(s.test_type);
  const bound = s.stages?.length
    ? `${s.stages.length} stages over ${fmtDuration(s.duration_ms)}`
    : s.duration_ms
      ? `for ${fmtDuration(s.duration_ms)}${s.requests_per_driver ? ` (${fmtInt(s.requests_per_driver)} requests)` : ''}`
      : `${fmtInt(s.requests_per_driver)} requests`;
  const totals = s.totals;
  const parts = totals?.requests
    ? [`${type} · ${fmtInt(totals.requests)} requests over ${t.drivers.length} drivers, shared ${SHARED[totals.split] ?? 'by capacity'}`]
    : [`${type} · ${t.drivers.length} drivers × ${bound}`];
  if (totals?.rate) {
    // Each driver's pace is its share of the total rate.
    parts.push(`${fmtInt(totals.rate)} req/s in total`);
  } else {
    if (s.delay_ms > 0) parts.push(`delay ${+s.delay_ms.toFixed(3)} ms`);
    parts.push(s.throughput_per_driver ? `cap ${fmtInt(s.throughput_per_driver)} req/s per driver` : 'no cap');
  }
  parts.push(`${fmtInt(s.concurrency)} connections`);
  parts.push(`timeout ${fmtInt(s.timeout_ms)} ms`);
  parts.push(s.fail_safe_ms > 0 ? `fail-safe ${fmtDuration(s.fail_safe_ms)}` : 'no fail-safe');
  return parts.join(' · ');
}

/** The request sent, or a mix's entries with their weights. */
function requestLine(s) {
  if (!s.mix?.length) return `${s.method} ${s.target_url}`;
  return `mix: ${s.mix.map((e) => `${e.name} ×${e.weight} ${e.method} ${e.url}`).join(' · ')}`;
}

function kpi(label, value, unit, testid, title) {
  return h(
    'div',
    { class: 'kpi', title },
    h('div', { class: 'kpi-label' }, label),
    h('div', { class: 'kpi-value' }, h('span', { 'data-testid': testid }, value), unit ? h('span', { class: 'kpi-unit' }, unit) : null),
  );
}

function elapsedMs(t) {
  if (t.started_at_ms == null) return null;
  if (t.finished_at_ms != null) return t.finished_at_ms - t.started_at_ms;
  return t.aggregate.elapsed_ms;
}

function progressCell(p, state) {
  const pct = Math.max(0, Math.min(1, p || 0));
  return h(
    'td',
    { class: 'l progress-cell' },
    h(
      'div',
      { class: `progress progress-${state}`, role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(Math.floor(pct * 100)) },
      h('div', { class: 'progress-bar', style: { width: `${(pct * 100).toFixed(2)}%` } }),
    ),
    h('span', { class: 'pct', 'data-metric': 'progress' }, fmtPct(p)),
  );
}

const num = (metric, text, extra = {}) => h('td', { class: `num ${extra.class ?? ''}`, title: extra.title }, h('span', { 'data-metric': metric }, text));

function statsRow(kind, id, name, s, state, badge) {
  const e = s.errors || {};
  const hasLatency = hasFigures(s.latency);
  // A driver of another implementation may report no counts: unknown, not zero. The aggregate
  // then shows what is known and that more may have been sent.
  const count = (n) => (s.counted !== false ? fmtInt(n) : n > 0 ? `${fmtInt(n)}+?` : '?');
  return h(
    'tr',
    { class: `row-${kind}`, 'data-testid': 'stats-row', dataset: { row: kind, driver: id ?? '' } },
    h(
      'td',
      { class: 'l' },
      h(
        'div',
        { class: 'name-cell' },
        h('span', { class: 'row-name', title: id ?? 'Merged over all drivers' }, name),
        badge,
      ),
    ),
    progressCell(s.progress, state),
    num('sent', count(s.sent), { title: s.counted === false ? 'not reported by this driver' : `${fmtInt(s.sent)} of ${fmtInt(s.requests_total)} sent` }),
    num('responses', count(s.responses)),
    num('ok', count(s.ok)),
    num('errors', fmtInt(s.error_total), {
      class: s.error_total > 0 ? 'bad' : '',
      title: `connect ${fmtInt(e.connect)} · timeout ${fmtInt(e.timeout)} · http ${fmtInt(e.http)} · io ${fmtInt(e.io)}${e.check ? ` · check ${fmtInt(e.check)}` : ''}`,
    }),
    num('rps', fmtRps(s.achieved_rps)),
    LATENCY_FIELDS.map(([metric, field]) => {
      const why = missingWhy(s.latency, field);
      const text = !hasLatency ? DASH : s.latency[field] == null ? 'n/a' : fmtMs(s.latency[field]);
      return num(metric, text, { title: why });
    }),
  );
}

const STATE_KIND = { waiting: 'muted', running: 'running', done: 'completed', lost: 'failed', refused: 'failed' };

/**
 * The test panel. `t` is a TestView (or null); `ctx.live` says whether it follows the current
 * test; `ctx.actions` has trigger/stop/back handlers.
 */
export function renderTest(t, ctx) {
  setText($('test-heading'), ctx.live ? 'Current test' : 'Test');
  show($('back-live'), !ctx.live);
  show($('test-empty'), !t);
  show($('test-body'), !!t);
  const status = $('test-status');
  const type = $('test-type');
  show(status, !!t);
  show(type, !!t);
  show($('test-trigger'), !!t && t.status === 'created');
  show($('test-stop'), !!t && t.status === 'running');
  renderRate(t);
  renderHandOvers(t);
  if (!t) {
    setText($('test-id'), '');
    return;
  }
  setText(status, t.status);
  status.className = `pill pill-${t.status}`;
  setText(type, capitalize(t.spec.test_type));
  setText($('test-id'), t.id);
  $('test-id').title = `Test ${t.id}`;

  const started = t.started_at_ms != null ? `started ${fmtTime(t.started_at_ms)}` : `created ${fmtTime(t.created_at_ms)}`;
  fill(
    $('test-spec'),
    h('div', { class: 'spec-line' }, describeSpec(t)),
    h('div', { class: 'spec-line muted' }, h('span', { class: 'mono', 'data-testid': 'spec-request' }, requestLine(t.spec)), ` · ${started}`),
  );

  const a = t.aggregate;
  const ended = a.responses + (a.errors?.connect ?? 0) + (a.errors?.timeout ?? 0) + (a.errors?.io ?? 0);
  fill(
    $('test-kpis'),
    kpi('Progress', fmtPct(a.progress), null, 'kpi-progress', `${fmtInt(ended)} of ${fmtInt(a.requests_total)} requests ended`),
    kpi('Sent', fmtInt(a.sent), `/ ${fmtInt(a.requests_total)}`, 'kpi-sent'),
    kpi('Throughput', fmtRps(a.achieved_rps), 'req/s', 'kpi-rps', 'Responses per second since the scheduled start'),
    kpi('p99', hasFigures(a.latency) ? fmtMs(a.latency.p99_ms) : DASH, 'ms', 'kpi-p99', missingWhy(a.latency, 'p99_ms')),
    kpi('Errors', fmtInt(a.error_total), null, 'kpi-errors'),
    kpi('Elapsed', fmtDuration(elapsedMs(t)), null, 'kpi-elapsed'),
    // Responses that failed a check, by kind, once there are any (they are in Errors too).
    checksText(a.checks_failed) ? kpi('Checks failed', checksText(a.checks_failed), null, 'kpi-checks', 'By kind; a response failing both a body and a JSON check counts in each') : null,
  );
  $('test-kpis').querySelector('[data-testid="kpi-errors"]').classList.toggle('bad', a.error_total > 0);
  $('test-kpis').querySelector('[data-testid="kpi-checks"]')?.classList.add('bad');

  const reason = $('test-reason');
  show(reason, !!t.reason);
  setText(reason, t.reason ?? '');

  // A paced test's three timings side by side, and a warning when the generator's own lateness
  // is a large share of the latency shown.
  // Then how far apart the drivers started (on the orchestrator's clock) and each one's lag.
  const lag = a.schedule_lag;
  const paced = !!lag && lag.count > 0;
  const skew = t.start_skew;
  show($('test-timing'), paced || !!skew);
  if (paced || skew) {
    const pair = (l) => `${fmtMs(l?.median_ms)} / ${fmtMs(l?.p99_ms)}`;
    const lags = t.per_driver.filter((d) => d.schedule_lag?.count > 0)
      .map((d) => `${d.driver_id} ${fmtMs(d.schedule_lag.median_ms)} / ${fmtMs(d.schedule_lag.p99_ms)} / ${fmtMs(d.schedule_lag.max_ms)}`);
    fill(
      $('test-timing'),
      paced ? h('span', { 'data-testid': 'timing-line' }, `p50 / p99 ms: latency from due ${pair(a.latency)} · service time ${pair(a.service_time)} · schedule lag ${pair(lag)}`) : null,
      skew ? h('div', { 'data-testid': 'start-skew', title: 'Latest first send minus earliest, each driver\'s clock corrected by its offset as estimated from heartbeat round trips' },
        `start skew ${fmtMs(skew.skew_ms)} ms over ${fmtInt(skew.drivers)} drivers (${skew.bound_ms != null ? `clock bound ±${fmtMs(skew.bound_ms)} ms` : 'a clock offset unmeasured'})${lags.length ? ` · schedule lag p50 / p99 / max ms: ${lags.join(' · ')}` : ''}`) : null,
      a.lag_note ? h('div', { class: 'lag-note', 'data-testid': 'lag-note' }, a.lag_note) : null,
    );
  }

  // Drivers that could not keep up: their figures are the generator's, not the target's.
  const warnings = t.generator_warnings ?? [];
  show($('generator-warnings'), warnings.length > 0);
  fill($('generator-warnings'), ...warnings.map((w) => h('div', { 'data-testid': 'generator-warning' }, `⚠ ${w}`)));
  // A staged test: each stage's target beside what was achieved.
  const st = a.stages ?? [];
  show($('test-stages'), st.length > 0);
  fill(
    $('test-stages'),
    ...st.map((x) => h('div', { 'data-testid': 'stage-line' },
      `stage ${x.stage + 1}: ${fmtDuration(x.duration_ms)}, ${fmtInt(x.from_rate)} → ${fmtInt(x.to_rate)} req/s per driver · target ${x.target_rps.toFixed(1)} req/s · achieved ${x.achieved_rps.toFixed(1)} req/s (${fmtInt(x.sent)} of ${fmtInt(x.planned)})`)),
  );
  renderThresholds(t.thresholds);

  const aggState = isFinished(t.status) ? (t.status === 'completed' ? 'done' : 'lost') : t.status === 'running' ? 'running' : 'waiting';
  const rows = [statsRow('aggregate', null, 'All drivers', a, aggState, null)];
  for (const d of t.per_driver) {
    const age = d.report_age_ms != null ? ` · last report ${fmtAge(d.report_age_ms)}` : '';
    const how = d.ended_by && d.ended_by !== 'final' ? ` · ended by ${d.ended_by}` : '';
    const why = d.reason ? ` · ${d.reason}` : '';
    const fmt = d.report_format === 'seed' ? ' · seed-format reports' : '';
    const badge = h('span', { class: `pill pill-small pill-${STATE_KIND[d.state] ?? 'muted'}`, title: `report #${d.report_seq}${age}${how}${fmt}${why}`, 'data-testid': 'driver-run-state' }, d.state);
    rows.push(statsRow('driver', d.driver_id, d.driver_id, d, d.state, badge));
  }
  fill($('stats-body'), rows);
  renderByRequest(t);
}

const VERDICT_KIND = { passed: 'completed', failed: 'failed', not_evaluated: 'stopped', pending: 'running' };
const THRESHOLD_KIND = { passed: 'completed', failed: 'failed', no_data: 'stopped' };

/** A threshold's measured value in its unit. */
function fmtMeasured(o) {
  if (o.measured == null) return o.note ?? 'no data';
  switch (o.unit) {
    case 'ms': return `${fmtMs(o.measured)} ms`;
    case 'ratio': return `${+(o.measured * 100).toFixed(4)}%`;
    case 'per_second': return `${fmtRps(o.measured)} req/s`;
    default: return String(o.measured);
  }
}

/** The thresholds' verdict and each threshold with its measured value (absent without any). */
function renderThresholds(th) {
  const box = $('test-thresholds');
  show(box, !!th);
  if (!th) return;
  fill(
    box,
    h('div', { class: 'verdict' }, 'Thresholds ', pill(th.verdict.replace('_', ' '), VERDICT_KIND[th.verdict] ?? 'muted', 'thresholds-verdict')),
    h('ul', {}, ...th.results.map((o) => h('li', { 'data-testid': 'threshold', dataset: { threshold: o.threshold } },
      h('span', { class: `pill pill-small pill-${THRESHOLD_KIND[o.state] ?? 'muted'}`, 'data-testid': 'threshold-state' }, o.state.replace('_', ' ')),
      ' ', h('code', { 'data-testid': 'threshold-text' }, o.threshold), ' ',
      h('span', { class: 'measured', 'data-testid': 'threshold-measured' }, fmtMeasured(o)),
      o.aborted ? ' · stopped the test' : o.abort_on_fail ? ' · abort_on_fail' : ''))),
  );
}

// ---------------------------------------------------------------- history

/** The history table; `selected` is the test shown in the panel. */
export function renderHistory(tests, { selected, limit, onOpen, onMore }) {
  const body = $('history-body');
  show($('history-empty'), tests.length === 0);
  setText($('history-count'), tests.length ? `${tests.length} test${tests.length === 1 ? '' : 's'}, newest first` : '');
  const shown = tests.slice(0, limit);
  fill(
    body,
    shown.map((t) => {
      const a = t.aggregate;
      const lat = hasFigures(a.latency);
      const open = () => onOpen(t.id);
      return h(
        'tr',
        {
          class: `clickable${t.id === selected ? ' selected' : ''}`,
          tabindex: '0',
          'data-testid': 'history-row',
          dataset: { testId: t.id },
          title: `Show test ${t.id}`,
          onclick: open,
          onkeydown: (ev) => {
            if (ev.key === 'Enter' || ev.key === ' ') {
              ev.preventDefault();
              open();
            }
          },
        },
        h('td', { class: 'l' }, fmtTime(t.created_at_ms)),
        h('td', { class: 'l mono' }, shortId(t.id)),
        h('td', { class: 'l' }, capitalize(t.spec.test_type)),
        h('td', { class: 'num', title: t.drivers.join(', ') }, fmtInt(t.drivers.length)),
        h('td', { class: 'num', title: `${fmtInt(a.sent)} of ${fmtInt(a.requests_total)}` }, fmtInt(a.sent)),
        h('td', { class: `num${a.error_total > 0 ? ' bad' : ''}` }, fmtInt(a.error_total)),
        h('td', { class: 'num' }, fmtRps(a.achieved_rps)),
        h('td', { class: 'num' }, lat ? fmtMs(a.latency.median_ms) : DASH),
        h('td', { class: 'num' }, lat ? fmtMs(a.latency.p99_ms) : DASH),
        h('td', { class: 'num' }, fmtDuration(elapsedMs(t))),
        h('td', { class: 'l' }, pill(t.status, t.status, 'history-status'),
          // A test with thresholds: its verdict beside its state (a completed test can fail them).
          t.thresholds ? [' ', h('span', { class: `pill pill-small pill-${VERDICT_KIND[t.thresholds.verdict] ?? 'muted'}`, title: 'thresholds', 'data-testid': 'history-verdict' }, t.thresholds.verdict.replace('_', ' '))] : null,
          // A test whose pace was changed while it ran: how many times (each in the tooltip).
          t.rate_changes?.length ? [' ', historyRateChanges(t)] : null),
      );
    }),
  );
  const more = $('history-more');
  show(more, tests.length > shown.length);
  setText(more, `Show all ${tests.length}`);
  more.onclick = onMore;
}
