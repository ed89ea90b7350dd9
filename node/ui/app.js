// Floodgate dashboard: follows the orchestrator's event stream (SSE, a `state` event every 500 ms
// with the drivers, the current test and new chart points) and lets a user drill into any past
// test (its view and /series). No framework, no build step; see views.js, charts.js, form.js.
// When the API requires a token, a 401 shows the sign-in panel (see api.js for where it is kept).

import { api, auth, events, onUnauthorized } from './api.js';
import { Charts } from './charts.js';
import { $, setText } from './dom.js';
import { initForm } from './form.js';
import { isFinished } from './format.js';
import { withHandOvers } from './handover.js';
import { initRate, rateMarkers } from './rate.js';
import { renderDrivers, renderHistory, renderTest } from './views.js';

const HISTORY_PAGE = 20;
const STALE_AFTER_MS = 5000;

const state = {
  drivers: [],
  live: null, // the current test, as the event stream last sent it
  livePoints: [], // its chart points
  pinned: null, // {id, view, points} when drilling into another test
  history: [],
  historyLimit: HISTORY_PAGE,
  lastEventAt: 0,
};

const charts = new Charts($('chart-rps'), $('chart-latency'));
const form = initForm({ onCreated });
initRate({ current: shown, onChanged: onRateChanged });

// ------------------------------------------------------------------ what is shown

/** The test the panel shows: the pinned one, or the live one. */
function shown() {
  return state.pinned ? state.pinned.view : state.live;
}

function render() {
  const t = shown();
  renderTest(t, { live: !state.pinned });
  charts.setMarkers(t?.id ?? null, withHandOvers(t, rateMarkers(t)));
  renderHistory(state.history, {
    selected: t?.id,
    limit: state.historyLimit,
    onOpen: openTest,
    onMore: () => {
      state.historyLimit = Infinity;
      render();
    },
  });
}

function redrawCharts() {
  const t = shown();
  if (!t) return charts.clear();
  const points = state.pinned ? state.pinned.points : state.livePoints;
  charts.show(t.id, t.drivers, points);
}

// ------------------------------------------------------------------ live updates

function onState(data) {
  state.lastEventAt = Date.now();
  setConnection('live');
  state.drivers = data.drivers ?? [];
  renderDrivers(state.drivers, openTest);

  const prev = state.live;
  const t = data.test ?? null;
  const newTest = (prev?.id ?? null) !== (t?.id ?? null);
  if (data.reset || newTest) state.livePoints = [];
  const fresh = data.points ?? [];
  state.livePoints.push(...fresh);
  state.live = t;

  if (t && state.pinned?.id === t.id) state.pinned = null; // the pinned test is live again
  if (!state.pinned) {
    if (data.reset || newTest) redrawCharts();
    else charts.append(fresh);
  }
  if (t && prev?.id === t.id && isFinished(t.status) && !isFinished(prev.status)) {
    refreshFinalSeries(t.id);
  }
  syncHistory(t, prev);
  render();
}

/** The last points of a test that just ended may not have been streamed yet: reload them. */
async function refreshFinalSeries(id) {
  const r = await api.series(id);
  if (r.ok && state.live?.id === id && Array.isArray(r.body.points)) {
    state.livePoints = r.body.points;
    if (!state.pinned) redrawCharts();
  }
}

/** Keeps the history in step with the stream: patch the live test's row, reload on news. */
function syncHistory(t, prev) {
  if (!t) return;
  const i = state.history.findIndex((h) => h.id === t.id);
  if (i < 0 || (prev?.id === t.id && prev.status !== t.status)) loadHistory();
  if (i >= 0) state.history[i] = t;
}

let historyLoading = null;
async function loadHistory() {
  if (historyLoading) return historyLoading;
  historyLoading = (async () => {
    const r = await api.tests();
    if (r.ok && Array.isArray(r.body.tests)) {
      state.history = r.body.tests;
      form.suggestUrl(state.history[0]?.spec?.target_url);
      render();
    }
  })();
  try {
    await historyLoading;
  } finally {
    historyLoading = null;
  }
}

function setConnection(kind) {
  const el = $('connection');
  const label = { live: 'live', connecting: 'connecting…', lost: 'disconnected', locked: 'sign-in needed' }[kind];
  el.className = `conn conn-${kind}`;
  setText(el, label);
  document.body.classList.toggle('offline', kind === 'lost');
}

// The event stream, read with fetch (see api.js); `stream` is the AbortController of the
// current connection, so that a newer one (or a sign-in) replaces it.
let stream = null;
async function connect() {
  if (stream) stream.abort();
  const mine = new AbortController();
  stream = mine;
  setConnection('connecting');
  const r = await events((name, data) => {
    if (name !== 'state') return;
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    onState(parsed);
  }, mine.signal);
  if (stream !== mine || r.status === 401) return; // replaced, or waiting for a sign-in
  setConnection('lost');
  setTimeout(() => {
    if (stream === mine) connect();
  }, 2000);
}

// ------------------------------------------------------------------ sign-in (API tokens)

let locked = false;
onUnauthorized((message) => {
  const hadToken = auth.token() !== null;
  auth.clear();
  if (stream) stream.abort();
  stream = null;
  state.lastEventAt = 0;
  locked = true;
  setConnection('locked');
  $('logout').hidden = true;
  $('login').hidden = false;
  // Several calls may be refused at once: the first, which carried the token, says why.
  if (hadToken) setText($('login-error'), message ?? 'the token was refused');
  $('login-token').focus();
});

$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = $('login-token').value.trim();
  if (!token) return setText($('login-error'), 'enter the API token');
  auth.set(token);
  setText($('login-error'), '');
  $('login-token').value = '';
  $('login').hidden = true;
  locked = false;
  showLogout();
  connect();
  loadHistory();
});

$('logout').addEventListener('click', () => {
  auth.clear();
  location.reload();
});

function showLogout() {
  $('logout').hidden = auth.token() === null;
}

// No event for a while (a half-open connection, a suspended laptop): reconnect.
setInterval(() => {
  if (!locked && state.lastEventAt && Date.now() - state.lastEventAt > STALE_AFTER_MS) {
    state.lastEventAt = 0;
    setConnection('lost');
    connect();
  }
}, 1000);

// ------------------------------------------------------------------ drill-in and actions

async function openTest(id) {
  if (!id || id === state.live?.id) return backToLive();
  const [v, s] = await Promise.all([api.test(id), api.series(id)]);
  if (!v.ok) return toast(v.body.error ?? `cannot load test ${id}`);
  state.pinned = { id, view: v.body, points: s.ok ? s.body.points ?? [] : [] };
  if (location.hash !== `#test=${id}`) history.replaceState(null, '', `#test=${encodeURIComponent(id)}`);
  render();
  redrawCharts();
  $('test-panel').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

function backToLive() {
  state.pinned = null;
  if (location.hash) history.replaceState(null, '', location.pathname);
  render();
  redrawCharts();
}

function onCreated(view) {
  state.pinned = null;
  if (location.hash) history.replaceState(null, '', location.pathname);
  if (state.live?.id !== view.id) {
    state.live = view;
    state.livePoints = [];
  }
  render();
  redrawCharts();
  loadHistory();
}

/** The API's answer to a rate change: the test's view with the change, until the stream's next. */
function onRateChanged(view) {
  if (state.pinned?.id === view.id) state.pinned.view = view;
  else if (state.live?.id === view.id) state.live = view;
  render();
}

async function act(call, what) {
  const t = shown();
  if (!t) return;
  const r = await call(t.id);
  if (!r.ok) toast(`${what}: ${r.body.error ?? r.status}`);
  else if (state.pinned) openTest(t.id);
}

let toastTimer = null;
function toast(message) {
  const el = $('toast');
  setText(el, message);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 6000);
}

$('test-trigger').addEventListener('click', () => act(api.trigger, 'Start'));
$('test-stop').addEventListener('click', () => act(api.stop, 'Stop'));
$('back-live').addEventListener('click', backToLive);

// ------------------------------------------------------------------ start

render();
showLogout();
connect();
loadHistory().then(() => {
  const m = /^#test=(.+)$/.exec(location.hash);
  if (m) openTest(decodeURIComponent(m[1]));
});
