// The form's request mix and checks (issue 12): a list of entries, each a request with its weight
// and, optionally, its own expected statuses and body text, and the test's checks. Each entry's
// inputs are named by the API's field paths (`mix[2].weight`), so that the API's 400 is shown
// next to the entry's field by the form's one placement rule; entries are renumbered on removal.

import { $, fill, h, show } from './dom.js';
import { headerMap, jsonChecks, statuses } from './parse.js';

// An entry's inputs: [key, label, unit, placeholder, textarea rows].
const ENTRY = [
  ['name', 'Name', 'shown in the figures', 'e.g. home'],
  ['weight', 'Weight', 'share of the requests', '1'],
  ['method', 'Method', null, 'GET'],
  ['checks.status', 'Expected statuses', 'instead of the test\'s', 'e.g. 2xx, 404'],
  ['url', 'URL', 'one origin for every entry', 'http://127.0.0.1:8080/ping'],
  ['headers', 'Headers', 'Name: value, one per line', '', 2],
  ['body', 'Body', 'sent as typed', '', 2],
  ['checks.body_contains', 'Body contains', 'instead of the test\'s', 'e.g. "ok"'],
];
// Laid out two by two, then one per row.
const PAIRS = 2;

const path = (i, key) => `mix[${i}].${key}`;

function entryField(i, [key, label, unit, placeholder, rows], value) {
  const name = path(i, key);
  const id = `f-mix-${i}-${key.replace('.', '-')}`;
  const attrs = { id, name, spellcheck: 'false', placeholder, 'data-testid': `input-${name}` };
  const control = rows
    ? h('textarea', { ...attrs, rows: String(rows) }, value)
    : h('input', { ...attrs, value, inputmode: key === 'weight' ? 'numeric' : null });
  return h(
    'div',
    { class: 'field', 'data-field': name },
    h('label', { for: id }, label, unit ? [' ', h('span', { class: 'unit' }, unit)] : null),
    control,
    h('div', { class: 'field-error', 'data-testid': `error-${name}`, role: 'alert' }),
  );
}

function entryNode(i, values, onRemove) {
  const fields = ENTRY.map((f) => entryField(i, f, values[f[0]] ?? ''));
  const pairs = [];
  for (let k = 0; k < PAIRS * 2; k += 2) pairs.push(h('div', { class: 'grid2' }, fields[k], fields[k + 1]));
  return h(
    'fieldset',
    { class: 'mix-entry', 'data-testid': 'mix-entry', dataset: { index: String(i) } },
    h(
      'legend',
      {},
      `Request ${i + 1} `,
      h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-testid': `mix-remove-${i}`, title: `Remove request ${i + 1}`, onclick: () => onRemove(i) }, 'Remove'),
    ),
    // Errors about the entry as a whole (or a part of it without a field here).
    h('div', { class: 'field-error', 'data-testid': `error-mix[${i}]`, role: 'alert' }),
    pairs,
    fields.slice(PAIRS * 2),
  );
}

/**
 * The mix's entry list in `form`; `onChange()` runs after an entry is added or removed (the
 * single-request fields turn off while there is a mix).
 */
export function initMix(form, onChange) {
  const listEl = $('mix-list', form);
  const count = () => listEl.querySelectorAll('.mix-entry').length;
  const read = () => [...listEl.querySelectorAll('.mix-entry')].map((el, i) =>
    Object.fromEntries(ENTRY.map(([key]) => [key, form.elements.namedItem(path(i, key))?.value ?? ''])));
  const render = (entries) => {
    fill(listEl, entries.map((v, i) => entryNode(i, v, remove)));
    onChange();
  };
  const remove = (i) => render(read().filter((_, k) => k !== i));
  // A new entry starts on the previous one's URL (every entry shares one origin), or the
  // single request's: the first entry takes over what was typed there.
  $('mix-add', form).addEventListener('click', () => {
    const entries = read();
    const last = entries[entries.length - 1];
    const url = last?.url ?? form.elements.namedItem('target_url').value.trim();
    render([...entries, { url, weight: '1' }]);
    form.elements.namedItem(path(entries.length, 'name'))?.focus();
  });

  return {
    /** Whether the test has a mix (then the single-request fields are not sent). */
    active: () => count() > 0,
    /** {mix} to send (absent without entries), or {error} in the API's shape. */
    spec() {
      const mix = [];
      const entries = read();
      for (let i = 0; i < entries.length; i++) {
        const v = entries[i];
        // Name and URL are sent as typed, blank too: the API names what is wrong with them.
        const e = { name: v.name.trim(), url: v.url.trim() };
        if (v.method.trim()) e.method = v.method.trim();
        const w = v.weight.trim();
        if (w) e.weight = Number.isFinite(Number(w)) ? Number(w) : w;
        const hdrs = headerMap(v.headers);
        if (hdrs.error) return { error: { field: path(i, 'headers'), error: hdrs.error } };
        if (hdrs.headers) e.headers = hdrs.headers;
        if (v.body !== '') e.body = v.body;
        const checks = {};
        const st = statuses(v['checks.status']);
        if (st) checks.status = st;
        if (v['checks.body_contains'] !== '') checks.body_contains = v['checks.body_contains'];
        if (Object.keys(checks).length) e.checks = checks;
        mix.push(e);
      }
      return mix.length ? { mix } : {};
    },
  };
}

/**
 * The test's checks from the Checks section: {checks} (absent when nothing is set) and the JSON
 * lines typed (for the API's `checks.json[i]`), or {error} in the API's shape.
 */
export function checksSpec(form) {
  const value = (name) => form.elements.namedItem(name).value;
  const checks = {};
  const st = statuses(value('checks.status'));
  if (st) checks.status = st;
  if (value('checks.body_contains') !== '') checks.body_contains = value('checks.body_contains');
  const json = jsonChecks(value('checks.json'));
  if (json.error) return { error: { field: 'checks.json', error: json.error }, lines: [] };
  if (json.checks.length) checks.json = json.checks;
  return { checks: Object.keys(checks).length ? checks : undefined, lines: json.lines };
}

/** Shows the note that the mix replaces the single request. */
export function showMixNotes(form, active) {
  for (const el of form.querySelectorAll('[data-testid^="mix-note"]')) show(el, active);
}
