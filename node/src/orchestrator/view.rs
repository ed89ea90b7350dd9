//! What the API shows of a test: counters and latency per driver and over all of them, exact
//! where they can be (merged histograms, exact sums) and `null` with a reason where they cannot
//! (a median of other implementations' summaries).

pub use super::clock::{DriverStart, StartSkew};
use super::part::{Judgement, Part};
use super::spec::TestSpec;
pub use super::stage_view::StageStats;
use super::view_mix::RequestStats;
use crate::model::{DriverState, Ended, ReportFormat, TestStatus};
use crate::protocol::{ChecksFailed, ErrorCounts, GeneratorLoad, MetricsReport, StatusClasses};
use crate::stats::{Latency, LatencySource, LatencyStats, NotMergeable};
use crate::thresholds::eval::Thresholds;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// Counters and latency over one driver or all of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub requests_total: u64,
    pub sent: u64,
    pub responses: u64,
    pub ok: u64,
    pub errors: ErrorCounts,
    pub error_total: u64,
    pub status: StatusClasses,
    /// False when a driver reported no counts (another implementation's seed-format reports):
    /// then its counts above are 0 because they are unknown, not because nothing was sent.
    #[serde(default = "yes")]
    pub counted: bool,
    /// Responses per second over the elapsed time.
    pub achieved_rps: f64,
    /// Requests ended (a response or an error) over requests to send, 0 to 1.
    pub progress: f64,
    pub elapsed_ms: u64,
    /// From the intended send instant (coordinated omission); in ms.
    pub latency: LatencyStats,
    /// From the actual write (raw service time); in ms.
    pub service_time: LatencyStats,
    /// How late paced requests left (actual send minus due instant); in ms. Empty when
    /// unpaced.
    #[serde(default)]
    pub schedule_lag: LatencyStats,
    /// Set when the schedule lag is a large share of the latency: then that latency is the load
    /// generator's, not the target's (see `stats::lag_note`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_note: Option<String>,
    /// A staged test's stages: target and achieved rate of each (issue 12).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageStats>,
    /// TCP connect time of each connection opened, apart from request latency; in ms. Empty
    /// when no driver measured one (another implementation's).
    #[serde(default, skip_serializing_if = "LatencyStats::is_empty")]
    pub connect_time: LatencyStats,
    /// TLS handshake time of each TLS connection opened (after its connect); in ms. Empty for
    /// plain HTTP.
    #[serde(default, skip_serializing_if = "LatencyStats::is_empty")]
    pub tls_handshake: LatencyStats,
    /// TLS handshakes that resumed a session (of those in `tls_handshake`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tls_resumed: u64,
    /// The first transport error a driver saw (the aggregate: the first driver's that has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Responses that failed a check, by kind (issue 12).
    #[serde(default, skip_serializing_if = "ChecksFailed::is_empty")]
    pub checks_failed: ChecksFailed,
    /// A request mix's figures by request name (issue 12); empty without a mix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_request: BTreeMap<String, RequestStats>,
}

fn yes() -> bool {
    true
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            requests_total: 0,
            sent: 0,
            responses: 0,
            ok: 0,
            errors: ErrorCounts::default(),
            error_total: 0,
            status: StatusClasses::default(),
            counted: true,
            achieved_rps: 0.0,
            progress: 0.0,
            elapsed_ms: 0,
            latency: LatencyStats::default(),
            service_time: LatencyStats::default(),
            schedule_lag: LatencyStats::default(),
            lag_note: None,
            stages: Vec::new(),
            connect_time: LatencyStats::default(),
            tls_handshake: LatencyStats::default(),
            tls_resumed: 0,
            first_error: None,
            checks_failed: ChecksFailed::default(),
            by_request: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriverStats {
    pub driver_id: String,
    pub state: DriverState,
    pub report_seq: u64,
    /// How old the newest report is, while the test runs.
    pub report_age_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_format: Option<ReportFormat>,
    /// How its part ended (done), or why it was lost or refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<Ended>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Settings the driver filled in itself (e.g. a default request count).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub defaults: BTreeMap<String, serde_json::Value>,
    /// Its own load, and its saturation warning if it could not keep up (issue 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorLoad>,
    /// When its first request left, on the orchestrator's clock (issue 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DriverStart>,
    #[serde(flatten)]
    pub stats: Stats,
}

/// What the API returns for a test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestView {
    pub id: String,
    pub status: TestStatus,
    pub reason: Option<String>,
    pub spec: TestSpec,
    pub drivers: Vec<String>,
    pub created_at_ms: u64,
    pub started_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
    /// True once the numbers are final: the test has ended and no more reports are taken (a
    /// stopped test takes its drivers' last reports for a few seconds after the stop).
    #[serde(default = "yes")]
    pub settled: bool,
    pub aggregate: Stats,
    pub per_driver: Vec<DriverStats>,
    /// The drivers that could not keep up, each named with what it measured: their figures
    /// measure the load generator, not the target (issue 12).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generator_warnings: Vec<String>,
    /// The thresholds' measured values and the verdict; absent when the test has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
    /// How far apart the drivers sent their first requests (issue 13); absent before any did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_skew: Option<StartSkew>,
    /// How a test given in totals was shared (issue 13); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<super::split::Split>,
    /// Live rate changes, as planned and as each driver applied them (issue 13).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_changes: Vec<super::rate_change::RateChangeView>,
    /// Lost drivers' shares handed to others (issue 13), with what is known of the requests
    /// they may have sent unreported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hand_overs: Vec<super::hand_over::HandOverView>,
}

pub(super) fn driver_stats(
    id: &str,
    part: &Part,
    requests: u64,
    running: bool,
    now: Instant,
) -> DriverStats {
    let mut s = Stats {
        requests_total: requests,
        ..Default::default()
    };
    let r = part.report.as_ref();
    if let Some(r) = r {
        fill_counts(&mut s, r);
    }
    s.latency = part.figures();
    s.service_time = LatencyStats::exact(&part.service);
    s.schedule_lag = LatencyStats::exact(&part.lag);
    s.lag_note = crate::stats::lag_note(&s.latency, &s.schedule_lag);
    s.connect_time = LatencyStats::exact(&part.connect);
    s.tls_handshake = LatencyStats::exact(&part.tls);
    s.tls_resumed = r.map_or(0, |r| r.handshakes.tls_resumed);
    s.first_error = r.and_then(|r| r.first_error.clone());
    s.by_request = super::view_mix::shown(super::view_mix::merge(std::iter::once(part)));
    let (state, ended_by, reason) = match &part.judged {
        Some(Judgement::Done(how)) => (DriverState::Done, Some(*how), None),
        Some(Judgement::Refused(why)) => (DriverState::Refused, None, Some(why.clone())),
        Some(Judgement::Lost(why)) => (DriverState::Lost, None, Some(why.clone())),
        _ => match r {
            Some(r) if r.is_final => (DriverState::Done, Some(Ended::Final), None),
            Some(_) => (DriverState::Running, None, None),
            None => (DriverState::Waiting, None, None),
        },
    };
    if state == DriverState::Done && !s.counted {
        // It says it is done but gave no count: all of its share, as far as it is known.
        s.progress = 1.0;
    }
    let reason = reason.or_else(|| r.and_then(|r| r.reason.clone()));
    DriverStats {
        driver_id: id.to_string(),
        state,
        report_seq: part.order,
        report_age_ms: part
            .received_at
            .filter(|_| running)
            .map(|t| now.saturating_duration_since(t).as_millis() as u64),
        report_format: r.map(|r| {
            if r.seq > 0 {
                ReportFormat::Floodgate
            } else {
                ReportFormat::Seed
            }
        }),
        ended_by,
        reason,
        defaults: r.map(|r| r.defaults.clone()).unwrap_or_default(),
        generator: r.and_then(|r| r.generator.clone()),
        start: part.start(),
        stats: s,
    }
}

/// The aggregate of several drivers' figures: the merged histograms where every driver sent
/// one (exact); otherwise min of mins and max of maxes, a mean weighted by counts where every
/// count is known, and no median or percentile (they cannot be merged from per-driver values).
pub(super) fn merged<'a>(
    parts: impl Iterator<Item = (&'a str, &'a Latency, LatencyStats)>,
) -> LatencyStats {
    let mut all = Latency::default();
    let mut summaries: Vec<(&str, LatencyStats)> = Vec::new();
    for (id, latency, figures) in parts {
        match figures.source {
            LatencySource::Histogram => all.merge(latency),
            LatencySource::Summary | LatencySource::Mixed => summaries.push((id, figures)),
            LatencySource::None => {}
        }
    }
    let exact = LatencyStats::exact(&all);
    if summaries.is_empty() {
        return exact;
    }
    if summaries.len() == 1 && exact.is_empty() {
        // One driver's figures are the whole data so far.
        return summaries.remove(0).1;
    }
    let mut figures: Vec<&LatencyStats> = summaries.iter().map(|(_, f)| f).collect();
    if !exact.is_empty() {
        figures.push(&exact);
    }
    let all_of = |f: fn(&LatencyStats) -> Option<f64>| -> Option<Vec<f64>> {
        figures.iter().map(|s| f(s)).collect()
    };
    let min_ms = all_of(|s| s.min_ms).map(|v| v.into_iter().fold(f64::INFINITY, f64::min));
    let max_ms = all_of(|s| s.max_ms).map(|v| v.into_iter().fold(0.0, f64::max));
    let counted = figures.iter().all(|s| s.count > 0);
    let count: u64 = figures.iter().map(|s| s.count).sum();
    let mean_ms = match (counted, all_of(|s| s.mean_ms)) {
        (true, Some(_)) => Some(
            figures
                .iter()
                .map(|s| s.count as f64 * s.mean_ms.unwrap_or(0.0))
                .sum::<f64>()
                / count as f64,
        ),
        _ => None,
    };
    let mut fields: Vec<String> = ["median_ms", "mode_ms", "p90_ms", "p95_ms", "p99_ms"]
        .map(String::from)
        .to_vec();
    let names: Vec<&str> = summaries.iter().map(|(id, _)| *id).collect();
    let mut reason = format!(
        "{} sent only summary figures, no histogram: a median or percentile cannot be merged from per-driver values",
        names.join(", ")
    );
    if mean_ms.is_none() {
        fields.insert(0, "mean_ms".into());
        reason.push_str("; the mean needs every driver's count and mean");
    }
    for (name, v) in [("min_ms", min_ms), ("max_ms", max_ms)] {
        if v.is_none() {
            fields.insert(0, name.into());
        }
    }
    LatencyStats {
        count: if counted { count } else { 0 },
        min_ms,
        max_ms,
        mean_ms,
        median_ms: None,
        mode_ms: None,
        p90_ms: None,
        p95_ms: None,
        p99_ms: None,
        source: if exact.is_empty() {
            LatencySource::Summary
        } else {
            LatencySource::Mixed
        },
        not_mergeable: Some(NotMergeable { fields, reason }),
    }
}

fn fill_counts(s: &mut Stats, r: &MetricsReport) {
    s.counted = r.counted;
    s.sent = r.requests_sent;
    s.responses = r.responses_received;
    // A Floodgate driver's successes are the responses that passed their checks (by default
    // a 2xx status); counts without status classes (another implementation's) are successes
    // as far as known.
    s.ok = if r.seq > 0 {
        r.responses_received
            .saturating_sub(r.errors.failed_responses())
    } else if r.status.total() > 0 {
        r.status.c2
    } else {
        r.responses_received
    };
    s.checks_failed = r.checks_failed;
    s.errors = r.errors;
    s.error_total = r.errors.total();
    s.status = r.status;
    s.elapsed_ms = r.elapsed_us / 1000;
    if r.requests > 0 {
        s.requests_total = r.requests;
    }
    finish_rates(s);
}

pub(super) fn finish_rates(s: &mut Stats) {
    if s.elapsed_ms > 0 {
        s.achieved_rps = s.responses as f64 * 1000.0 / s.elapsed_ms as f64;
    }
    let ended = s.responses + s.errors.connect + s.errors.timeout + s.errors.io;
    if s.requests_total > 0 {
        s.progress = (ended as f64 / s.requests_total as f64).min(1.0);
    }
}
