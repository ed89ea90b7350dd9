// Number formatting for the page. Fixed rules, so that what is shown can be checked exactly:
// counts are integers with comma grouping, latencies are milliseconds with 3 decimals (the
// histograms' microsecond resolution), rates have 1 decimal. Rounding is Number.prototype.toFixed.

/** Adds comma grouping to a plain decimal string ("12345.678" → "12,345.678"). */
export function group(s) {
  const neg = s.startsWith('-');
  const [int, frac] = (neg ? s.slice(1) : s).split('.');
  const g = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (neg ? '-' : '') + g + (frac === undefined ? '' : '.' + frac);
}

const finite = (v) => typeof v === 'number' && Number.isFinite(v);

export const DASH = '–';

/** A count: 12,345. */
export function fmtInt(n) {
  return finite(n) ? group(Math.round(n).toFixed(0)) : DASH;
}

/** Milliseconds, 3 decimals: 1,234.567. */
export function fmtMs(v) {
  return finite(v) ? group(v.toFixed(3)) : DASH;
}

/** A rate, 1 decimal: 4,321.0. */
export function fmtRps(v) {
  return finite(v) ? group(v.toFixed(1)) : DASH;
}

/** Progress 0..1 as a percentage that only says 100% when it is. */
export function fmtPct(p) {
  if (!finite(p)) return DASH;
  if (p >= 1) return '100%';
  return (Math.floor(p * 1000) / 10).toFixed(1) + '%';
}

/** A duration in ms, short: 850 ms, 6.2 s, 3 min 05 s, 2 h 04 min. */
export function fmtDuration(ms) {
  if (!finite(ms) || ms < 0) return DASH;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** How long ago, for heartbeats: 0.4 s ago. */
export function fmtAge(ms) {
  if (!finite(ms)) return DASH;
  return ms < 60_000 ? `${(Math.max(ms, 0) / 1000).toFixed(1)} s ago` : `${fmtDuration(ms)} ago`;
}

/** Local wall-clock time of a Unix-ms instant: 14:03:27, with the date if not today. */
export function fmtTime(ms) {
  if (!finite(ms)) return DASH;
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** Seconds on a chart axis: 0:05, 1:30, 1:02:03. */
export function fmtClock(sec) {
  if (!finite(sec)) return '';
  const s = Math.round(sec);
  const pad = (n) => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/** Compact axis numbers: 950, 1.2k, 3.4M. */
export function fmtCompact(v) {
  if (!finite(v)) return '';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(0)}k`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(a < 10 ? 2 : 0)}`;
}

/** The first 8 characters of a UUID, for lists. */
export function shortId(id) {
  return typeof id === 'string' ? id.slice(0, 8) : '';
}

export function capitalize(s) {
  return typeof s === 'string' && s ? s[0].toUpperCase() + s.slice(1).toLowerCase() : '';
}

export function isFinished(status) {
  return status === 'completed' || status === 'failed' || status === 'stopped';
}
