// A running test's live rate change (issue 13): the test panel's "Change rate" control, which
// PATCHes the test with its pace given the way the test gave it, and the history of changes (the
// panel's lines, the history table's pill, the charts' markers). The API judges every value (one
// set of rules); its 400 and 409 are shown at the control's field, as the form shows its own.

import { api } from './api.js';
import { $, fill, h, setText, show } from './dom.js';
import { markInvalid, placeError } from './form.js';
import { fmtDuration, fmtMs, fmtRps, fmtTime } from './format.js';
import { numberOrText } from './parse.js';

/** The control's label for each way of giving a pace: [name, unit]. */
const LABELS = {
  total_rate: ['Total rate', 'req/s over all drivers'],
  delay_ms: ['Delay', 'ms between requests, per driver'],
  throughput_per_driver: ['Rate per driver', 'req/s'],
};

/**
 * The field that changes the pace of `t` and its current value, or null when its pace cannot
 * change: not running, staged, time-bound, or an uncapped Avalanche (the orchestrator's own rule,
 * rate_change::plan; it also refuses what the page cannot see, such as another implementation's
 * driver, with a 409 shown at the field).
 */
export function paceOf(t) {
  if (!t || t.status !== 'running') return null;
  const s = t.spec;
  if (s.stages?.length || s.duration_ms) return null;
  const totals = s.totals?.rate != null;
  if (!totals && s.test_type === 'avalanche' && s.throughput_per_driver == null) return null;
  const field = totals ? 'total_rate' : s.test_type === 'tsunami' ? 'delay_ms' : 'throughput_per_driver';
  // What the last change asked, else the spec. A change rebuilt after an orchestrator restart
  // has no input: its rates still give the pace (a delay as the gap they come to).
  const last = t.rate_changes?.at(-1);
  let value = last?.input?.[field];
  if (value == null && last) {
    const r = Object.values(last.rates ?? {})[0];
    value = totals ? last.total_rate : field === 'throughput_per_driver' ? r : r > 0 ? 1000 / r : null;
  }
  if (value == null) value = totals ? s.totals.rate : s[field];
  return { field, value };
}

/** A pace as typed: up to 3 decimals, no grouping (the input sends it back as a number). */
const typed = (v) => (typeof v === 'number' && Number.isFinite(v) ? String(+v.toFixed(3)) : '');

// The control is static markup (index.html), updated in place: the panel is redrawn twice a
// second and must keep what is being typed, the focus and a shown error.
const ctl = { testId: null, field: null, dirty: false, busy: false };

/**
 * Wires the control: `current()` is the test the panel shows, `onChanged(view)` takes the API's
 * answer (the test view with the new change).
 */
export function initRate({ current, onChanged }) {
  const form = $('rate-form');
  const input = $('rate-input');
  const error = $('rate-error');
  const clear = () => {
    setText(error, '');
    input.removeAttribute('aria-invalid');
  };
  input.addEventListener('input', () => {
    ctl.dirty = true;
    clear();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = current();
    const pace = paceOf(t);
    if (!pace || ctl.busy) return;
    clear();
    const v = numberOrText(input.value);
    ctl.busy = true;
    $('rate-apply').disabled = true;
    // Blank sends no field: the API then says which one it wants.
    const r = await api.setRate(t.id, v === undefined ? {} : { [pace.field]: v });
    ctl.busy = false;
    $('rate-apply').disabled = false;
    if (!r.ok) {
      const message = r.body?.error ?? `HTTP ${r.status}`;
      // The control's own field without its name (the label shows it); any other (a 409 has
      // none) as the whole message, which names what it is about.
      const place = r.body?.field ? placeError(r.body.field, message) : null;
      markInvalid(error, input, place?.slot === pace.field ? place.message : message);
      return;
    }
    ctl.dirty = false;
    onChanged(r.body);
  });
}

/** The control and the history of changes, for the panel's test `t` (or null). */
export function renderRate(t) {
  renderControl(t);
  renderChanges(t);
}

function renderControl(t) {
  const pace = paceOf(t);
  show($('rate-form'), !!pace);
  if (!pace) {
    ctl.testId = null;
    return;
  }
  const input = $('rate-input');
  if (t.id !== ctl.testId || pace.field !== ctl.field) {
    ctl.testId = t.id;
    ctl.field = pace.field;
    ctl.dirty = false;
    const [name, unit] = LABELS[pace.field];
    fill($('rate-label'), name, ' ', h('span', { class: 'unit' }, unit));
    input.dataset.field = pace.field;
    setText($('rate-error'), '');
    input.removeAttribute('aria-invalid');
    input.value = typed(pace.value);
  } else if (!ctl.dirty && document.activeElement !== input) {
    input.value = typed(pace.value);
  }
}

/** When a change takes effect, after the test's start (or its wall-clock time before one). */
const sinceStart = (t, c) => (t.started_at_ms != null ? fmtDuration(Math.max(0, c.at_ms - t.started_at_ms)) : fmtTime(c.at_ms));

/** What was asked, when it is not the total itself: `delay 5 ms`, `300 req/s per driver`. */
function asked(c) {
  const i = c.input ?? {};
  if (i.delay_ms != null) return `delay ${+i.delay_ms.toFixed(3)} ms`;
  if (i.throughput_per_driver != null) return `${fmtRps(i.throughput_per_driver)} req/s per driver`;
  return null;
}

/** How many drivers reported the switch, and how far apart. */
function switched(t, c) {
  const n = Object.keys(c.rates ?? {}).length;
  const k = c.applied?.length ?? 0;
  const skew = c.switch_skew_ms != null ? ` within ${fmtMs(c.switch_skew_ms)} ms` : '';
  if (k >= n) return `${k} driver${k === 1 ? '' : 's'} switched${skew}`;
  return `${k} of ${n} drivers switched${skew}${t.status === 'running' ? ' so far' : ''}`;
}

function renderChanges(t) {
  const box = $('rate-changes');
  const changes = t?.rate_changes ?? [];
  show(box, changes.length > 0);
  fill(
    box,
    changes.map((c) => {
      const how = asked(c);
      const rates = Object.entries(c.rates ?? {}).map(([d, r]) => `${d} ${fmtRps(r)}`).join(' · ');
      const late = (c.applied ?? []).filter((a) => a.late_ms > 0).map((a) => `${a.driver_id} ${fmtMs(a.late_ms)} ms late`);
      return h(
        'div',
        {
          'data-testid': 'rate-change',
          dataset: { seq: c.seq },
          title: `Switch at ${fmtTime(c.at_ms)} (orchestrator's clock), asked at ${fmtTime(c.requested_at_ms)}; req/s per driver: ${rates}${late.length ? `; ${late.join(', ')}` : ''}`,
        },
        `rate change ${c.seq} at `,
        h('span', { 'data-testid': 'rate-change-at' }, sinceStart(t, c)),
        ': ',
        h('span', { 'data-testid': 'rate-change-total' }, `${fmtRps(c.total_rate)} req/s`),
        ' in total',
        how ? ` (${how})` : '',
        ' · ',
        h('span', { 'data-testid': 'rate-change-switched' }, switched(t, c)),
      );
    }),
  );
}

/** The history table's mark of a test whose pace changed (null without changes). */
export function historyRateChanges(t) {
  const changes = t.rate_changes ?? [];
  if (!changes.length) return null;
  const n = changes.length;
  return h(
    'span',
    {
      class: 'pill pill-small pill-muted',
      'data-testid': 'history-rate-changes',
      title: changes.map((c) => `rate change ${c.seq} at ${sinceStart(t, c)}: ${fmtRps(c.total_rate)} req/s in total`).join('\n'),
    },
    `${n} rate change${n === 1 ? '' : 's'}`,
  );
}

/** The charts' markers: each change at its instant on the time axis (s since the start). */
export function rateMarkers(t) {
  if (!t || t.started_at_ms == null) return [];
  return (t.rate_changes ?? []).map((c) => ({
    seq: c.seq,
    t: (c.at_ms - t.started_at_ms) / 1000,
    label: `${fmtRps(c.total_rate)} req/s`,
  }));
}
