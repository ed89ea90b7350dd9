// The "New test" form: builds the JSON spec from what was typed (the API validates it, so there is
// one set of rules) and shows the API's error next to the field it names.

import { api } from './api.js';
import { $, setText, show } from './dom.js';
import { shortId } from './format.js';

const FIELDS = ['delay_ms', 'requests_per_driver', 'throughput_per_driver', 'target_url', 'concurrency', 'drivers', 'timeout_ms', 'method'];
const NUMERIC = new Set(['delay_ms', 'requests_per_driver', 'throughput_per_driver', 'concurrency', 'drivers', 'timeout_ms']);
const HINTS = {
  tsunami: 'A fixed delay between requests on each driver, on a schedule that does not drift.',
  avalanche: 'Requests go out as soon as a connection is free; cap them with a throughput.',
};

/** A typed number as a JSON number; anything else is sent as typed so the API names the field. */
function value(name, raw) {
  const s = raw.trim();
  if (s === '') return undefined;
  if (!NUMERIC.has(name)) return s;
  const n = Number(s);
  return Number.isFinite(n) ? n : s;
}

export function initForm({ onCreated }) {
  const form = $('test-form');
  const type = () => form.querySelector('input[name="test_type"]:checked')?.value ?? 'tsunami';
  const input = (name) => form.elements.namedItem(name);
  let busy = false;

  const syncType = () => {
    const avalanche = type() === 'avalanche';
    input('delay_ms').disabled = avalanche;
    form.querySelector('[data-field="delay_ms"]').classList.toggle('disabled', avalanche);
    setText($('type-hint'), HINTS[type()]);
  };
  for (const r of form.querySelectorAll('input[name="test_type"]')) r.addEventListener('change', syncType);
  syncType();

  const clearErrors = () => {
    for (const el of form.querySelectorAll('.field-error')) setText(el, '');
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    show($('form-error'), false);
    show($('form-ok'), false);
  };
  // A field's error goes away as soon as it is edited.
  form.addEventListener('input', (ev) => {
    const name = ev.target.name;
    if (!name) return;
    const err = $(`error-${name}`);
    if (err) setText(err, '');
    ev.target.removeAttribute('aria-invalid');
  });

  const spec = (trigger) => {
    const s = { test_type: type() };
    for (const name of FIELDS) {
      const el = input(name);
      if (!el || el.disabled) continue;
      const v = value(name, el.value);
      if (v !== undefined) s[name] = v;
    }
    s.trigger = trigger;
    return s;
  };

  const showError = (body, status) => {
    const message = body?.error ?? `HTTP ${status}`;
    const field = body?.field;
    const slot = field ? $(`error-${field}`) : null;
    if (slot) {
      // The message starts with the field's name, which the slot already shows.
      setText(slot, message.startsWith(`${field}: `) ? message.slice(field.length + 2) : message);
      const el = input(field) ?? form.querySelector(`input[name="${field}"]`);
      if (el) {
        el.setAttribute('aria-invalid', 'true');
        if (field === 'drivers' || field === 'timeout_ms' || field === 'method') form.querySelector('details.advanced').open = true;
        el.focus();
      }
    } else {
      const box = $('form-error');
      setText(box, message);
      show(box, true);
    }
  };

  const submit = async (trigger) => {
    if (busy) return;
    busy = true;
    form.classList.add('busy');
    clearErrors();
    const r = await api.create(spec(trigger));
    busy = false;
    form.classList.remove('busy');
    if (!r.ok) {
      showError(r.body, r.status);
      return;
    }
    const ok = $('form-ok');
    setText(ok, `Test ${shortId(r.body.id)} ${trigger ? 'started' : 'created'}.`);
    show(ok, true);
    onCreated(r.body);
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit(true);
  });
  $('submit-create').addEventListener('click', () => submit(false));

  return {
    /** Suggests a target URL (the last test's) while the field is empty and untouched. */
    suggestUrl(url) {
      const el = input('target_url');
      if (url && !el.value && document.activeElement !== el) el.value = url;
    },
  };
}
