// The "New test" form: builds the JSON spec from what was typed (the API validates it, so there is
// one set of rules) and shows the API's error next to the field it names. The request mix and
// the checks are built in mix.js, the text boxes read in parse.js.

import { api } from './api.js';
import { $, setText, show } from './dom.js';
import { shortId } from './format.js';
import { checksSpec, initMix, showMixNotes } from './mix.js';
import { headerMap, list, numberOrText } from './parse.js';

const FIELDS = ['delay_ms', 'requests_per_driver', 'throughput_per_driver', 'target_url', 'concurrency', 'drivers', 'timeout_ms', 'method', 'duration', 'start_rate', 'streams_per_connection', 'total_requests', 'total_rate', 'split', 'fail_safe_ms'];
const NUMERIC = new Set(['delay_ms', 'requests_per_driver', 'throughput_per_driver', 'concurrency', 'drivers', 'timeout_ms', 'start_rate', 'streams_per_connection', 'total_requests', 'total_rate', 'fail_safe_ms']);

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

/** The thresholds box's non-blank lines, each with its line number, so that the API's
 *  `thresholds[i]` can be shown as the line the user typed. */
function thresholdLines(raw) {
  return raw.split('\n').map((text, i) => ({ text: text.trim(), line: i + 1 })).filter((l) => l.text !== '');
}

const HINTS = {
  tsunami: 'A fixed delay between requests on each driver, on a schedule that does not drift.',
  avalanche: 'Requests go out as soon as a connection is free; cap them with a throughput.',
};

/** A typed number as a JSON number; anything else is sent as typed so the API names the field. */
function value(name, raw) {
  if (!NUMERIC.has(name)) return raw.trim() === '' ? undefined : raw.trim();
  return numberOrText(raw);
}

/** Shows `message` at a field's error slot, opening its section, and marks its control invalid
 *  (focused). Also the panel's rate control's (rate.js). */
export function markInvalid(slot, control, message) {
  setText(slot, message);
  // A field in a closed section: open it so that the message is seen.
  const section = slot.closest('details');
  if (section) section.open = true;
  if (control?.setAttribute) {
    control.setAttribute('aria-invalid', 'true');
    control.focus();
  }
}

/**
 * Where the API's error for `field` is shown: the slot's field name and the message without the
 * field's name (the slot shows it). Rate stages share one field; a threshold's error, and a JSON
 * check's, names its line; the abort settings, given once for every threshold, have their own
 * fields. A mix entry's field is its own slot (`mix[2].weight`), as is a check's (`checks.status`).
 * `lines` has the lines typed: {thresholds, json}.
 */
export function placeError(field, message, lines = {}) {
  const rest = message.startsWith(`${field}: `) ? message.slice(field.length + 2) : message;
  if (field.startsWith('stages')) return { slot: 'stages', message: field === 'stages' ? rest : message };
  const m = /^thresholds\[(\d+)\](\.[a-z_]+)?$/.exec(field);
  if (m) {
    if (m[2] === '.delay') return { slot: 'abort_delay', message: rest };
    if (m[2] === '.abort_on_fail') return { slot: 'abort_on_fail', message: rest };
    const line = lines.thresholds?.[Number(m[1])]?.line;
    return { slot: 'thresholds', message: line ? `line ${line}: ${rest}` : message };
  }
  const j = /^checks\.json\[(\d+)\](\.[a-z_]+)?$/.exec(field);
  if (j) {
    const line = lines.json?.[Number(j[1])]?.line;
    return { slot: 'checks.json', message: line ? `line ${line}: ${rest}` : message };
  }
  return { slot: field, message: rest };
}

/** The field path one step up (`mix[0].checks.json[1]` → `mix[0].checks.json` → `mix[0].checks`
 *  → `mix[0]`), or null at the top: where an error goes when its own field has no slot. */
export function parentField(field) {
  const m = /^(.+?)(\[\d+\]|\.[^.[\]]+)$/.exec(field);
  return m ? m[1] : null;
}

export function initForm({ onCreated }) {
  const form = $('test-form');
  const checked = (name) => form.querySelector(`input[name="${name}"]:checked`)?.value;
  const type = () => checked('test_type') ?? 'tsunami';
  const input = (name) => form.elements.namedItem(name);
  // A radio group's first button stands for the group (focus, aria-invalid).
  const control = (name) => {
    const el = input(name);
    return el instanceof RadioNodeList ? el[0] : el;
  };
  const toggleField = (name, enabled, hide) => {
    input(name).disabled = !enabled;
    const field = form.querySelector(`[data-field="${name}"]`);
    if (hide) field.hidden = !enabled;
    else field.classList.toggle('disabled', !enabled);
  };
  let busy = false;
  let lines = { thresholds: [], json: [] };
  // Set below: sync() needs it, and it calls sync() when entries come and go.
  let mix = null;

  // Fields that apply only with another's value: off (and not sent) otherwise.
  const sync = () => {
    toggleField('delay_ms', type() !== 'avalanche');
    setText($('type-hint'), HINTS[type()]);
    toggleField('streams_per_connection', checked('http_version') === '2', true);
    toggleField('abort_delay', input('abort_on_fail').checked);
    show($('insecure-warning'), input('tls.insecure_skip_verify').checked);
    // A mix takes each request from its entries: the single request's fields are not sent.
    const single = !mix?.active();
    for (const name of ['target_url', 'method', 'headers', 'body']) toggleField(name, single);
    showMixNotes(form, !single);
  };
  mix = initMix(form, sync);
  form.addEventListener('change', sync);
  sync();

  const clearErrors = () => {
    for (const el of form.querySelectorAll('.field-error')) setText(el, '');
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    show($('form-error'), false);
    show($('form-ok'), false);
  };
  // A field's error goes away as soon as it is edited (`tls` as a whole with any TLS field).
  form.addEventListener('input', (ev) => {
    const name = ev.target.name;
    if (!name) return;
    for (const slot of [name, name.startsWith('tls.') || name === 'target_url' ? 'tls' : null]) {
      const err = slot && $(`error-${slot}`);
      if (err) setText(err, '');
    }
    control(name)?.removeAttribute?.('aria-invalid');
  });

  // {spec} to send, or {error} in the API's shape when the form refuses it itself.
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
    // Totals replace the per-driver count, and a total rate the per-driver pace (their
    // defaults must not refuse it).
    if (s.total_requests !== undefined) delete s.requests_per_driver;
    if (s.total_rate !== undefined) {
      delete s.delay_ms;
      delete s.throughput_per_driver;
    }

    // The request's shape: headers, which of them are secret, a body sent as typed.
    // With a mix, each entry has its own (the single request's fields are off).
    if (!input('headers').disabled) {
      const hdrs = headerMap(input('headers').value);
      if (hdrs.error) return { error: { field: 'headers', error: hdrs.error } };
      if (hdrs.headers) s.headers = hdrs.headers;
    }
    const secret = list(input('secret_headers').value);
    if (secret) s.secret_headers = secret;
    if (!input('body').disabled && input('body').value !== '') s.body = input('body').value;
    const m = mix.spec();
    if (m.error) return { error: m.error };
    if (m.mix) s.mix = m.mix;
    const c = checksSpec(form);
    lines.json = c.lines;
    if (c.error) return { error: c.error };
    if (c.checks) s.checks = c.checks;
    const ids = list(input('driver_ids').value);
    if (ids) s.driver_ids = ids;

    // Thresholds: plain expressions, or objects when the test aborts on a failure (the abort
    // settings apply to every line).
    const th = thresholdLines(input('thresholds').value);
    lines.thresholds = th;
    if (th.length) {
      const abort = input('abort_on_fail').checked;
      const delay = input('abort_delay').value.trim();
      s.thresholds = th.map((l) => (abort ? { threshold: l.text, abort_on_fail: true, ...(delay ? { delay } : {}) } : l.text));
    }

    // Transport: HTTP/1.1 is the default, and `tls` is sent only when a TLS field is set (the API
    // refuses it for an http:// target).
    if (checked('http_version') === '2') s.http_version = '2';
    const tls = {};
    if (input('tls.ca_pem').value.trim()) tls.ca_pem = input('tls.ca_pem').value;
    if (input('tls.server_name').value.trim()) tls.server_name = input('tls.server_name').value.trim();
    if (input('tls.insecure_skip_verify').checked) tls.insecure_skip_verify = true;
    if (Object.keys(tls).length) s.tls = tls;
    s.trigger = trigger;
    return { spec: s };
  };

  const showError = (body, status) => {
    const message = body?.error ?? `HTTP ${status}`;
    const place = body?.field ? placeError(body.field, message, lines) : null;
    // A field without a slot of its own (`mix[0].checks.json[0]`): the nearest one up, with the
    // whole message, which names the field.
    let slot = place ? $(`error-${place.slot}`) : null;
    for (let up = place && parentField(place.slot); place && !slot && up; up = parentField(up)) {
      slot = $(`error-${up}`);
      if (slot) Object.assign(place, { slot: up, message });
    }
    if (slot) {
      markInvalid(slot, control(place.slot), place.message);
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
    const built = spec(trigger);
    // Refused by the form itself (a header line it cannot read): shown like the API's errors.
    const r = built.error ? { ok: false, status: 0, body: built.error } : await api.create(built.spec);
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
