// A lost driver's share handed over (issue 13, re-split on loss): the test panel's line per
// hand-over (who was lost and why, what it had reported sent, who took the unsent requests at
// what pace, what may have left it unreported) and the charts' marker at its instant, which
// takes the place of its paced switch's rate-change marker. The same content as the CLI's line.

import { $, fill, h, show } from './dom.js';
import { fmtDuration, fmtInt, fmtRps, fmtTime } from './format.js';

/** A hand-over's instant after the test's start, or its wall-clock time before one. */
function when(t, o) {
  if (t.started_at_ms == null) return fmtTime(o.at_ms);
  return fmtDuration(Math.max(0, o.at_ms - t.started_at_ms));
}

/** A receiver's part: `driver-0 +1,400 at 600.0 req/s` (no pace when unpaced). */
const part = (id, p) => `${id} +${fmtInt(p.requests)}${p.rate != null ? ` at ${fmtRps(p.rate)} req/s` : ''}`;

/** Who took the unsent requests: a replacement in the lost driver's place, else the others. */
function takers(o) {
  const unsent = h('span', { 'data-testid': 'hand-over-unsent' }, fmtInt(o.unsent));
  const mark = (id, text) => h('span', { 'data-testid': 'hand-over-part', dataset: { driver: id } }, text);
  if (o.replacement != null) {
    const rate = o.parts?.[o.replacement]?.rate;
    return [mark(o.replacement, o.replacement), ' joined in its place and took the ', unsent, ' unsent',
      rate != null ? ` at ${fmtRps(rate)} req/s` : ''];
  }
  const list = Object.entries(o.parts ?? {}).flatMap(([id, p], i) => [i ? ', ' : '', mark(id, part(id, p))]);
  return ['the ', unsent, ' unsent were handed to the others: ', list];
}

/** What may have left the lost driver that no report counted. */
function unknownText(v) {
  if (v.sent_after != null) return `none unknown: it reported ${fmtInt(v.sent_after)} more`;
  if (!(v.unknown > 0)) return 'none unknown';
  return `up to ${fmtInt(v.unknown)} may have left it unreported`;
}

/** The tooltip: when it was decided and switched, and which receivers reported taking theirs. */
function detail(v) {
  const taken = (v.taken ?? []).map((x) => `${x.driver_id} ${fmtInt(x.requests)} at ${fmtTime(x.at_ms)}`);
  const waiting = Object.keys(v.parts ?? {}).filter((id) => !(v.taken ?? []).some((x) => x.driver_id === id));
  return [
    `Decided at ${fmtTime(v.decided_at_ms)}, new paces from ${fmtTime(v.at_ms)} (orchestrator's clock)`,
    taken.length ? `taken: ${taken.join(', ')}` : null,
    waiting.length ? `not reported taken: ${waiting.join(', ')}` : null,
    `at most ${fmtInt(v.unknown_max)} unknown before any later report of ${v.from}`,
  ].filter(Boolean).join('; ');
}

/** The panel's lines for test `t` (or null): one per hand-over, hidden without any. */
export function renderHandOvers(t) {
  const box = $('hand-overs');
  const list = t?.hand_overs ?? [];
  show(box, list.length > 0);
  fill(
    box,
    list.map((v) => h(
      'div',
      { 'data-testid': 'hand-over', dataset: { seq: v.seq }, title: detail(v) },
      `hand-over ${v.seq} at `,
      h('span', { 'data-testid': 'hand-over-at' }, when(t, v)),
      ': ',
      h('span', { 'data-testid': 'hand-over-from' }, v.from),
      ' was lost (',
      h('span', { 'data-testid': 'hand-over-why' }, v.why),
      ') after reporting ',
      h('span', { 'data-testid': 'hand-over-reported' }, `${fmtInt(v.reported_sent)} of ${fmtInt(v.share)}`),
      ' sent; ',
      takers(v),
      ' · ',
      h('span', { 'data-testid': 'hand-over-unknown' }, unknownText(v)),
    )),
  );
}

/**
 * The charts' markers with the hand-overs of `t`: each at its instant, labelled `hand-over N`,
 * in place of the rate change of the same seq (its paced switch), so one line per instant.
 */
export function withHandOvers(t, markers) {
  const list = t?.started_at_ms != null ? t.hand_overs ?? [] : [];
  if (!list.length) return markers;
  const seqs = new Set(list.map((v) => v.seq));
  const own = list.map((v) => ({
    kind: 'hand-over',
    seq: v.seq,
    t: (v.at_ms - t.started_at_ms) / 1000,
    label: `hand-over ${v.seq}`,
  }));
  return [...markers.filter((m) => !seqs.has(m.seq)), ...own].sort((a, b) => a.t - b.t);
}
