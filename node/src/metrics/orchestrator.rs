//! The orchestrator's metrics: drivers and their heartbeats, tests by state, and each exported
//! test's per-driver counters and latency, all read from [`Orchestrator`] when scraped.
//!
//! Counters of a test come from the drivers' cumulative reports, so they are at most one report
//! interval (500 ms) old. The latency histogram is per driver while the test runs; an ended
//! test has freed its histograms (docs/decisions.md), so its latency remains as the exact merged
//! summary (`floodgate_test_latency_summary_seconds`), which is exported for running and ended
//! tests alike. Connect and TLS handshake times follow the same pattern, apart from latency.

use super::{
    collect_common, descs, Buckets, Families, Kind, Spec, COMMON, ERROR_KINDS, RECENT_TESTS,
    STATUS_CLASSES,
};
use crate::model::TestStatus;
use crate::orchestrator::run::DriverHistograms;
use crate::orchestrator::view::{Stats, TestView};
use crate::orchestrator::Orchestrator;
use crate::stats::LatencyStats;
use crate::thresholds::eval::{State, Thresholds, Verdict};
use crate::thresholds::Unit;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;

pub const DRIVERS_ALIVE: Spec = Spec {
    name: "floodgate_drivers_alive",
    help: "Drivers heard from within the heartbeat timeout.",
    kind: Kind::Gauge,
    labels: &[],
};
pub const DRIVER_UP: Spec = Spec {
    name: "floodgate_driver_up",
    help: "1 if the driver is alive (a heartbeat within the timeout), 0 if it is lost.",
    kind: Kind::Gauge,
    labels: &["node_id"],
};
pub const HEARTBEAT_AGE: Spec = Spec {
    name: "floodgate_driver_heartbeat_age_seconds",
    help: "Time since the orchestrator last heard from the driver.",
    kind: Kind::Gauge,
    labels: &["node_id"],
};
pub const HEARTBEATS: Spec = Spec {
    name: "floodgate_driver_heartbeats_received_total",
    help: "Heartbeats received from the driver.",
    kind: Kind::Counter,
    labels: &["node_id"],
};
pub const TESTS: Spec = Spec {
    name: "floodgate_tests",
    help: "Tests the orchestrator holds, by state.",
    kind: Kind::Gauge,
    labels: &["state"],
};
pub const TEST_STATE: Spec = Spec {
    name: "floodgate_test_state",
    help: "1 for the test's current state, 0 for the others.",
    kind: Kind::Gauge,
    labels: &["test_id", "state"],
};
pub const TEST_PLANNED: Spec = Spec {
    name: "floodgate_test_requests_planned",
    help: "Requests the driver is to send in the test.",
    kind: Kind::Gauge,
    labels: &["test_id", "node_id"],
};
pub const TEST_SENT: Spec = Spec {
    name: "floodgate_test_requests_sent_total",
    help: "Requests the driver has sent in the test (as of its latest report).",
    kind: Kind::Counter,
    labels: &["test_id", "node_id"],
};
pub const TEST_RESPONSES: Spec = Spec {
    name: "floodgate_test_responses_total",
    help: "Complete HTTP responses the driver received in the test, by status class.",
    kind: Kind::Counter,
    labels: &["test_id", "node_id", "status_class"],
};
pub const TEST_ERRORS: Spec = Spec {
    name: "floodgate_test_errors_total",
    help: "Failed requests of the driver in the test, by kind (http is any non-2xx response).",
    kind: Kind::Counter,
    labels: &["test_id", "node_id", "kind"],
};
pub const TEST_RPS: Spec = Spec {
    name: "floodgate_test_achieved_rps",
    help: "Responses per second the driver achieved since the scheduled start.",
    kind: Kind::Gauge,
    labels: &["test_id", "node_id"],
};
pub const TEST_ELAPSED: Spec = Spec {
    name: "floodgate_test_elapsed_seconds",
    help: "Time from the scheduled start to the driver's latest report (or its last response).",
    kind: Kind::Gauge,
    labels: &["test_id", "node_id"],
};
pub const TEST_LATENCY: Spec = Spec {
    name: "floodgate_test_latency_seconds",
    help: "Latency from the intended send time, per driver, while the test runs (from its HDR histogram).",
    kind: Kind::Histogram,
    labels: &["test_id", "node_id"],
};
pub const TEST_LATENCY_SUMMARY: Spec = Spec {
    name: "floodgate_test_latency_summary_seconds",
    help: "Latency over all drivers from the merged HDR histograms: exact min (0), max (1) and count; percentiles within 0.1%.",
    kind: Kind::Summary,
    labels: &["test_id"],
};
pub const TEST_CONNECT: Spec = Spec {
    name: "floodgate_test_connect_duration_seconds",
    help: "TCP connect time of each connection the driver opened, apart from request latency, while the test runs (from its HDR histogram; exact sum and count).",
    kind: Kind::Histogram,
    labels: &["test_id", "node_id"],
};
pub const TEST_CONNECT_SUMMARY: Spec = Spec {
    name: "floodgate_test_connect_summary_seconds",
    help: "TCP connect time over all drivers from the merged HDR histograms: exact min (0), max (1) and count; percentiles within 0.1%.",
    kind: Kind::Summary,
    labels: &["test_id"],
};
pub const TEST_TLS: Spec = Spec {
    name: "floodgate_test_tls_handshake_duration_seconds",
    help: "TLS handshake time (after the TCP connect) of each TLS connection the driver opened, while the test runs (from its HDR histogram; exact sum and count).",
    kind: Kind::Histogram,
    labels: &["test_id", "node_id"],
};
pub const TEST_TLS_SUMMARY: Spec = Spec {
    name: "floodgate_test_tls_handshake_summary_seconds",
    help: "TLS handshake time over all drivers from the merged HDR histograms: exact min (0), max (1) and count; percentiles within 0.1%.",
    kind: Kind::Summary,
    labels: &["test_id"],
};
pub const TEST_TLS_RESUMED: Spec = Spec {
    name: "floodgate_test_tls_resumed_total",
    help: "TLS handshakes of the driver that resumed a session (as of its latest report).",
    kind: Kind::Counter,
    labels: &["test_id", "node_id"],
};

pub const TEST_CHECKS_FAILED: Spec = Spec {
    name: "floodgate_test_checks_failed_total",
    help: "Responses of the test that failed a check, by kind (status: also in errors kind http; body and json: also in kind check), over all drivers.",
    kind: Kind::Counter,
    labels: &["test_id", "kind"],
};
pub const TEST_REQUEST_SENT: Spec = Spec {
    name: "floodgate_test_request_sent_total",
    help: "Requests of one name of the test's request mix sent, over all drivers.",
    kind: Kind::Counter,
    labels: &["test_id", "request"],
};
pub const TEST_REQUEST_RESPONSES: Spec = Spec {
    name: "floodgate_test_request_responses_total",
    help: "Complete HTTP responses to one name of the test's request mix, by status class, over all drivers.",
    kind: Kind::Counter,
    labels: &["test_id", "request", "status_class"],
};
pub const TEST_REQUEST_ERRORS: Spec = Spec {
    name: "floodgate_test_request_errors_total",
    help: "Failed requests of one name of the test's request mix, by kind, over all drivers.",
    kind: Kind::Counter,
    labels: &["test_id", "request", "kind"],
};
pub const TEST_REQUEST_LATENCY: Spec = Spec {
    name: "floodgate_test_request_latency_summary_seconds",
    help: "Latency of one name of the test's request mix over all drivers, from the merged HDR histograms: exact min (0), max (1) and count; percentiles within 0.1%.",
    kind: Kind::Summary,
    labels: &["test_id", "request"],
};

pub const TEST_THRESHOLD_PASSED: Spec = Spec {
    name: "floodgate_test_threshold_passed",
    help: "1 if the threshold holds on the merged data so far, 0 if it fails or has no data (never a pass).",
    kind: Kind::Gauge,
    labels: &["test_id", "threshold"],
};
pub const TEST_THRESHOLD_VALUE: Spec = Spec {
    name: "floodgate_test_threshold_value",
    help: "The threshold's measured value on the merged data, in base units (seconds for latency, a ratio for error_rate, responses/s, counts); absent with no data.",
    kind: Kind::Gauge,
    labels: &["test_id", "threshold"],
};
pub const TEST_THRESHOLDS: Spec = Spec {
    name: "floodgate_test_thresholds_verdict",
    help: "1 for the test's thresholds verdict (passed, failed, not_evaluated, pending), 0 for the others.",
    kind: Kind::Gauge,
    labels: &["test_id", "state"],
};

const SPECS: [&Spec; 27] = [
    &DRIVERS_ALIVE,
    &DRIVER_UP,
    &HEARTBEAT_AGE,
    &HEARTBEATS,
    &TESTS,
    &TEST_STATE,
    &TEST_PLANNED,
    &TEST_SENT,
    &TEST_RESPONSES,
    &TEST_ERRORS,
    &TEST_RPS,
    &TEST_ELAPSED,
    &TEST_LATENCY,
    &TEST_LATENCY_SUMMARY,
    &TEST_CONNECT,
    &TEST_CONNECT_SUMMARY,
    &TEST_TLS,
    &TEST_TLS_SUMMARY,
    &TEST_TLS_RESUMED,
    &TEST_CHECKS_FAILED,
    &TEST_REQUEST_SENT,
    &TEST_REQUEST_RESPONSES,
    &TEST_REQUEST_ERRORS,
    &TEST_REQUEST_LATENCY,
    &TEST_THRESHOLD_PASSED,
    &TEST_THRESHOLD_VALUE,
    &TEST_THRESHOLDS,
];

/// This role's own families (beside [`super::COMMON`]).
pub fn specs() -> &'static [&'static Spec] {
    &SPECS
}

const STATES: [(TestStatus, &str); 5] = [
    (TestStatus::Created, "created"),
    (TestStatus::Running, "running"),
    (TestStatus::Completed, "completed"),
    (TestStatus::Failed, "failed"),
    (TestStatus::Stopped, "stopped"),
];

/// Reads an [`Orchestrator`] when collected.
pub struct OrchestratorCollector {
    o: Orchestrator,
    descs: Vec<Desc>,
}

impl OrchestratorCollector {
    pub fn new(o: Orchestrator) -> Self {
        let all: Vec<&Spec> = COMMON.iter().chain(SPECS.iter()).copied().collect();
        Self {
            o,
            descs: descs(&all),
        }
    }

    fn families(&self) -> Families {
        let mut out = Families::default();
        let o = &self.o;
        collect_common(&mut out, o.id(), "orchestrator", o.bus_stats());

        let drivers = o.drivers();
        let alive = drivers.iter().filter(|d| d.alive).count();
        out.gauge(&DRIVERS_ALIVE, &[], alive as f64);
        for d in &drivers {
            let id = d.id.as_str();
            out.gauge(&DRIVER_UP, &[id], if d.alive { 1.0 } else { 0.0 });
            out.gauge(&HEARTBEAT_AGE, &[id], d.heartbeat_age_ms as f64 / 1000.0);
            out.counter(&HEARTBEATS, &[id], d.heartbeats as f64);
        }

        let (statuses, tests) = o.metrics_view(RECENT_TESTS);
        for (state, name) in STATES {
            let n = statuses.iter().filter(|s| **s == state).count();
            out.gauge(&TESTS, &[name], n as f64);
        }
        for (view, histograms) in &tests {
            test_families(&mut out, view, histograms);
        }
        out
    }
}

/// One exported test's families: its state, per-driver counters and histograms (while it
/// runs), and the merged summaries.
pub(crate) fn test_families(out: &mut Families, view: &TestView, histograms: &[DriverHistograms]) {
    let t = view.id.as_str();
    for (state, name) in STATES {
        let v = if view.status == state { 1.0 } else { 0.0 };
        out.gauge(&TEST_STATE, &[t, name], v);
    }
    for d in &view.per_driver {
        per_driver(out, t, &d.driver_id, &d.stats);
    }
    for h in histograms {
        let ids = [t, h.node.as_str()];
        out.histogram(&TEST_LATENCY, &ids, &Buckets::from_latency(&h.latency));
        // Handshake series only where connections were opened (TLS: HTTPS tests).
        for (spec, l) in [(&TEST_CONNECT, &h.connect), (&TEST_TLS, &h.tls)] {
            if l.count() > 0 {
                out.histogram(spec, &ids, &Buckets::from_latency(l));
            }
        }
    }
    summary(out, &TEST_LATENCY_SUMMARY, &[t], &view.aggregate.latency);
    let c = &view.aggregate.checks_failed;
    if !c.is_empty() {
        for (kind, n) in [("status", c.status), ("body", c.body), ("json", c.json)] {
            out.counter(&TEST_CHECKS_FAILED, &[t, kind], n as f64);
        }
    }
    // A mix's names, merged over the drivers (at most limits::MAX_MIX_ENTRIES per test).
    for (name, n) in &view.aggregate.by_request {
        let ids = [t, name.as_str()];
        out.counter(&TEST_REQUEST_SENT, &ids, n.sent as f64);
        for (class, k) in STATUS_CLASSES.iter().zip(n.status.as_array()) {
            out.counter(&TEST_REQUEST_RESPONSES, &[t, name, class], k as f64);
        }
        for (kind, k) in ERROR_KINDS.iter().zip(n.errors.as_array()) {
            out.counter(&TEST_REQUEST_ERRORS, &[t, name, kind], k as f64);
        }
        summary(out, &TEST_REQUEST_LATENCY, &ids, &n.latency);
    }
    for (spec, l) in [
        (&TEST_CONNECT_SUMMARY, &view.aggregate.connect_time),
        (&TEST_TLS_SUMMARY, &view.aggregate.tls_handshake),
    ] {
        if !l.is_empty() {
            summary(out, spec, &[t], l);
        }
    }
    if let Some(th) = &view.thresholds {
        thresholds(out, t, th);
    }
}

fn per_driver(out: &mut Families, test: &str, node: &str, s: &Stats) {
    let ids = [test, node];
    out.gauge(&TEST_PLANNED, &ids, s.requests_total as f64);
    out.counter(&TEST_SENT, &ids, s.sent as f64);
    for (class, n) in STATUS_CLASSES.iter().zip(s.status.as_array()) {
        out.counter(&TEST_RESPONSES, &[test, node, class], n as f64);
    }
    for (kind, n) in ERROR_KINDS.iter().zip(s.errors.as_array()) {
        out.counter(&TEST_ERRORS, &[test, node, kind], n as f64);
    }
    out.gauge(&TEST_RPS, &ids, s.achieved_rps);
    out.gauge(&TEST_ELAPSED, &ids, s.elapsed_ms as f64 / 1000.0);
    if !s.tls_handshake.is_empty() {
        out.counter(&TEST_TLS_RESUMED, &ids, s.tls_resumed as f64);
    }
}

const VERDICTS: [Verdict; 4] = [
    Verdict::Passed,
    Verdict::Failed,
    Verdict::NotEvaluated,
    Verdict::Pending,
];

fn thresholds(out: &mut Families, test: &str, t: &Thresholds) {
    for v in VERDICTS {
        let on = if t.verdict == v { 1.0 } else { 0.0 };
        out.gauge(&TEST_THRESHOLDS, &[test, v.as_str()], on);
    }
    for o in &t.results {
        let ids = [test, o.threshold.as_str()];
        let passed = if o.state == State::Passed { 1.0 } else { 0.0 };
        out.gauge(&TEST_THRESHOLD_PASSED, &ids, passed);
        if let Some(v) = o.measured {
            let base = if o.unit == Unit::Ms { v / 1000.0 } else { v };
            out.gauge(&TEST_THRESHOLD_VALUE, &ids, base);
        }
    }
}

/// The merged summary, in seconds. Its sum is the exact mean times the count, rounded back to
/// the whole microseconds it was summed in.
/// The aggregate as a summary: only the quantiles that are known (a median cannot be merged from
/// other implementations' summaries, so it is left out rather than guessed); the sum is NaN when
/// the mean is not known.
fn summary(out: &mut Families, spec: &Spec, labels: &[&str], l: &LatencyStats) {
    if l.is_empty() {
        out.summary(spec, labels, &[], 0, 0.0);
        return;
    }
    let known: Vec<(f64, f64)> = [
        (0.0, l.min_ms),
        (0.5, l.median_ms),
        (0.9, l.p90_ms),
        (0.95, l.p95_ms),
        (0.99, l.p99_ms),
        (1.0, l.max_ms),
    ]
    .into_iter()
    .filter_map(|(q, ms)| ms.map(|ms| (q, (ms * 1000.0).round() / 1e6)))
    .collect();
    let sum = l
        .mean_ms
        .map_or(f64::NAN, |m| (m * 1000.0 * l.count as f64).round() / 1e6);
    out.summary(spec, labels, &known, l.count, sum);
}

impl Collector for OrchestratorCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.families().into_families()
    }
}

/// The orchestrator's exposition, as served at `GET /metrics`.
pub fn render(o: &Orchestrator) -> Result<String, prometheus::Error> {
    super::encode(OrchestratorCollector::new(o.clone()))
}
