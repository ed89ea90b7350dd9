// Floodgate HTML report: draws the charts from the JSON embedded in #floodgate-data with the
// inlined uPlot. Text from the data only ever goes through textContent / uPlot labels.
(function () {
  'use strict';
  var DRIVER_COLORS = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#0891b2', '#db2777', '#65a30d', '#dc2626'];
  var PRINT_WIDTH = 700; // A4 portrait minus margins, at 96 dpi
  var HEIGHT = 260;

  var note = document.getElementById('charts-note');
  var data = JSON.parse(document.getElementById('floodgate-data').textContent);
  var points = Array.isArray(data.series) ? data.series : [];
  var rpsEl = document.getElementById('chart-rps');
  var latEl = document.getElementById('chart-latency');

  function empty(el, text) {
    var p = document.createElement('p');
    p.className = 'empty';
    p.textContent = text;
    el.appendChild(p);
  }

  if (points.length === 0) {
    var why = 'No chart points were recorded for this test.';
    empty(rpsEl, why);
    empty(latEl, why);
    note.textContent = '';
    document.documentElement.setAttribute('data-charts', 'empty');
    return;
  }
  if (typeof uPlot !== 'function') {
    note.textContent = 'The charting library did not load.';
    return;
  }

  // Drivers in the order of the test's participant list, then any others seen in the points.
  var driverIds = (data.drivers || []).slice();
  points.forEach(function (p) {
    Object.keys(p.drivers || {}).forEach(function (id) {
      if (driverIds.indexOf(id) < 0) driverIds.push(id);
    });
  });

  var xs = points.map(function (p) { return p.t_ms / 1000; });
  var fmt = function (digits) {
    return function (u, v) { return v == null ? '–' : v.toFixed(digits); };
  };
  var timeSeries = { label: 'time (s)', value: fmt(1) };
  var xAxis = { label: 'seconds since the start', labelSize: 20 };

  // Throughput is charted per interval. The orchestrator ends a series with one last point
  // taken when the test ends, often a few ms after the one before: a rate over so short an
  // interval is noise (a huge spike), so such an interval is merged into the one before it,
  // weighting rates by duration. The data (#floodgate-data) keeps every point as it is.
  var gaps = points.map(function (p, i) { return p.t_ms - (i > 0 ? points[i - 1].t_ms : 0); });
  var typical = gaps.slice(1).sort(function (a, b) { return a - b; })[Math.floor((gaps.length - 1) / 2)] || 0;
  var rateRows = [];
  points.forEach(function (p, i) {
    var dt = Math.max(gaps[i], 1);
    var row = {
      t: p.t_ms / 1000,
      dt: dt,
      rps: p.rps,
      errors: (p.errors - (i > 0 ? points[i - 1].errors : 0)) * 1000 / dt,
      drivers: {}
    };
    Object.keys(p.drivers || {}).forEach(function (id) { row.drivers[id] = p.drivers[id].rps; });
    var prev = rateRows[rateRows.length - 1];
    if (prev && typical > 0 && gaps[i] < typical / 2) {
      var w = function (a, b) {
        return a == null || b == null ? (a == null ? b : a) : (a * prev.dt + b * dt) / (prev.dt + dt);
      };
      prev.rps = w(prev.rps, row.rps);
      prev.errors = w(prev.errors, row.errors);
      Object.keys(row.drivers).forEach(function (id) { prev.drivers[id] = w(prev.drivers[id], row.drivers[id]); });
      prev.t = row.t;
      prev.dt += dt;
    } else {
      rateRows.push(row);
    }
  });
  var anyErrors = points[points.length - 1].errors > 0;

  var rpsSeries = [timeSeries, { label: 'all drivers', stroke: '#111827', width: 2, value: fmt(1) }];
  var rpsData = [
    rateRows.map(function (r) { return r.t; }),
    rateRows.map(function (r) { return r.rps; })
  ];
  driverIds.forEach(function (id, i) {
    rpsSeries.push({ label: id, stroke: DRIVER_COLORS[i % DRIVER_COLORS.length], width: 1.25, value: fmt(1) });
    rpsData.push(rateRows.map(function (r) { return r.drivers[id] == null ? null : r.drivers[id]; }));
  });
  if (anyErrors) {
    rpsSeries.push({ label: 'errors/s', stroke: '#b91c1c', width: 1.5, dash: [6, 4], value: fmt(1) });
    rpsData.push(rateRows.map(function (r) { return r.errors; }));
  }

  // An interval without responses has no latency: a gap, not a zero.
  var pct = function (key) {
    return points.map(function (p) { return p.rps > 0 ? p[key] : null; });
  };
  var latSeries = [
    timeSeries,
    { label: 'p50', stroke: '#2563eb', width: 1.5, value: fmt(3) },
    { label: 'p95', stroke: '#d97706', width: 1.5, value: fmt(3) },
    { label: 'p99', stroke: '#dc2626', width: 1.5, value: fmt(3) }
  ];
  var latData = [xs, pct('p50_ms'), pct('p95_ms'), pct('p99_ms')];

  function widthOf(el) {
    return Math.max(320, Math.floor(el.getBoundingClientRect().width || 800));
  }

  // Live rate changes (issue 13): a dashed line at each switch on the throughput chart,
  // labelled with the new rate over all drivers (drawn on the canvas: numbers only).
  var started = data.started_at_ms || 0;
  var changes = (Array.isArray(data.rate_changes) ? data.rate_changes : []).map(function (c) {
    return { t: (Number(c.at_ms) - started) / 1000, label: Number(c.total_rate).toFixed(1) + ' req/s' };
  });
  function markRateChanges(u) {
    var ctx = u.ctx, b = u.bbox, px = window.devicePixelRatio || 1;
    changes.forEach(function (c) {
      var x = Math.round(u.valToPos(c.t, 'x', true));
      if (!(x >= b.left && x <= b.left + b.width)) return;
      ctx.save();
      ctx.strokeStyle = '#7c3aed';
      ctx.fillStyle = '#7c3aed';
      ctx.lineWidth = 1.5 * px;
      ctx.setLineDash([5 * px, 4 * px]);
      ctx.beginPath();
      ctx.moveTo(x, b.top);
      ctx.lineTo(x, b.top + b.height);
      ctx.stroke();
      ctx.font = (11 * px) + 'px sans-serif';
      ctx.fillText(c.label, x + 4 * px, b.top + 12 * px);
      ctx.restore();
    });
  }

  function make(el, series, rows, yLabel, draw) {
    return new uPlot({
      hooks: draw ? { draw: [draw] } : {},
      width: widthOf(el),
      height: HEIGHT,
      scales: { x: { time: false } },
      axes: [xAxis, { label: yLabel, labelSize: 20, size: 64 }],
      series: series,
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false } }
    }, rows, el);
  }

  var charts = [
    { el: rpsEl, plot: make(rpsEl, rpsSeries, rpsData, 'responses/s', changes.length ? markRateChanges : null) },
    { el: latEl, plot: make(latEl, latSeries, latData, 'ms') }
  ];
  note.textContent = 'Hover for values; drag across a chart to zoom, double-click to reset.';

  function fit(width) {
    charts.forEach(function (c) {
      c.plot.setSize({ width: width == null ? widthOf(c.el) : width, height: HEIGHT });
    });
  }
  var pending = null;
  window.addEventListener('resize', function () {
    clearTimeout(pending);
    pending = setTimeout(function () { fit(null); }, 100);
  });
  window.addEventListener('beforeprint', function () { fit(PRINT_WIDTH); });
  window.addEventListener('afterprint', function () { fit(null); });

  document.documentElement.setAttribute('data-rate-changes', String(changes.length));
  document.documentElement.setAttribute('data-charts', 'ready');
})();
