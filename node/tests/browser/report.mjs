// Opens a saved Floodgate HTML report through a file:// URL in headless Chromium and checks
// that it works offline and without errors:
// - no console error or warning, no page error, no dialog (an escaped-away injection would
//   show one), no failed request, and no request at all besides the file itself;
// - both uPlot charts are drawn (a canvas each, with pixels on it) with one legend entry per
//   driver on the throughput chart;
// - the tables have the aggregate row and one row per expected driver;
// - the page prints (a PDF is produced).
//
// Usage: node report.mjs <report.html> [expected-driver-id ...]
// Exit 0 when every check passes, 1 with one line per problem otherwise, 2 on bad usage.
import { launch } from './lib.mjs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [file, ...drivers] = process.argv.slice(2);
if (!file) {
  console.error('usage: node report.mjs <report.html> [expected-driver-id ...]');
  process.exit(2);
}
const url = pathToFileURL(resolve(file)).href;
const problems = [];

const browser = await launch();

let result = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') {
      problems.push(`console ${m.type()}: ${m.text()}`);
    }
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', async (d) => {
    problems.push(`a dialog opened (injected script?): ${d.message()}`);
    await d.dismiss();
  });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('request', (r) => {
    if (r.url() !== url) problems.push(`the report made a request: ${r.url()}`);
  });

  await page.goto(url, { waitUntil: 'load' });
  try {
    await page.waitForSelector('html[data-charts="ready"]', { timeout: 15000 });
  } catch {
    const state = await page.evaluate(() => document.documentElement.getAttribute('data-charts'));
    problems.push(`the charts did not render (data-charts=${state})`);
  }

  result = await page.evaluate(() => {
    const chart = (id) => {
      const el = document.getElementById(id);
      const canvas = el && el.querySelector('.uplot canvas');
      if (!canvas) return { canvas: false };
      const ctx = canvas.getContext('2d');
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      let painted = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
      return {
        canvas: true,
        width: canvas.width,
        height: canvas.height,
        painted,
        legend: [...el.querySelectorAll('.u-legend .u-series .u-label')].map((e) => e.textContent),
      };
    };
    const embedded = JSON.parse(document.getElementById('floodgate-data').textContent);
    return {
      title: document.title,
      rps: chart('chart-rps'),
      latency: chart('chart-latency'),
      plots: document.querySelectorAll('.uplot').length,
      allRows: document.querySelectorAll('table.stats tr.all').length,
      tables: document.querySelectorAll('table.stats').length,
      driverRows: [...document.querySelectorAll('table.requests tr.driver')].map((tr) => tr.dataset.driver),
      driverCells: [...document.querySelectorAll('table.requests tr.driver th')].map((th) => th.textContent),
      embeddedDrivers: embedded.per_driver.map((d) => d.driver_id),
      points: embedded.series.length,
      paced: (embedded.aggregate.schedule_lag?.count ?? 0) > 0,
      lagTable: !!document.querySelector('table.stats.lag'),
      measuredConnections: (embedded.aggregate.connect_time?.count ?? 0) > 0,
      handshakeTable: !!document.querySelector('table.stats.handshakes'),
      scripts: document.scripts.length,
    };
  });

  if (result.plots !== 2) problems.push(`expected 2 uPlot charts, found ${result.plots}`);
  for (const name of ['rps', 'latency']) {
    const c = result[name];
    if (!c.canvas) {
      problems.push(`the ${name} chart has no canvas`);
    } else if (c.width < 300 || c.height < 100 || c.painted < 500) {
      problems.push(`the ${name} chart looks empty: ${JSON.stringify(c)}`);
    }
  }
  for (const d of drivers) {
    if (!result.driverRows.includes(d)) problems.push(`no table row for driver ${d}`);
    if (!result.driverCells.includes(d)) problems.push(`driver ${d} is not shown as text`);
    if (result.rps.canvas && !result.rps.legend.includes(d)) problems.push(`no throughput series for driver ${d}`);
  }
  if (result.driverRows.join('\n') !== result.embeddedDrivers.join('\n')) {
    problems.push(`table rows ${JSON.stringify(result.driverRows)} != data ${JSON.stringify(result.embeddedDrivers)}`);
  }
  // Requests, latency, service time, status classes; schedule lag when the test was paced; and
  // connection opening when the drivers measured any.
  const tables = 4 + (result.paced ? 1 : 0) + (result.measuredConnections ? 1 : 0);
  if (result.tables !== tables || result.allRows !== tables) {
    problems.push(`expected ${tables} tables with an aggregate row each, found ${result.tables} / ${result.allRows}`);
  }
  if (result.lagTable !== result.paced) problems.push(`a schedule lag table ${result.lagTable ? 'in an unpaced' : 'missing from a paced'} test`);
  if (result.handshakeTable !== result.measuredConnections) problems.push(`a connection table ${result.handshakeTable ? 'without' : 'missing despite'} measured connections`);
  if (result.scripts !== 3) problems.push(`expected 3 script elements, found ${result.scripts}`);

  await page.emulateMedia({ media: 'print' });
  const pdf = await page.pdf({ format: 'A4', printBackground: true });
  result.pdfBytes = pdf.length;
  if (pdf.subarray(0, 4).toString() !== '%PDF' || pdf.length < 10000) {
    problems.push(`printing produced no proper PDF (${pdf.length} bytes)`);
  }
} catch (e) {
  problems.push(`browser check crashed: ${e.stack || e}`);
} finally {
  await browser.close();
}

if (problems.length) {
  for (const p of problems) console.error(`report.mjs: ${p}`);
  console.error(`report.mjs: page summary: ${JSON.stringify(result)}`);
  process.exit(1);
}
console.log(JSON.stringify({ ok: true, ...result }));
