// The "New test" form: builds the JSON spec from what was typed (the API validates it, so there is
// one set of rules) and shows the API's error next to the field it names.

import { api } from './api.js';
import { $, setText, show } from './dom.js';
import { shortId } from './format.js';

const FIELDS = ['delay_ms', 'requests_per_driver', 'throughput_per_driver', 'target_url', 'concurrency', 'drivers', 'timeout_ms', 'method', 'duration', 'start_rate'];
const NUMERIC = new Set(['delay_ms', 'requests_per_driver', 'throughput_per_driver', 'concurrency', 'drivers', 'timeout_ms', 'start_rate']);
// Fields the advanced section holds: an error naming one opens it.
const ADVANCED = new Set(['drivers', 'timeout_ms', 'method', 'duration', 'start_rate', 'stages']);

/** `30s:100, 1m:1000` as the API's stages; a part that is not DURATION:RATE is sent as typed. */
function stages(raw) {
  const s = raw.trim();
  if (s === '') return undefined;
  return s.split(',').map((part) => {
    const i = part.lastIndexOf(':');
    if (i < 0) return { duration: part.trim() };
    const rate = Number(part.slice(i + 1).trim());
    return { duration: part.slice(0, i).trim(), rate: Number.isFinite(rate) ? rate : part.slice(i + 1).trim() };
  });
}
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
    const st = stages(input('stages')?.value ?? '');
    if (st) s.stages = st;
    // A time-bound test takes no count: the count field's default must not refuse it.
    if (s.duration !== undefined || s.stages) delete s.requests_per_driver;
    s.trigger = trigger;
    return s;
  };

  const showError = (body, status) => {
    const message = body?.error ?? `HTTP ${status}`;
    // `stages[2].rate` is shown at the stages field.
    const field = body?.field?.startsWith('stages') ? 'stages' : body?.field;
    const slot = field ? $(`error-${field}`) : null;
    if (slot) {
      // The message starts with the field's name, which the slot already shows.
      setText(slot, message.startsWith(`${body.field}: `) && body.field === field ? message.slice(field.length + 2) : message);
      const el = input(field) ?? form.querySelector(`input[name="${field}"]`);
      if (el) {
        el.setAttribute('aria-invalid', 'true');
        if (ADVANCED.has(field)) form.querySelector('details.advanced').open = true;
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
