// The REST API, as the page uses it. Every call resolves (never throws): {ok, status, body}, with
// body.error set on a network failure, so callers show errors instead of logging them.

async function call(method, path, body) {
  try {
    const init = { method, headers: { accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    let json = null;
    try {
      json = await r.json();
    } catch {
      json = { error: `${r.status} ${r.statusText}` };
    }
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
};
