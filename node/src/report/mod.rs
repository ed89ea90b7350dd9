//! Exports of a finished test: JSON (the test's view plus its chart points), CSV (one row per
//! driver and one for all of them; the time series as a second CSV) and a self-contained HTML
//! report (inline CSS, inline uPlot, inline data; opens offline, prints well).
//!
//! Pure functions: no I/O, no clock. The API (`api/reports.rs`) and the CLI serve what these
//! return. The formats are documented in `docs/reports.md`.

mod handshakes;
mod html;
mod mix;
mod rates;
mod thresholds;

pub use html::{esc, html, CSP};

use crate::orchestrator::series::Point;
use crate::orchestrator::view::{DriverStats, Stats, TestView};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The columns of [`csv`], in order.
pub const CSV_COLUMNS: [&str; 24] = [
    "scope",
    "driver_id",
    "state",
    "sent",
    "responses",
    "ok",
    "errors_connect",
    "errors_timeout",
    "errors_http",
    "errors_io",
    "achieved_rps",
    "min_ms",
    "mean_ms",
    "median_ms",
    "mode_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "elapsed_ms",
    "service_median_ms",
    "service_p99_ms",
    "lag_median_ms",
    "lag_p99_ms",
];

/// The JSON export: the test's view (as `GET /api/v1/tests/{id}` returns it) with one more
/// field, `series`, its chart points (as `GET /api/v1/tests/{id}/series` returns them).
pub fn json(view: &TestView, points: &[Point]) -> Value {
    // The test as the REST API shows it, and its chart points.
    let mut v =
        serde_json::to_value(crate::api::dto::Test::from(view)).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut v {
        map.insert(
            "series".into(),
            serde_json::to_value(points).unwrap_or_else(|_| json!([])),
        );
    }
    v
}

/// A file name for an export of this test: `floodgate-<id>.<ext>`, with anything but
/// `[A-Za-z0-9._-]` in the id replaced by `_` (safe in a `Content-Disposition` header).
pub fn file_name(view: &TestView, ext: &str) -> String {
    let id: String = view
        .id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("floodgate-{id}.{ext}")
}

/// The results as CSV (RFC 4180: CRLF line ends, a header row, fields quoted when needed):
/// first the `all` row (scope `all`, empty `driver_id`, the test's status as `state`), then one
/// `driver` row per participant, then for a test with thresholds a `thresholds` row (the
/// verdict as `state`) and one `threshold` row each (its state, and the four threshold columns:
/// the expression, its limit, the measured value and their unit). Last come the connection
/// columns ([`handshakes::CSV_COLUMNS`]: connect and TLS handshake figures, resumed sessions),
/// empty on threshold rows. Numbers are written exactly as the JSON holds them (the shortest
/// decimal that reads back to the same value), latencies in ms.
pub fn csv(view: &TestView) -> String {
    let mut out = String::new();
    push_row(
        &mut out,
        CSV_COLUMNS
            .iter()
            .chain(thresholds::CSV_COLUMNS.iter())
            .chain(handshakes::CSV_COLUMNS.iter())
            .chain(mix::CSV_COLUMNS.iter())
            .map(|c| c.to_string()),
    );
    push_row(
        &mut out,
        stats_row("all", "", &status_name(view), &view.aggregate),
    );
    for DriverStats {
        driver_id,
        state,
        stats,
        ..
    } in &view.per_driver
    {
        let state = serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        push_row(&mut out, stats_row("driver", driver_id, &state, stats));
    }
    for row in thresholds::csv_rows(view, CSV_COLUMNS.len()) {
        let empty = handshakes::CSV_COLUMNS
            .iter()
            .chain(mix::CSV_COLUMNS.iter())
            .map(|_| String::new());
        push_row(&mut out, row.into_iter().chain(empty));
    }
    let skip = thresholds::CSV_COLUMNS.len() + handshakes::CSV_COLUMNS.len();
    for row in mix::csv_rows(view, skip) {
        push_row(&mut out, row.into_iter());
    }
    out
}

/// The chart points as CSV: `t_ms, sent, errors, rps, p50_ms, p95_ms, p99_ms` for all drivers
/// (cumulative `sent` and `errors`; `rps` and percentiles over each interval, percentiles
/// empty when the interval had no response), then `sent[<driver>]` and `rps[<driver>]` for each
/// driver, sorted by id (empty where a point has no entry for that driver).
pub fn series_csv(points: &[Point]) -> String {
    let drivers: BTreeSet<&String> = points.iter().flat_map(|p| p.drivers.keys()).collect();
    let mut out = String::new();
    let mut header: Vec<String> = [
        "t_ms", "sent", "errors", "rps", "p50_ms", "p95_ms", "p99_ms",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    for d in &drivers {
        header.push(format!("sent[{d}]"));
        header.push(format!("rps[{d}]"));
    }
    push_row(&mut out, header.into_iter());
    for p in points {
        let mut row = vec![
            p.t_ms.to_string(),
            p.sent.to_string(),
            p.errors.to_string(),
            num(p.rps),
            p.p50_ms.map(num).unwrap_or_default(),
            p.p95_ms.map(num).unwrap_or_default(),
            p.p99_ms.map(num).unwrap_or_default(),
        ];
        for d in &drivers {
            match p.drivers.get(*d) {
                Some(dp) => {
                    row.push(dp.sent.to_string());
                    row.push(num(dp.rps));
                }
                None => row.extend([String::new(), String::new()]),
            }
        }
        push_row(&mut out, row.into_iter());
    }
    out
}

fn status_name(view: &TestView) -> String {
    view.status.as_str().to_string()
}

fn stats_row(scope: &str, driver_id: &str, state: &str, s: &Stats) -> impl Iterator<Item = String> {
    let l = &s.latency;
    let ints = [
        s.sent,
        s.responses,
        s.ok,
        s.errors.connect,
        s.errors.timeout,
        s.errors.http,
        s.errors.io,
    ];
    // An unknown latency (not mergeable) is an empty cell, never a zero.
    let floats = std::iter::once(Some(s.achieved_rps)).chain(l.ordered_ms());
    [scope.to_string(), driver_id.to_string(), state.to_string()]
        .into_iter()
        .chain(ints.into_iter().map(|n| n.to_string()))
        .chain(floats.into_iter().map(|x| x.map(num).unwrap_or_default()))
        .chain(std::iter::once(s.elapsed_ms.to_string()))
        .chain(
            [
                s.service_time.median_ms,
                s.service_time.p99_ms,
                s.schedule_lag.median_ms,
                s.schedule_lag.p99_ms,
            ]
            .into_iter()
            .map(|x| x.map(num).unwrap_or_default()),
        )
        .chain(thresholds::CSV_COLUMNS.iter().map(|_| String::new()))
        .chain(handshakes::csv_cells(s))
        .chain(mix::csv_cells(s))
}

/// The shortest decimal that reads back to `x` (never an exponent).
fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        String::new()
    }
}

fn push_row(out: &mut String, fields: impl Iterator<Item = String>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, &f);
    }
    out.push_str("\r\n");
}

/// RFC 4180 quoting: a field with a comma, a quote, CR or LF (or leading/trailing spaces,
/// which some readers trim) goes in double quotes, with its quotes doubled.
fn push_field(out: &mut String, f: &str) {
    let needs = f.contains([',', '"', '\r', '\n'])
        || f.starts_with(char::is_whitespace)
        || f.ends_with(char::is_whitespace);
    if needs {
        let _ = write!(out, "\"{}\"", f.replace('"', "\"\""));
    } else {
        out.push_str(f);
    }
}

#[cfg(test)]
pub(crate) mod tests;
