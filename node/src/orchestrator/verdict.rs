//! A test's thresholds on its drivers' merged data: the live check of `abort_on_fail`
//! thresholds and the verdict the views show. Latency comes from the merged HDR histograms
//! (exact merges, never averaged percentiles); counts are exact sums. Evaluated on the
//! cumulative data, the same the final verdict is taken on (docs/decisions.md).

use super::part::Part;
use crate::stats::Latency;
use crate::thresholds::eval::{self, Data, Outcome, Thresholds};
use crate::thresholds::Threshold;
use std::collections::BTreeMap;

/// The whole test's figures, merged over its parts.
pub(super) struct Merged {
    latency: Result<Latency, String>,
    responses: u64,
    errors: u64,
    completed: u64,
    elapsed_ms: u64,
    counted: bool,
}

impl Merged {
    pub fn of(parts: &BTreeMap<String, Part>) -> Self {
        let mut all = Latency::default();
        let mut summaries = Vec::new();
        let mut m = Merged {
            latency: Ok(Latency::default()),
            responses: 0,
            errors: 0,
            completed: 0,
            elapsed_ms: 0,
            counted: true,
        };
        for (id, p) in parts {
            let Some(r) = &p.report else { continue };
            // Summary figures without a histogram (another implementation's): no percentile
            // can be merged from them.
            if p.latency.count() == 0 && r.metrics.any() {
                summaries.push(id.as_str());
            } else {
                all.merge(&p.latency);
            }
            m.responses += r.responses_received;
            m.errors += r.errors.total();
            m.completed += r.responses_received + r.errors.connect + r.errors.timeout + r.errors.io;
            // Whole ms, as the views' achieved_rps, so that `rps` and that figure agree.
            m.elapsed_ms = m.elapsed_ms.max(r.elapsed_us / 1000);
            m.counted &= r.counted;
        }
        m.latency = if summaries.is_empty() {
            Ok(all)
        } else {
            Err(format!(
                "{} sent only summary figures, no histogram",
                summaries.join(", ")
            ))
        };
        m
    }

    fn data(&self) -> Data<'_> {
        Data {
            latency: self.latency.as_ref().map_err(Clone::clone),
            responses: self.responses,
            errors: self.errors,
            completed: self.completed,
            elapsed_us: self.elapsed_ms * 1000,
            counted: self.counted,
            // Check results arrive with the checks stream's report fields.
            checks_failed: None,
        }
    }

    /// The data of a scope: the whole test, or a request name. Per-name figures are not in
    /// the reports yet, so a name has no data (its threshold is `no_data`, never passed); the
    /// merged `by_request` figures plug in here.
    fn scope(&self, request: Option<&str>) -> Option<Data<'_>> {
        request.is_none().then(|| self.data())
    }
}

/// The thresholds of a test with its parts' data; `None` without thresholds.
pub(super) fn judge(
    thresholds: &[Threshold],
    parts: &BTreeMap<String, Part>,
    finished: bool,
    aborted_by: Option<&str>,
) -> Option<Thresholds> {
    if thresholds.is_empty() {
        return None;
    }
    let merged = Merged::of(parts);
    Some(eval::evaluate_all(
        thresholds,
        |s| merged.scope(s),
        finished,
        aborted_by,
    ))
}

/// The first `abort_on_fail` threshold past its delay that fails on the data so far.
pub(super) fn abort(
    thresholds: &[Threshold],
    parts: &BTreeMap<String, Part>,
    since_start_ms: u64,
) -> Option<Outcome> {
    if !thresholds
        .iter()
        .any(|t| t.abort_on_fail && t.delay.as_millis() as u64 <= since_start_ms)
    {
        return None;
    }
    let merged = Merged::of(parts);
    eval::first_abort(thresholds, |s| merged.scope(s), since_start_ms)
}

/// The reason a test stopped by a threshold gives.
pub(super) fn abort_reason(o: &Outcome, since_start_ms: u64) -> String {
    let measured = o
        .measured
        .map_or_else(|| "no data".to_string(), |v| eval::shown(v, o.unit));
    format!(
        "aborted by threshold {:?}: measured {measured} after {:.1} s (abort_on_fail)",
        o.threshold,
        since_start_ms as f64 / 1000.0
    )
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
