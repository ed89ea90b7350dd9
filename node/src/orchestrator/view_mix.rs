//! A request mix's figures by name (issue 12, item 3), per driver and merged over drivers:
//! counts are exact sums of the drivers' cumulative `by_request` reports, latency comes from
//! their merged HDR histograms (never averaged percentiles), exactly as the totals beside them.

use super::part::Part;
use crate::protocol::{ChecksFailed, ErrorCounts, StatusClasses};
use crate::stats::{Latency, LatencyStats};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One request name's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestStats {
    pub sent: u64,
    pub responses: u64,
    /// Responses that passed every check (an expected status, and the body checks).
    pub ok: u64,
    pub errors: ErrorCounts,
    pub error_total: u64,
    #[serde(default, skip_serializing_if = "ChecksFailed::is_empty")]
    pub checks_failed: ChecksFailed,
    pub status: StatusClasses,
    /// Its responses per second over the test's elapsed time.
    pub achieved_rps: f64,
    /// From the intended send instant, as the totals' latency; in ms.
    pub latency: LatencyStats,
}

/// A scope's merged data: one name's counts and latency over some parts.
#[derive(Default)]
pub(super) struct Named {
    pub stats: RequestStats,
    pub latency: Latency,
    pub elapsed_us: u64,
}

/// Each name's figures merged over `parts` (one part for a driver's own).
pub(super) fn merge<'a>(parts: impl Iterator<Item = &'a Part>) -> BTreeMap<String, Named> {
    let mut out: BTreeMap<String, Named> = BTreeMap::new();
    for p in parts {
        let Some(r) = &p.report else { continue };
        for (name, n) in &r.by_request {
            let m = out.entry(name.clone()).or_default();
            let s = &mut m.stats;
            s.sent += n.requests_sent;
            s.responses += n.responses_received;
            s.errors.add(&n.errors);
            s.checks_failed.add(&n.checks_failed);
            s.status.add(&n.status);
            if let Some(l) = p.by_request.get(name) {
                m.latency.merge(l);
            }
            m.elapsed_us = m.elapsed_us.max(r.elapsed_us);
        }
    }
    for m in out.values_mut() {
        let s = &mut m.stats;
        s.error_total = s.errors.total();
        s.ok = s.responses.saturating_sub(s.errors.failed_responses());
        // Whole ms, as the totals' achieved_rps.
        let ms = m.elapsed_us / 1000;
        if ms > 0 {
            s.achieved_rps = s.responses as f64 * 1000.0 / ms as f64;
        }
        s.latency = LatencyStats::exact(&m.latency);
    }
    out
}

/// The figures shown: each name's stats.
pub(super) fn shown(merged: BTreeMap<String, Named>) -> BTreeMap<String, RequestStats> {
    merged.into_iter().map(|(k, v)| (k, v.stats)).collect()
}
