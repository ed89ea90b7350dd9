//! Live rate changes and hand-overs in the HTML report (issue 13): a table of each change (when,
//! to what, how the drivers switched) and of each lost driver's share handed over (who, what it
//! had sent, who took the rest, the unknown); the throughput chart marks the changes too
//! (`report.js`; a paced hand-over is a change of its own).

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

/// The hand-overs' section, when a driver was lost and its share handed over.
pub fn hand_over_section(h: &mut String, view: &TestView) {
    if view.hand_overs.is_empty() {
        return;
    }
    let started = view.started_at_ms.unwrap_or(0) as f64;
    h.push_str(
        r#"<section class="hand-overs">
<h2>Hand-overs</h2>
<table class="stats">
<thead><tr><th class="name">Hand-over</th><th>At (s after the start)</th><th>Lost driver</th><th>Why</th><th>Reported sent of its share</th><th>Handed over</th><th>Taken by</th><th>Unknown (at most)</th></tr></thead>
<tbody>
"#,
    );
    for v in &view.hand_overs {
        let o = &v.hand_over;
        let at_s = (o.at_ms as f64 - started) / 1000.0;
        let to: Vec<String> = (o.parts.iter())
            .map(|(id, p)| match p.rate {
                Some(rate) => format!("{id} +{} at {rate:.1} req/s", p.requests),
                None => format!("{id} +{}", p.requests),
            })
            .collect();
        let to = match &o.replacement {
            Some(_) => format!("{} (joined in its place)", to.join(", ")),
            None => to.join(", "),
        };
        let unknown = match v.sent_after {
            Some(n) => format!("0 (it reported {n} more)"),
            None => v.unknown.to_string(),
        };
        let _ = writeln!(
            h,
            r#"<tr><th class="name">{}</th><td>{at_s:.3}</td><td>{}</td><td>{}</td><td>{} of {}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            o.seq,
            esc(&o.from),
            esc(&o.why),
            o.reported_sent,
            o.share,
            o.unsent,
            esc(&to),
            esc(&unknown),
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}
