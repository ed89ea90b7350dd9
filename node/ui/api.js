// The REST API, as the page uses it. Every call resolves (never throws): {ok, status, body}, with
// body.error set on a network failure, so callers show errors instead of logging them.
//
// The API token (when the orchestrator requires one) is kept in sessionStorage, for this tab
// only, and sent as `Authorization: Bearer …`, never in a URL. That is also why the event stream
// is read with fetch and not EventSource, which cannot send a header.

const TOKEN_KEY = 'floodgate.token';
/** A stream buffer larger than this is not an event stream: give up (and reconnect). */
const MAX_PENDING = 8 * 1024 * 1024;

export const auth = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

let unauthorized = () => {};
/** `f(message)` runs whenever the API answers 401 (no token, or a refused one). */
export function onUnauthorized(f) {
  unauthorized = f;
}

function headers(extra) {
  const h = { accept: 'application/json', ...extra };
  const t = auth.token();
  if (t) h.authorization = `Bearer ${t}`;
  return h;
}

async function call(method, path, body) {
  try {
    // Changes are always JSON, even without a body: the API refuses anything else (CSRF).
    const init = { method, headers: headers(method === 'GET' ? {} : { 'content-type': 'application/json' }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    const r = await fetch(path, init);
    let json = null;
    try {
      json = await r.json();
    } catch {
      json = { error: `${r.status} ${r.statusText}` };
    }
    if (r.status === 401) unauthorized(json?.error);
    return { ok: r.ok, status: r.status, body: json ?? {} };
  } catch (e) {
    return { ok: false, status: 0, body: { error: `cannot reach the orchestrator (${e.message})` } };
  }
}

const enc = encodeURIComponent;

export const api = {
  tests: () => call('GET', '/api/v1/tests'),
  test: (id) => call('GET', `/api/v1/tests/${enc(id)}`),
  series: (id) => call('GET', `/api/v1/tests/${enc(id)}/series`),
  create: (spec) => call('POST', '/api/v1/tests', spec),
  trigger: (id) => call('POST', `/api/v1/tests/${enc(id)}/trigger`),
  stop: (id) => call('POST', `/api/v1/tests/${enc(id)}/stop`),
  /** A running test's new pace, one field: `{total_rate}`, `{delay_ms}` or `{throughput_per_driver}`. */
  setRate: (id, pace) => call('PATCH', `/api/v1/tests/${enc(id)}`, pace),
};

/** The fields of one Server-Sent Events block: {event, data} or null (a comment, a keep-alive). */
function parseEvent(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? '' : line.slice(c + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length ? { event, data: data.join('\n') } : null;
}

/**
 * Follows /api/v1/events, calling onEvent(name, data) for each event, until the stream ends,
 * fails or `signal` aborts it. Resolves (never throws) with {status}: 0 when unreachable.
 */
export async function events(onEvent, signal) {
  let r;
  try {
    r = await fetch('/api/v1/events', { headers: headers({ accept: 'text/event-stream' }), cache: 'no-store', signal });
  } catch {
    return { status: 0 };
  }
  if (!r.ok || !r.body) {
    if (r.status === 401) unauthorized((await r.json().catch(() => ({}))).error);
    return { status: r.status };
  }
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = pending.indexOf('\n\n')) >= 0) {
        const ev = parseEvent(pending.slice(0, end));
        pending = pending.slice(end + 2);
        if (ev) onEvent(ev.event, ev.data);
      }
      if (pending.length > MAX_PENDING) break;
    }
  } catch {
    // aborted, or the connection broke: the caller decides whether to reconnect
  }
  reader.cancel().catch(() => {});
  return { status: r.status };
}
