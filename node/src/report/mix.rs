//! A request mix and checks in the exports (issue 12, items 3 and 4): the CSV's last columns
//! (check errors and failed checks by kind, and the request name of a `request` row), one CSV row
//! per request name, and the HTML report's "By request" table; all from the merged view.

use super::html::{esc, int, ms};
use super::num;
use crate::orchestrator::view::{Stats, TestView};
use crate::orchestrator::view_mix::RequestStats;
use std::fmt::Write as _;

/// The CSV columns after the connection ones (new columns go last).
pub const CSV_COLUMNS: [&str; 5] = [
    "errors_check",
    "checks_failed_status",
    "checks_failed_body",
    "checks_failed_json",
    "request",
];

/// The cells of an `all` or `driver` row, in [`CSV_COLUMNS`] order (no request name).
pub fn csv_cells(s: &Stats) -> impl Iterator<Item = String> {
    let c = &s.checks_failed;
    [s.errors.check, c.status, c.body, c.json]
        .into_iter()
        .map(|n| n.to_string())
        .chain(std::iter::once(String::new()))
}

/// One `request` row per name of the mix, merged over the drivers: the base columns it has
/// (counts, errors, rate, latency), `skip` empty cells (thresholds and connections), then
/// this module's columns with its name last.
pub fn csv_rows(view: &TestView, skip: usize) -> Vec<Vec<String>> {
    view.aggregate
        .by_request
        .iter()
        .map(|(name, n)| {
            let e = &n.errors;
            let mut row = vec!["request".to_string(), String::new(), String::new()];
            row.extend(
                [
                    n.sent,
                    n.responses,
                    n.ok,
                    e.connect,
                    e.timeout,
                    e.http,
                    e.io,
                ]
                .map(|x| x.to_string()),
            );
            row.push(num(n.achieved_rps));
            row.extend(
                n.latency
                    .ordered_ms()
                    .map(|x| x.map(num).unwrap_or_default()),
            );
            // elapsed, service and lag figures are not kept per name.
            row.extend(std::iter::repeat_n(String::new(), 5 + skip));
            let c = &n.checks_failed;
            row.extend([e.check, c.status, c.body, c.json].map(|x| x.to_string()));
            row.push(name.clone());
            row
        })
        .collect()
}

/// The HTML "By request" table; nothing without a mix.
pub fn html_section(h: &mut String, v: &TestView) {
    let by = &v.aggregate.by_request;
    if by.is_empty() {
        return;
    }
    h.push_str(
        "<table class=\"stats by-request\">\n<caption>By request, over all drivers (latency in ms)</caption>\n<thead><tr><th class=\"name\">request</th>",
    );
    for c in [
        "sent", "ok", "errors", "status", "body", "json", "req/s", "p50", "p95", "p99", "max",
    ] {
        let _ = write!(h, "<th>{c}</th>");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (name, n) in by {
        let _ = write!(
            h,
            "<tr class=\"request\" data-request=\"{0}\"><th class=\"name\" scope=\"row\">{0}</th>",
            esc(name)
        );
        for c in cells(n) {
            let _ = write!(h, "<td>{c}</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str(
        "</tbody>\n</table>\n<p class=\"note\">status, body and json: responses that failed that check (a status outside the expected set is also an error of kind http; a failed body or JSON check one of kind check).</p>\n",
    );
}

fn cells(n: &RequestStats) -> Vec<String> {
    let c = &n.checks_failed;
    let l = &n.latency;
    vec![
        int(n.sent),
        int(n.ok),
        int(n.error_total),
        int(c.status),
        int(c.body),
        int(c.json),
        format!("{:.1}", n.achieved_rps),
        ms(l.median_ms),
        ms(l.p95_ms),
        ms(l.p99_ms),
        ms(l.max_ms),
    ]
}
