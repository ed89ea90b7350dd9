//! Turns engine snapshots into cumulative, sequenced metrics reports for one (test, node).

use super::generator::Meter;
use crate::engine;
use crate::engine::Pacer;
use crate::engine::Snapshot;
use crate::protocol::{
    now_unix_ms, AppliedRate, ChecksFailed, ErrorCounts, HandshakeFields, LatencyFields,
    MetricsReport, RequestReport, RunState, StageProgress, StatusClasses,
};
use crate::stats;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the driver's control loop learns about a run while it goes on, for its reports: the
/// shares of lost drivers it took, and why it was told to stop, if it was (issue 13).
#[derive(Debug, Default)]
pub struct RunNotes {
    pub took: Vec<crate::protocol::TookOver>,
    pub stop_reason: Option<String>,
}

/// The notes as both the control loop and the report loop hold them.
pub type Notes = Arc<Mutex<RunNotes>>;

pub struct Reporter {
    node_id: String,
    test_id: String,
    seq: u64,
    /// Settings the driver filled in itself, repeated in every report.
    defaults: BTreeMap<String, Value>,
    /// The run's pace, once it runs: requests planned per stage, the gap its lag is judged
    /// against, and its CPU meter (see `generator`).
    pace: Option<RunPace>,
    /// The names of a request mix's entries, by position (empty without a mix).
    names: Vec<String>,
    /// Why a run whose lease lapsed stopped (the fail-safe's reason).
    lapse_reason: Option<String>,
    notes: Notes,
}

struct RunPace {
    planned: Vec<u64>,
    paced: bool,
    /// The shortest gap of the pace (at its highest rate).
    gap: Duration,
    meter: Meter,
}

impl Reporter {
    pub fn new(node_id: &str, test_id: &str, defaults: BTreeMap<String, Value>) -> Self {
        Self {
            node_id: node_id.to_string(),
            test_id: test_id.to_string(),
            seq: 0,
            defaults,
            pace: None,
            names: Vec::new(),
            lapse_reason: None,
            notes: Notes::default(),
        }
    }

    /// The run's notes, for the control loop to add to.
    pub fn notes(&self) -> Notes {
        self.notes.clone()
    }

    /// Says `reason` in the final report of a run stopped by its lease lapsing.
    pub fn on_lapse(mut self, reason: String) -> Self {
        self.lapse_reason = Some(reason);
        self
    }

    /// Reports a request mix's figures under these names (its entries', in order).
    pub fn named(mut self, names: Vec<String>) -> Self {
        self.names = names;
        self
    }

    /// Reports on a run of this pace from now on: progress per stage and the driver's load.
    pub fn for_run(mut self, pacer: &Pacer) -> Self {
        let (planned, gap) = match pacer.schedule() {
            Some(s) => {
                let top = s
                    .segments()
                    .iter()
                    .map(|g| g.from_rate.max(g.to_rate))
                    .fold(0.0, f64::max);
                (
                    s.segments().iter().map(|g| g.planned()).collect(),
                    crate::schedule::gap(Duration::ZERO, Some(top)),
                )
            }
            None => (Vec::new(), pacer.gap()),
        };
        self.pace = Some(RunPace {
            planned,
            paced: pacer.is_paced(),
            gap,
            meter: Meter::start(),
        });
        self
    }

    /// The next report; each has a higher `seq` than the last, so the newest always wins. A
    /// final report says `completed` only if every request was sent; otherwise `stopped`.
    pub fn report(&mut self, snap: &Snapshot, is_final: bool) -> MetricsReport {
        self.seq += 1;
        let lat = &snap.recorder.latency;
        let s = lat.summary();
        let (took, told) = {
            let n = self.notes.lock().unwrap_or_else(|p| p.into_inner());
            (n.took.clone(), n.stop_reason.clone())
        };
        let (state, reason) = match is_final {
            false => (RunState::Running, None),
            // Cut off too long: stopped by the fail-safe, whatever it had sent.
            true if snap.lapsed => (
                RunState::Stopped,
                Some(format!(
                    "{} after sending {} of {} requests",
                    self.lapse_reason
                        .as_deref()
                        .unwrap_or("the fail-safe's lease lapsed"),
                    snap.sent,
                    snap.requests
                )),
            ),
            // A time-bound run is complete when it ran its whole duration, however many it sent.
            true if snap.time_bound && snap.stopped => (
                RunState::Stopped,
                Some(format!(
                    "stopped {:.1} s into the test, after sending {} requests",
                    snap.elapsed.as_secs_f64(),
                    snap.sent
                )),
            ),
            true if snap.time_bound => (RunState::Completed, None),
            true if snap.sent >= snap.requests => (RunState::Completed, None),
            true => (
                RunState::Stopped,
                Some(format!(
                    "{} after sending {} of {} requests",
                    told.as_deref().unwrap_or("stopped"),
                    snap.sent,
                    snap.requests
                )),
            ),
        };
        MetricsReport {
            node_id: self.node_id.clone(),
            test_id: self.test_id.clone(),
            report_id: uuid::Uuid::new_v4().to_string(),
            metrics: LatencyFields {
                mean_latency: Some(s.mean_ms),
                median_latency: Some(s.median_ms),
                min_latency: Some(s.min_ms),
                max_latency: Some(s.max_ms),
                mode_latency: Some(s.mode_ms),
                p90_latency: Some(s.p90_ms),
                p95_latency: Some(s.p95_ms),
                p99_latency: Some(s.p99_ms),
            },
            seq: self.seq,
            is_final,
            test_status: Some(state),
            reason,
            defaults: self.defaults.clone(),
            counted: true,
            count_delta: None,
            samples_ms: None,
            requests_sent: snap.sent,
            responses_received: snap.responses(),
            errors: wire_errors(&snap.recorder.errors),
            status: StatusClasses::from_array(snap.recorder.status.0),
            requests: snap.requests,
            latency_sum_us: lat.sum_us,
            service_sum_us: snap.recorder.service.sum_us,
            lag_sum_us: snap.recorder.lag.sum_us,
            elapsed_us: u64::try_from(snap.elapsed.as_micros()).unwrap_or(u64::MAX),
            histogram: Some(stats::encode(&lat.histogram)),
            service_histogram: Some(stats::encode(&snap.recorder.service.histogram)),
            // Only a paced test has a schedule to be late for.
            lag_histogram: (snap.recorder.lag.count() > 0)
                .then(|| stats::encode(&snap.recorder.lag.histogram)),
            timestamp_ms: Some(now_unix_ms()),
            first_send_us: snap.first_send.map(crate::protocol::unix_us),
            rate_changes: snap
                .retimes
                .iter()
                .map(|r| AppliedRate {
                    seq: r.tag,
                    at_us: crate::protocol::unix_us(r.at),
                    first: r.first,
                    rate: 1.0 / r.gap.as_secs_f64().max(1e-9),
                })
                .collect(),
            hand_overs: took,
            stages: self.pace.as_ref().map_or_else(Vec::new, |p| {
                p.planned
                    .iter()
                    .enumerate()
                    .map(|(i, &planned)| StageProgress {
                        sent: snap.recorder.stage_sent.get(i).copied().unwrap_or(0),
                        planned,
                    })
                    .collect()
            }),
            generator: self.pace.as_ref().map(|p| {
                let lag = &snap.recorder.lag;
                let lag_p99 = (p.paced && lag.count() > 0)
                    .then(|| Duration::from_micros(lag.histogram.value_at_quantile(0.99)));
                // Judged against the shortest gap the run has had, rate changes included.
                let gap = (snap.retimes.iter().map(|r| r.gap)).fold(p.gap, Duration::min);
                p.meter.load(lag_p99, p.paced.then_some(gap))
            }),
            handshakes: handshakes(&snap.recorder),
            first_error: snap.recorder.first_error.clone(),
            checks_failed: wire_checks(&snap.recorder.checks),
            by_request: self
                .names
                .iter()
                .zip(&snap.recorder.by_name)
                .map(|(name, n)| (name.clone(), by_request(n)))
                .collect(),
        }
    }

    /// The final report of a test this driver will not run: nothing was sent, and `reason`
    /// says why (never a count of fake errors), so the orchestrator ends the test at once.
    pub fn refused(&mut self, requests: u64, reason: &str) -> MetricsReport {
        let snap = Snapshot {
            requests,
            done: true,
            ..Default::default()
        };
        let mut r = self.report(&snap, true);
        r.test_status = Some(RunState::Refused);
        r.reason = Some(reason.to_string());
        r
    }
}

/// Connect and TLS handshake times, when connections were opened.
fn handshakes(r: &engine::Recorder) -> HandshakeFields {
    let encode = |l: &stats::Latency| (l.count() > 0).then(|| stats::encode(&l.histogram));
    HandshakeFields {
        connect_sum_us: r.connect.sum_us,
        connect_histogram: encode(&r.connect),
        tls_sum_us: r.tls.sum_us,
        tls_histogram: encode(&r.tls),
        tls_resumed: r.tls_resumed,
    }
}

/// The engine's error counts as the wire carries them.
fn wire_errors(e: &engine::ErrorCounts) -> ErrorCounts {
    ErrorCounts {
        connect: e.connect,
        timeout: e.timeout,
        http: e.http,
        io: e.io,
        check: e.check,
    }
}

fn wire_checks(c: &engine::CheckCounts) -> ChecksFailed {
    ChecksFailed {
        status: c.status,
        body: c.body,
        json: c.json,
        too_large: c.too_large,
    }
}

/// One mix entry's cumulative figures.
fn by_request(n: &engine::NameStats) -> RequestReport {
    RequestReport {
        requests_sent: n.sent,
        responses_received: n.status.total(),
        errors: wire_errors(&n.errors),
        status: StatusClasses::from_array(n.status.0),
        latency_sum_us: n.latency.sum_us,
        histogram: (n.latency.count() > 0).then(|| stats::encode(&n.latency.histogram)),
        checks_failed: wire_checks(&n.checks),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_sequenced_and_carry_exact_fields() {
        let mut snap = Snapshot {
            requests: 3,
            sent: 3,
            ..Default::default()
        };
        for us in [1_000, 2_000, 6_000] {
            snap.recorder.latency.record(us);
            snap.recorder.status.record(200);
        }
        let mut r = Reporter::new("n", "t", BTreeMap::new());
        let a = r.report(&snap, false);
        let b = r.report(&snap, true);
        assert_eq!((a.seq, b.seq, b.is_final), (1, 2, true));
        assert_eq!(
            (a.test_status, b.test_status),
            (Some(RunState::Running), Some(RunState::Completed))
        );
        assert_ne!(a.report_id, b.report_id);
        assert_eq!(b.latency_sum_us, 9_000);
        assert_eq!(
            (
                b.metrics.min_latency,
                b.metrics.max_latency,
                b.metrics.mean_latency
            ),
            (Some(1.0), Some(6.0), Some(3.0))
        );
        let h = stats::decode(b.histogram.as_deref().unwrap_or("")).expect("decodes");
        assert_eq!(h.len(), 3);
        let f = r.refused(7, "no target URL");
        assert_eq!(
            (f.errors.total(), f.requests_sent, f.requests, f.is_final),
            (0, 0, 7, true),
            "a refusal counts no fake errors"
        );
        assert_eq!(f.test_status, Some(RunState::Refused));
        assert_eq!(f.reason.as_deref(), Some("no target URL"));
    }

    #[test]
    fn a_final_report_short_of_its_count_says_stopped() {
        let snap = Snapshot {
            requests: 10,
            sent: 4,
            done: true,
            ..Default::default()
        };
        let mut defaults = BTreeMap::new();
        defaults.insert("message_count_per_driver".to_string(), Value::from(10));
        let f = Reporter::new("n", "t", defaults.clone()).report(&snap, true);
        assert_eq!(f.test_status, Some(RunState::Stopped));
        assert!(f.reason.as_deref().unwrap_or("").contains("4 of 10"));
        assert_eq!(
            f.defaults, defaults,
            "every report says what the driver filled in"
        );
    }
}
