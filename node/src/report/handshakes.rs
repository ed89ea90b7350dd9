//! Connection opening costs in the exports, kept apart from request latency: the CSV's last
//! columns (TCP connect and TLS handshake figures, resumed sessions) and a table of the HTML
//! report, shown when a driver measured any.

use super::html::{int, ms, rows, table, Row};
use super::num;
use crate::orchestrator::view::{Stats, TestView};
use crate::stats::LatencyStats;

/// The CSV columns after the thresholds' (new columns go last, so readers by position keep
/// working). Times in ms; counts are connections opened (one sample each).
pub const CSV_COLUMNS: [&str; 11] = [
    "connect_count",
    "connect_mean_ms",
    "connect_median_ms",
    "connect_p99_ms",
    "connect_max_ms",
    "tls_count",
    "tls_mean_ms",
    "tls_median_ms",
    "tls_p99_ms",
    "tls_max_ms",
    "tls_resumed",
];

fn figures(l: &LatencyStats) -> impl Iterator<Item = String> {
    // An unknown figure is an empty cell, never a zero; the count is always known.
    std::iter::once(l.count.to_string()).chain(
        [l.mean_ms, l.median_ms, l.p99_ms, l.max_ms]
            .into_iter()
            .map(|x| x.map(num).unwrap_or_default()),
    )
}

/// The cells of a statistics row (`all` or `driver`), in [`CSV_COLUMNS`] order.
pub fn csv_cells(s: &Stats) -> impl Iterator<Item = String> {
    figures(&s.connect_time)
        .chain(figures(&s.tls_handshake))
        .chain(std::iter::once(s.tls_resumed.to_string()))
}

/// The HTML table: per driver and for all, connect and TLS handshake figures; nothing when no
/// connection was measured (another implementation's drivers).
pub fn html_section(h: &mut String, v: &TestView) {
    let a = &v.aggregate;
    if a.connect_time.is_empty() && a.tls_handshake.is_empty() {
        return;
    }
    let tls = !a.tls_handshake.is_empty();
    let mut head = vec!["connections", "mean", "median", "p99", "max"];
    if tls {
        head.extend(["TLS handshakes", "mean", "median", "p99", "max", "resumed"]);
    }
    let cells = |r: &Row<'_>| {
        let s = r.stats;
        let part = |l: &LatencyStats| {
            [
                int(l.count),
                ms(l.mean_ms),
                ms(l.median_ms),
                ms(l.p99_ms),
                ms(l.max_ms),
            ]
        };
        let mut c = part(&s.connect_time).to_vec();
        if tls {
            c.extend(part(&s.tls_handshake));
            c.push(int(s.tls_resumed));
        }
        c
    };
    let caption = if tls {
        "Opening connections, apart from request latency: TCP connect, then TLS handshake (ms)"
    } else {
        "Opening connections, apart from request latency: TCP connect (ms)"
    };
    table(h, caption, "handshakes", &head, &rows(v), cells);
}
