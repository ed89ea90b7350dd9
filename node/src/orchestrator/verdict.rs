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
    /// Responses that failed a check (status or body); `None` when no driver counted them.
    failed_checks: Option<u64>,
    /// A request mix's figures by name.
    by_request: BTreeMap<String, super::view_mix::Named>,
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
            failed_checks: None,
            by_request: super::view_mix::merge(parts.values()),
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
            if r.seq > 0 {
                *m.failed_checks.get_or_insert(0) += r.errors.failed_responses();
            }
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
            checks_failed: self.failed_checks,
        }
    }

    /// The data of a scope: the whole test, or a request name of its mix (merged over the
    /// drivers' `by_request` figures); `None` for a name no driver has reported yet.
    fn scope(&self, request: Option<&str>) -> Option<Data<'_>> {
        let Some(name) = request else {
            return Some(self.data());
        };
        let n = self.by_request.get(name)?;
        let e = &n.stats.errors;
        Some(Data {
            latency: Ok(&n.latency),
            responses: n.stats.responses,
            errors: e.total(),
            completed: n.stats.responses + e.connect + e.timeout + e.io,
            elapsed_us: n.elapsed_us / 1000 * 1000,
            counted: true,
            checks_failed: Some(e.failed_responses()),
        })
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
