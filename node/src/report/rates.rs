//! Live rate changes in the HTML report (issue 13): a table of each change (when, to what, how
//! the drivers switched); the throughput chart marks them too (`report.js`).

use super::html::esc;
use crate::orchestrator::view::TestView;
use std::fmt::Write as _;

/// The section, when the test's rate changed.
pub fn html_section(h: &mut String, view: &TestView) {
    if view.rate_changes.is_empty() {
        return;
    }
    let started = view.started_at_ms.unwrap_or(0) as f64;
    h.push_str(
        r#"<section class="rate-changes">
<h2>Rate changes</h2>
<table class="stats">
<thead><tr><th class="name">Change</th><th>At (s after the start)</th><th>New rate, all drivers (req/s)</th><th>Drivers switched</th><th>Switch skew (ms)</th><th>Latest after the agreed instant (ms)</th></tr></thead>
<tbody>
"#,
    );
    for c in &view.rate_changes {
        let at_s = (c.change.at_ms as f64 - started) / 1000.0;
        let skew = c
            .switch_skew_ms
            .map_or(String::new(), |s| format!("{s:.3}"));
        let late = (c.applied.iter().map(|s| s.late_ms)).fold(0.0, f64::max);
        let _ = writeln!(
            h,
            r#"<tr><th class="name">{}</th><td>{at_s:.3}</td><td>{:.1}</td><td>{} of {}</td><td>{}</td><td>{late:.1}</td></tr>"#,
            c.change.seq,
            c.total_rate,
            c.applied.len(),
            c.change.rates.len(),
            esc(&skew),
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}
