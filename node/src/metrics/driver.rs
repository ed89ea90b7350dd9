//! A driver's metrics: the test it is running, read live from the engine
//! ([`Running::snapshot`], the same merge the reporter does twice a second), and the
//! [`RECENT_TESTS`] tests it ran before, kept as their final figures.
//!
//! The control loop tells [`DriverMetrics`] when a run starts and ends; between those two
//! moments nothing is copied or counted for metrics, so the engine's hot loop is unchanged.

use super::{
    collect_common, descs, quantiles, Buckets, Families, Kind, Spec, COMMON, ERROR_KINDS,
    RECENT_TESTS, STATUS_CLASSES,
};
use crate::bus::BusStats;
use crate::engine::{ErrorCounts, Running, Snapshot, StatusClasses};
use crate::stats::Summary;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

pub const TEST_RUNNING: Spec = Spec {
    name: "floodgate_driver_test_running",
    help: "1 while the driver runs the test, 0 once it has ended on this driver.",
    kind: Kind::Gauge,
    labels: &["test_id", "node_id"],
};
pub const PLANNED: Spec = Spec {
    name: "floodgate_driver_requests_planned",
    help: "Requests this driver is to send in the test.",
    kind: Kind::Gauge,
    labels: &["test_id", "node_id"],
};
pub const SENT: Spec = Spec {
    name: "floodgate_driver_requests_sent_total",
    help: "Requests this driver has handed to a connection in the test (live).",
    kind: Kind::Counter,
    labels: &["test_id", "node_id"],
};
pub const RESPONSES: Spec = Spec {
    name: "floodgate_driver_responses_total",
    help: "Complete HTTP responses received in the test, by status class (live).",
    kind: Kind::Counter,
    labels: &["test_id", "node_id", "status_class"],
};
pub const ERRORS: Spec = Spec {
    name: "floodgate_driver_errors_total",
    help: "Failed requests in the test, by kind; http is any non-2xx response (live).",
    kind: Kind::Counter,
    labels: &["test_id", "node_id", "kind"],
};
pub const RPS: Spec = Spec {
    name: "floodgate_driver_achieved_rps",
    help: "Responses per second since the scheduled start (until the last response once ended).",
    kind: Kind::Gauge,
    labels: &["test_id", "node_id"],
};
pub const ELAPSED: Spec = Spec {
    name: "floodgate_driver_elapsed_seconds",
    help: "Time since the scheduled start (until the last response once ended).",
    kind: Kind::Gauge,
    labels: &["test_id", "node_id"],
};
pub const LATENCY: Spec = Spec {
    name: "floodgate_driver_latency_seconds",
    help: "Latency from the intended send time (from the engine's HDR histograms; exact sum and count).",
    kind: Kind::Histogram,
    labels: &["test_id", "node_id"],
};
pub const LATENCY_SUMMARY: Spec = Spec {
    name: "floodgate_driver_latency_summary_seconds",
    help:
        "Latency from the HDR histogram: exact min (0), max (1) and count; percentiles within 0.1%.",
    kind: Kind::Summary,
    labels: &["test_id", "node_id"],
};

pub const SCHEDULE_LAG: Spec = Spec {
    name: "floodgate_driver_schedule_lag_seconds",
    help: "How late paced requests left after their due instants (the generator's own lateness; paced tests only): exact min (0), max (1), count and sum; percentiles within 0.1%.",
    kind: Kind::Summary,
    labels: &["test_id", "node_id"],
};
pub const CONNECT: Spec = Spec {
    name: "floodgate_driver_connect_duration_seconds",
    help: "TCP connect time of each connection opened in the test, apart from request latency (from the engine's HDR histograms; exact sum and count).",
    kind: Kind::Histogram,
    labels: &["test_id", "node_id"],
};
pub const TLS: Spec = Spec {
    name: "floodgate_driver_tls_handshake_duration_seconds",
    help: "TLS handshake time (after the TCP connect) of each TLS connection opened in the test (from the engine's HDR histograms; exact sum and count).",
    kind: Kind::Histogram,
    labels: &["test_id", "node_id"],
};
pub const TLS_RESUMED: Spec = Spec {
    name: "floodgate_driver_tls_resumed_total",
    help:
        "TLS handshakes in the test that resumed a session (of those in the handshake histogram).",
    kind: Kind::Counter,
    labels: &["test_id", "node_id"],
};

const SPECS: [&Spec; 13] = [
    &TEST_RUNNING,
    &PLANNED,
    &SENT,
    &RESPONSES,
    &ERRORS,
    &RPS,
    &ELAPSED,
    &LATENCY,
    &LATENCY_SUMMARY,
    &SCHEDULE_LAG,
    &CONNECT,
    &TLS,
    &TLS_RESUMED,
];

/// This role's own families (beside [`super::COMMON`]).
pub fn specs() -> &'static [&'static Spec] {
    &SPECS
}

/// What is exported of one test, computed from a snapshot.
#[derive(Clone, Debug)]
struct Figures {
    test_id: String,
    running: bool,
    planned: u64,
    sent: u64,
    status: StatusClasses,
    errors: ErrorCounts,
    rps: f64,
    elapsed_s: f64,
    buckets: Buckets,
    summary: Summary,
    latency_sum_s: f64,
    lag: Summary,
    lag_sum_s: f64,
    connect: Buckets,
    tls: Buckets,
    tls_resumed: u64,
}

impl Figures {
    fn of(test_id: &str, s: &Snapshot, running: bool) -> Figures {
        let l = &s.recorder.latency;
        Figures {
            test_id: test_id.to_string(),
            running: running && !s.done,
            planned: s.requests,
            sent: s.sent,
            status: s.recorder.status,
            errors: s.recorder.errors,
            rps: s.achieved_rps(),
            elapsed_s: s.elapsed.as_secs_f64(),
            buckets: Buckets::from_latency(l),
            summary: l.summary(),
            latency_sum_s: l.sum_us as f64 / 1e6,
            lag: s.recorder.lag.summary(),
            lag_sum_s: s.recorder.lag.sum_us as f64 / 1e6,
            connect: Buckets::from_latency(&s.recorder.connect),
            tls: Buckets::from_latency(&s.recorder.tls),
            tls_resumed: s.recorder.tls_resumed,
        }
    }
}

#[derive(Default)]
struct Runs {
    current: Option<(String, Running)>,
    /// Newest last; at most [`RECENT_TESTS`].
    ended: VecDeque<Figures>,
}

struct State {
    node_id: String,
    bus: Arc<BusStats>,
    runs: Mutex<Runs>,
}

impl State {
    fn runs(&self) -> MutexGuard<'_, Runs> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The driver's metrics state, held in its context.
pub struct DriverMetrics {
    state: Arc<State>,
}

impl DriverMetrics {
    pub fn new(node_id: &str, bus: Arc<BusStats>) -> Self {
        Self {
            state: Arc::new(State {
                node_id: node_id.to_string(),
                bus,
                runs: Mutex::new(Runs::default()),
            }),
        }
    }

    /// A run started: it is read live from now on.
    pub fn started(&self, test_id: &str, running: Running) {
        let mut runs = self.state.runs();
        // Normally ended already; if not, its figures as they stand.
        if let Some((id, r)) = runs.current.take() {
            push_ended(&mut runs, Figures::of(&id, &r.snapshot(), false));
        }
        runs.current = Some((test_id.to_string(), running));
    }

    /// A run ended with `last` as its final snapshot; the engine's state is released.
    pub fn ended(&self, test_id: &str, last: &Snapshot) {
        let figures = Figures::of(test_id, last, false);
        let mut runs = self.state.runs();
        if runs.current.as_ref().is_some_and(|(id, _)| id == test_id) {
            runs.current = None;
        }
        runs.ended.retain(|f| f.test_id != test_id);
        push_ended(&mut runs, figures);
    }

    /// The driver's exposition, as served at `GET /metrics`.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        super::encode(DriverCollector::new(self.state.clone()))
    }
}

fn push_ended(runs: &mut Runs, f: Figures) {
    runs.ended.push_back(f);
    while runs.ended.len() > RECENT_TESTS {
        runs.ended.pop_front();
    }
}

struct DriverCollector {
    state: Arc<State>,
    descs: Vec<Desc>,
}

impl DriverCollector {
    fn new(state: Arc<State>) -> Self {
        let all: Vec<&Spec> = COMMON.iter().chain(SPECS.iter()).copied().collect();
        Self {
            state,
            descs: descs(&all),
        }
    }

    fn families(&self) -> Families {
        let st = &self.state;
        let mut out = Families::default();
        collect_common(&mut out, &st.node_id, "driver", &st.bus);
        let (current, ended) = {
            let runs = st.runs();
            (runs.current.clone(), runs.ended.clone())
        };
        // The snapshot merges the engine's shards outside the lock above.
        let live = current.map(|(id, r)| Figures::of(&id, &r.snapshot(), true));
        for f in ended.iter().chain(live.iter()) {
            figures(&mut out, &st.node_id, f);
        }
        out
    }
}

fn figures(out: &mut Families, node: &str, f: &Figures) {
    let test = f.test_id.as_str();
    let ids = [test, node];
    out.gauge(&TEST_RUNNING, &ids, if f.running { 1.0 } else { 0.0 });
    out.gauge(&PLANNED, &ids, f.planned as f64);
    out.counter(&SENT, &ids, f.sent as f64);
    for (class, n) in STATUS_CLASSES.iter().zip(f.status.0) {
        out.counter(&RESPONSES, &[test, node, class], n as f64);
    }
    for (kind, n) in ERROR_KINDS.iter().zip(f.errors.as_array()) {
        out.counter(&ERRORS, &[test, node, kind], n as f64);
    }
    out.gauge(&RPS, &ids, f.rps);
    out.gauge(&ELAPSED, &ids, f.elapsed_s);
    out.histogram(&LATENCY, &ids, &f.buckets);
    out.summary(
        &LATENCY_SUMMARY,
        &ids,
        &quantiles(&f.summary),
        f.summary.count,
        f.latency_sum_s,
    );
    // Only a paced test has a schedule to be late for.
    if f.lag.count > 0 {
        out.summary(
            &SCHEDULE_LAG,
            &ids,
            &quantiles(&f.lag),
            f.lag.count,
            f.lag_sum_s,
        );
    }
    // Connection opening costs, apart from latency: only where connections were opened, and
    // TLS only for an HTTPS test.
    if f.connect.count > 0 {
        out.histogram(&CONNECT, &ids, &f.connect);
    }
    if f.tls.count > 0 {
        out.histogram(&TLS, &ids, &f.tls);
        out.counter(&TLS_RESUMED, &ids, f.tls_resumed as f64);
    }
}

impl Collector for DriverCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.families().into_families()
    }
}
