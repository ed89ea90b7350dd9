// The two time-series charts (uPlot, vendored): requests per second (total and per driver) and
// latency percentiles (p50/p95/p99) per 500 ms interval. Data arrays grow in place, so a live test
// appends a point at a time; uPlot draws a few thousand points smoothly. A live rate change (or
// a hand-over) is a marker at its instant on both charts, labelled on the rate chart (DOM over
// the plot, so the label is text).

import { h, setText } from './dom.js';
import { fmtClock, fmtCompact, fmtMs, fmtRps } from './format.js';

const TOTAL_COLOR = '#73bf69';
const DRIVER_COLORS = ['#5794f2', '#ff9830', '#b877d9', '#fade2a', '#8ab8ff', '#f2495c', '#96d98d', '#ffb357'];
const LATENCY = [
  ['p50', 'p50_ms', '#5794f2'],
  ['p95', 'p95_ms', '#ff9830'],
  ['p99', 'p99_ms', '#f2495c'],
];
const AXIS = '#8e9297';
/** Rate intervals shorter than this are merged into the previous one (points come every 0.5 s). */
const MIN_INTERVAL_S = 0.25;
const GRID = 'rgba(204, 204, 220, 0.07)';

/** Chart height for the viewport: taller on big screens, never tiny. */
function chartHeight() {
  return Math.round(Math.min(340, Math.max(200, window.innerHeight * 0.27)));
}

/** Steps for the time axis, in seconds, so that ticks fall on round times. */
const TIME_INCRS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400];

/** A time-axis label for a step: 1.5 s under a second's step, 45 s under a minute, then 1:30. */
function timeLabel(v, step) {
  if (step < 1) return `${v.toFixed(1)} s`;
  if (step < 60 && v < 60) return `${Math.round(v)} s`;
  return fmtClock(v);
}

function axes(yFmt) {
  const common = {
    stroke: AXIS,
    grid: { stroke: GRID, width: 1 },
    ticks: { stroke: GRID, width: 1, size: 4 },
    font: '11px Inter, system-ui, sans-serif',
  };
  return [
    { ...common, incrs: TIME_INCRS, space: 60, values: (u, splits, ax, space, step) => splits.map((v) => timeLabel(v, step)) },
    { ...common, size: 52, values: (u, splits) => splits.map(yFmt) },
  ];
}

/** The last non-null value of a series, for the legend when the cursor is off the chart. */
function lastValue(u, sidx) {
  const arr = u.data[sidx];
  for (let i = arr.length - 1; i >= 0; i--) if (arr[i] != null) return arr[i];
  return null;
}

const line = (label, stroke, width, fmt, extra = {}) => ({
  label,
  stroke,
  width,
  points: { show: false },
  value: (u, v, sidx, idx) => {
    const x = idx == null ? lastValue(u, sidx) : v;
    return x == null ? '–' : fmt(x);
  },
  ...extra,
});

const timeSeries = {
  label: 'Time',
  value: (u, v, sidx, idx) => {
    const x = idx == null ? lastValue(u, 0) : v;
    if (x == null) return '–';
    return x < 60 ? `${x.toFixed(1)} s` : fmtClock(x);
  },
};

export class Charts {
  constructor(rpsEl, latEl) {
    this.rpsEl = rpsEl;
    this.latEl = latEl;
    this.key = null;
    this.plots = null;
    this.data = null;
    this.pending = false;
    // A drag-zoom holds until a double-click resets it; live data must not undo it.
    this.zoomed = false;
    // The rate changes and hand-overs to mark: {testId, list: [{kind?, seq, t (s since the
    // start), label}]}; `kind` is 'rate-change' (the default) or 'hand-over'.
    this.markers = { testId: null, key: '', list: [] };
    for (const el of [rpsEl, latEl]) el.addEventListener('dblclick', () => (this.zoomed = false));
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(rpsEl);
    this.resizer.observe(latEl);
  }

  /** Draws a test's points, replacing whatever was drawn. */
  show(testId, driverIds, points) {
    const key = `${testId}|${driverIds.join('\n')}`;
    if (key !== this.key) {
      this.destroy();
      this.zoomed = false;
      this.key = key;
      this.testId = testId;
      this.driverIds = driverIds.slice();
    }
    this.data = { t: [], dt: [], total: [], per: this.driverIds.map(() => []), tl: [], lat: LATENCY.map(() => []) };
    this.push(points);
    this.draw();
  }

  /** Adds points at the end of the current test's series. */
  append(points) {
    if (!this.data || points.length === 0) return;
    this.push(points);
    this.draw();
  }

  /** The number of points drawn (for the browser test, through data-points). */
  get length() {
    return this.data ? this.data.tl.length : 0;
  }

  /** The rate changes of test `testId` to mark (see rate.js's rateMarkers, handover.js's withHandOvers). */
  setMarkers(testId, list) {
    const key = JSON.stringify(list);
    if (testId === this.markers.testId && key === this.markers.key) return;
    this.markers = { testId, key, list };
    if (this.plots) this.plots.forEach((u, i) => this.placeMarkers(u, i === 0));
  }

  /** Puts the markers over plot `u` at their instants; those outside the time axis are hidden. */
  placeMarkers(u, labelled) {
    let layer = u.over.querySelector(':scope > .rate-markers');
    if (!layer) {
      layer = h('div', { class: 'rate-markers', 'aria-hidden': 'true' });
      u.over.append(layer);
    }
    const list = this.markers.testId === this.testId ? this.markers.list : [];
    while (layer.children.length > list.length) layer.lastChild.remove();
    const { min, max } = u.scales.x;
    list.forEach((m, i) => {
      let el = layer.children[i];
      if (!el) {
        el = h('div', { class: 'rate-change-marker' }, labelled ? h('span', { class: 'rate-change-label' }) : null);
        layer.append(el);
      }
      const kind = m.kind ?? 'rate-change';
      el.dataset.testid = `${kind}-marker`;
      el.classList.toggle('hand-over-marker', kind === 'hand-over');
      el.dataset.seq = String(m.seq);
      el.dataset.t = String(m.t);
      if (labelled) setText(el.firstChild, m.label);
      const inside = min != null && max != null && m.t >= min && m.t <= max;
      el.hidden = !inside;
      if (!inside) return;
      const x = u.valToPos(m.t, 'x');
      el.style.left = `${x}px`;
      // Near the right edge the label goes on the line's left, inside the chart.
      el.classList.toggle('flip', x > u.over.clientWidth - 100);
    });
  }

  clear() {
    this.destroy();
    this.key = null;
    this.data = null;
    this.placeholders(true);
  }

  push(points) {
    const d = this.data;
    for (const p of points) {
      const t = p.t_ms / 1000;
      // An interval without responses has no percentiles: a gap, not a drop to zero.
      d.tl.push(t);
      LATENCY.forEach(([, field], i) => d.lat[i].push(p[field] > 0 ? p[field] : null));

      // Rates are responses over the interval since the previous point. A much shorter interval
      // (the point taken when a test ends, often a few ms after the last one) is merged into the
      // previous one, so its rate is over a meaningful window instead of a spike.
      const last = d.t.length - 1;
      const dt = last >= 0 ? t - d.t[last] : Math.max(t, 0.001);
      const rates = [p.rps, ...this.driverIds.map((id) => p.drivers?.[id]?.rps ?? null)];
      if (last > 0 && dt < MIN_INTERVAL_S) {
        const span = d.dt[last] + dt;
        const merge = (prev, r) => (prev == null || r == null ? (r ?? prev) : (prev * d.dt[last] + r * dt) / span);
        d.total[last] = merge(d.total[last], rates[0]);
        d.per.forEach((arr, i) => (arr[last] = merge(arr[last], rates[i + 1])));
        d.t[last] = t;
        d.dt[last] = span;
        continue;
      }
      d.t.push(t);
      d.dt.push(dt);
      d.total.push(rates[0]);
      d.per.forEach((arr, i) => arr.push(rates[i + 1]));
    }
  }

  draw() {
    const d = this.data;
    this.rpsEl.dataset.points = String(d.tl.length);
    this.latEl.dataset.points = String(d.tl.length);
    if (d.tl.length === 0) {
      this.destroy();
      this.placeholders(true);
      return;
    }
    const rpsData = [d.t, d.total, ...d.per];
    const latData = [d.tl, ...d.lat];
    if (!this.plots) {
      if (typeof window.uPlot !== 'function') return;
      this.placeholders(false);
      this.plots = [this.make(this.rpsEl, this.rpsOpts(), rpsData), this.make(this.latEl, this.latOpts(), latData)];
    } else {
      this.plots[0].setData(rpsData, !this.zoomed);
      this.plots[1].setData(latData, !this.zoomed);
    }
  }

  make(el, opts, data) {
    const width = Math.max(200, el.clientWidth);
    return new window.uPlot({ ...opts, width, height: chartHeight() }, data, el);
  }

  rpsOpts() {
    const drivers = this.driverIds.map((id, i) =>
      line(id, DRIVER_COLORS[i % DRIVER_COLORS.length], 1.25, fmtRps),
    );
    return {
      scales: { x: { time: false }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: axes(fmtCompact),
      series: [
        timeSeries,
        line('Total', TOTAL_COLOR, 2, fmtRps, { fill: 'rgba(115, 191, 105, 0.10)' }),
        ...drivers,
      ],
      legend: { live: true },
      cursor: this.cursor(),
      hooks: this.hooks(true),
    };
  }

  latOpts() {
    return {
      scales: { x: { time: false }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: axes((v) => fmtCompact(v)),
      series: [
        timeSeries,
        ...LATENCY.map(([label, , color]) => line(`${label} ms`, color, 1.5, fmtMs)),
      ],
      legend: { live: true },
      cursor: this.cursor(),
      hooks: this.hooks(false),
    };
  }

  /** Both charts share a cursor; a drag on either zooms the time axis of that chart. */
  cursor() {
    return { points: { size: 6 }, drag: { x: true, y: false }, sync: { key: 'floodgate' } };
  }

  /** `labelled`: the rate chart, whose markers say the new rate. */
  hooks(labelled) {
    return {
      setSelect: [(u) => u.select.width > 0 && (this.zoomed = true)],
      // After every redraw (new data, a zoom, a resize): the markers follow the time axis.
      draw: [(u) => this.placeMarkers(u, labelled)],
    };
  }

  resize() {
    if (!this.plots || this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      if (!this.plots) return;
      const height = chartHeight();
      for (const [u, el] of [[this.plots[0], this.rpsEl], [this.plots[1], this.latEl]]) {
        const width = Math.max(200, el.clientWidth);
        if (width !== u.width || height !== u.height) u.setSize({ width, height });
      }
    });
  }

  placeholders(visible) {
    for (const el of [this.rpsEl, this.latEl]) {
      const ph = el.querySelector('.chart-empty');
      if (ph) ph.hidden = !visible;
    }
  }

  destroy() {
    if (this.plots) for (const u of this.plots) u.destroy();
    this.plots = null;
  }
}
