// What the form's text boxes mean: header lines, comma-separated lists, expected statuses and
// JSON pointer checks, as the API's JSON. Anything the API can judge is sent as typed, so that
// its 400 names the field; only what cannot be sent at all is refused here.

/**
 * `Name: value` lines as the API's headers, or the form's own error for the line that is not one.
 * This is the one rule the form checks itself: the API would refuse a line without a colon by
 * quoting it as a header name, and that line may well hold a secret (`Authorization Bearer …`).
 * A repeated name is refused too, as the API's map would keep only one value.
 */
export function headerMap(raw) {
  const out = {};
  const lines = raw.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    if (line.trim() === '') continue;
    const i = line.indexOf(':');
    if (i < 0) return { error: `line ${n + 1}: want Name: value (the line has no colon)` };
    const name = line.slice(0, i).trim();
    if (Object.keys(out).some((k) => k.toLowerCase() === name.toLowerCase())) {
      return { error: `line ${n + 1}: a second ${name} header; each name once` };
    }
    out[name] = line.slice(i + 1).trim();
  }
  return { headers: Object.keys(out).length ? out : undefined };
}

/** A typed number as a JSON number, blank as undefined; anything else is sent as typed, so that
 *  the API's 400 names the field. */
export function numberOrText(raw) {
  const s = raw.trim();
  if (s === '') return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : s;
}

/** A comma-separated list, blanks dropped. */
export function list(raw) {
  const items = raw.split(',').map((x) => x.trim()).filter((x) => x !== '');
  return items.length ? items : undefined;
}

/** `2xx, 404, 200-299` as the API's statuses: codes as numbers, ranges and classes as text. */
export function statuses(raw) {
  return list(raw)?.map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/**
 * `/pointer = JSON` lines (split at the first `=`) as the API's JSON checks, each with its line
 * number so that the API's `checks.json[i]` can be shown as the line typed. A value that is not
 * JSON cannot be sent (the API takes JSON, not text), so the form refers it to its line.
 */
export function jsonChecks(raw) {
  const checks = [];
  const lines = [];
  const rows = raw.split('\n');
  for (let n = 0; n < rows.length; n++) {
    const text = rows[n].trim();
    if (text === '') continue;
    const i = text.indexOf('=');
    if (i < 0) return { error: `line ${n + 1}: want /pointer = JSON value (the line has no =)` };
    const value = text.slice(i + 1).trim();
    let equals;
    try {
      equals = JSON.parse(value);
    } catch {
      return { error: `line ${n + 1}: the value is not JSON (quote a string: "ok")` };
    }
    checks.push({ pointer: text.slice(0, i).trim(), equals });
    lines.push({ text, line: n + 1 });
  }
  return { checks, lines };
}
