//! The thresholds in the exports: rows of the CSV (scope `thresholds` for the verdict,
//! `threshold` for each one, with the four threshold columns) and a section of the HTML report.

use super::html::esc;
use crate::orchestrator::view::TestView;
use crate::thresholds::eval::{shown, State};
use crate::thresholds::Unit;
use std::fmt::Write as _;

/// The CSV columns after the statistics', filled only on threshold rows.
pub const CSV_COLUMNS: [&str; 4] = ["threshold", "limit", "measured", "unit"];

fn unit_name(u: Unit) -> &'static str {
    match u {
        Unit::Ms => "ms",
        Unit::Ratio => "ratio",
        Unit::PerSecond => "req/s",
        Unit::Count => "count",
    }
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Passed => "passed",
        State::Failed => "failed",
        State::NoData => "no_data",
    }
}

/// The CSV rows of the thresholds, `width` cells each (the statistics' columns left empty).
pub fn csv_rows(view: &TestView, width: usize) -> Vec<Vec<String>> {
    let Some(t) = &view.thresholds else {
        return Vec::new();
    };
    let row = |scope: &str, state: &str, tail: [String; 4]| {
        let mut r = vec![String::new(); width];
        r[0] = scope.to_string();
        r[2] = state.to_string();
        r.extend(tail);
        r
    };
    let mut rows = vec![row("thresholds", t.verdict.as_str(), Default::default())];
    for o in &t.results {
        rows.push(row(
            "threshold",
            state_name(o.state),
            [
                o.threshold.clone(),
                super::num(o.limit),
                o.measured.map(super::num).unwrap_or_default(),
                unit_name(o.unit).to_string(),
            ],
        ));
    }
    rows
}

/// The HTML section: the verdict, then a table of the thresholds with their measured values.
pub fn html_section(h: &mut String, view: &TestView) {
    let Some(t) = &view.thresholds else {
        return;
    };
    let verdict = t.verdict.as_str();
    let _ = writeln!(
        h,
        r#"<section class="thresholds">
<h2>Thresholds <span class="status verdict-{verdict}">{verdict}</span></h2>
<table class="stats">
<thead><tr><th class="name">Threshold</th><th>State</th><th>Measured</th><th>Note</th></tr></thead>
<tbody>"#
    );
    for o in &t.results {
        let state = state_name(o.state);
        let measured = o.measured.map(|v| shown(v, o.unit)).unwrap_or_default();
        let mut note = o.note.clone().unwrap_or_default();
        if o.aborted {
            note = "stopped the test".into();
        } else if o.abort_on_fail {
            note = format!("abort_on_fail after {} ms {note}", o.delay_ms);
        }
        let _ = writeln!(
            h,
            r#"<tr><th class="name"><code>{}</code></th><td class="state-{state}">{state}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&o.threshold),
            esc(&measured),
            esc(note.trim())
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}
