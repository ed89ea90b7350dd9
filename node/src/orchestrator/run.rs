//! One test's life on the orchestrator: its participants, their latest cumulative reports, the
//! exact aggregate over them, and a status that only moves forward
//! (created → running → completed | failed | stopped).

use super::registry::Liveness;
use super::series::{DriverTotals, Point, Series};
use super::spec::TestSpec;
use crate::protocol::{ErrorCounts, MetricsReport, StatusClasses};
use crate::stats::{self, Latency, Summary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A participant that is alive but has neither reported nor said it is running this test this
/// long after the start never got the trigger: treated as lost rather than waited for forever.
const NO_START_GRACE: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    Created,
    Running,
    Completed,
    Failed,
    Stopped,
}

impl TestStatus {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TestStatus::Completed | TestStatus::Failed | TestStatus::Stopped
        )
    }
}

/// Counters and latency over one driver or all of them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub requests_total: u64,
    pub sent: u64,
    pub responses: u64,
    pub ok: u64,
    pub errors: ErrorCounts,
    pub error_total: u64,
    pub status: StatusClasses,
    /// Responses per second over the elapsed time.
    pub achieved_rps: f64,
    /// Requests ended (a response or an error) over requests to send, 0 to 1.
    pub progress: f64,
    pub elapsed_ms: u64,
    /// From the intended send instant (coordinated omission); in ms.
    pub latency: Summary,
    /// From the actual write (raw service time); in ms.
    pub service_time: Summary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverState {
    Waiting,
    Running,
    Done,
    Lost,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriverStats {
    pub driver_id: String,
    pub state: DriverState,
    pub report_seq: u64,
    /// How old the newest report is, while the test runs.
    pub report_age_ms: Option<u64>,
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
    pub aggregate: Stats,
    pub per_driver: Vec<DriverStats>,
}

#[derive(Clone, Debug, Default)]
struct Slot {
    report: Option<MetricsReport>,
    latency: Latency,
    service: Latency,
    received_at: Option<Instant>,
    lost: bool,
}

#[derive(Debug)]
pub struct TestRun {
    pub id: String,
    pub spec: TestSpec,
    pub drivers: Vec<String>,
    pub status: TestStatus,
    pub reason: Option<String>,
    pub created_at_ms: u64,
    pub started_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
    pub stop_requested: bool,
    start_instant: Option<Instant>,
    slots: BTreeMap<String, Slot>,
    /// Once finished, the view is computed once and the histograms are freed.
    frozen: Option<TestView>,
    /// Chart points while the test runs; handed to the store when it ends.
    series: Option<Series>,
}

/// How often a running test gets a chart point.
pub const SAMPLE_EVERY_MS: u64 = 500;

/// Why a report was not applied.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    /// From a node that is not a participant.
    NotParticipant,
    /// Not newer than what is already held (a duplicate or a reordered report).
    Stale,
    /// After the test finished.
    Finished,
    /// A histogram that does not decode.
    Malformed(String),
}

impl TestRun {
    pub fn new(id: String, spec: TestSpec, drivers: Vec<String>, created_at_ms: u64) -> Self {
        let slots = drivers
            .iter()
            .map(|d| (d.clone(), Slot::default()))
            .collect();
        Self {
            id,
            spec,
            drivers,
            status: TestStatus::Created,
            reason: None,
            created_at_ms,
            started_at_ms: None,
            finished_at_ms: None,
            stop_requested: false,
            start_instant: None,
            slots,
            frozen: None,
            series: None,
        }
    }

    /// A test restored from the store after it finished.
    pub fn finished(view: TestView) -> Self {
        let mut run = Self::new(
            view.id.clone(),
            view.spec.clone(),
            view.drivers.clone(),
            view.created_at_ms,
        );
        run.status = view.status;
        run.reason = view.reason.clone();
        run.started_at_ms = view.started_at_ms;
        run.finished_at_ms = view.finished_at_ms;
        run.slots.clear();
        run.frozen = Some(view);
        run
    }

    pub fn start(&mut self, start_at_ms: u64, start_instant: Instant) {
        if self.status == TestStatus::Created {
            self.status = TestStatus::Running;
            self.started_at_ms = Some(start_at_ms);
            self.start_instant = Some(start_instant);
            self.series = Some(Series::new(SAMPLE_EVERY_MS));
        }
    }

    /// Adds a chart point if one is due (or `force`d, as at the end); true when one was added.
    pub fn sample(&mut self, now: Instant, force: bool) -> bool {
        let (Some(series), Some(start)) = (self.series.as_mut(), self.start_instant) else {
            return false;
        };
        if now < start {
            return false;
        }
        let t_ms = now.saturating_duration_since(start).as_millis() as u64;
        let totals = self.slots.iter().map(|(id, slot)| {
            let r = slot.report.as_ref();
            DriverTotals {
                id,
                seq: r.map_or(0, |r| r.seq),
                elapsed_us: r.map_or(0, |r| r.elapsed_us),
                sent: r.map_or(0, |r| r.requests_sent),
                responses: r.map_or(0, |r| r.responses_received),
                errors: r.map_or(0, |r| r.errors.total()),
                is_final: r.is_some_and(|r| r.is_final),
                latency: &slot.latency,
            }
        });
        series.sample(t_ms, totals, force)
    }

    /// The chart points so far, while the test's series is in memory.
    pub fn series(&self) -> Option<(&[Point], u64)> {
        self.series.as_ref().map(|s| (s.points(), s.generation))
    }

    /// A copy of the series' points (for the store).
    pub fn series_points(&self) -> Option<Vec<Point>> {
        self.series.as_ref().map(|s| s.points().to_vec())
    }

    /// Frees a finished test's series once the store holds it.
    pub fn drop_series(&mut self) {
        if self.status.is_finished() {
            self.series = None;
        }
    }

    /// Applies a cumulative report if it is newer than the one held for its driver.
    pub fn apply(&mut self, report: MetricsReport, now: Instant) -> Result<(), Rejected> {
        if self.status.is_finished() {
            return Err(Rejected::Finished);
        }
        let slot = self
            .slots
            .get_mut(&report.node_id)
            .ok_or(Rejected::NotParticipant)?;
        let held = slot.report.as_ref().map(|r| (r.is_final, r.seq));
        // A final report is never superseded; otherwise the highest sequence number wins.
        if held.is_some_and(|(fin, seq)| fin || seq >= report.seq) {
            return Err(Rejected::Stale);
        }
        let decode = |h: &Option<String>| {
            stats::decode(h.as_deref().unwrap_or("")).map_err(Rejected::Malformed)
        };
        let lat_h = decode(&report.histogram)?;
        let svc_h = decode(&report.service_histogram)?;
        slot.latency = Latency::from_parts(
            lat_h,
            report.latency_sum_us,
            report.metrics.min_latency,
            report.metrics.max_latency,
        );
        slot.service = Latency::from_parts(svc_h, report.service_sum_us, 0.0, 0.0);
        slot.received_at = Some(now);
        slot.lost = false;
        slot.report = Some(report);
        Ok(())
    }

    /// Decides whether a running test has ended. Returns true when the status changed.
    pub fn evaluate(
        &mut self,
        now: Instant,
        now_ms: u64,
        liveness: impl Fn(&str) -> Liveness,
    ) -> bool {
        if self.status != TestStatus::Running {
            return false;
        }
        let started_long_ago = self
            .start_instant
            .is_some_and(|s| now.saturating_duration_since(s) > NO_START_GRACE);
        let mut lost = Vec::new();
        let mut pending = false;
        for (id, slot) in self.slots.iter_mut() {
            if slot.report.as_ref().is_some_and(|r| r.is_final) {
                continue;
            }
            let l = liveness(id);
            let never_started = slot.report.is_none()
                && l.test_id.as_deref() != Some(self.id.as_str())
                && started_long_ago;
            if !l.alive || never_started {
                slot.lost = true;
                lost.push(id.clone());
            } else {
                slot.lost = false;
                pending = true;
            }
        }
        if pending {
            return false;
        }
        if lost.is_empty() {
            self.status = if self.stop_requested {
                TestStatus::Stopped
            } else {
                TestStatus::Completed
            };
        } else {
            self.status = TestStatus::Failed;
            self.reason = Some(format!(
                "lost driver(s) {} before their final report; the results are partial",
                lost.join(", ")
            ));
        }
        self.finished_at_ms = Some(now_ms);
        true
    }

    /// Frees the histograms once a finished test's view has been computed.
    pub fn freeze(&mut self, now: Instant) -> TestView {
        let view = self.view(now);
        if self.status.is_finished() {
            self.frozen = Some(view.clone());
            self.slots.clear();
        }
        view
    }

    pub fn view(&self, now: Instant) -> TestView {
        if let Some(v) = &self.frozen {
            return v.clone();
        }
        let mut all = Latency::default();
        let mut all_service = Latency::default();
        let mut aggregate = Stats {
            requests_total: self.spec.requests_per_driver * self.drivers.len() as u64,
            ..Default::default()
        };
        let mut per_driver = Vec::with_capacity(self.slots.len());
        for (id, slot) in &self.slots {
            let mut s = Stats {
                requests_total: self.spec.requests_per_driver,
                ..Default::default()
            };
            if let Some(r) = &slot.report {
                fill_counts(&mut s, r);
                all.merge(&slot.latency);
                all_service.merge(&slot.service);
                aggregate.sent += s.sent;
                aggregate.responses += s.responses;
                aggregate.ok += s.ok;
                aggregate.errors.add(&s.errors);
                aggregate.status.add(&s.status);
                aggregate.elapsed_ms = aggregate.elapsed_ms.max(s.elapsed_ms);
            }
            s.latency = slot.latency.summary();
            s.service_time = slot.service.summary();
            let state = match &slot.report {
                _ if slot.lost => DriverState::Lost,
                Some(r) if r.is_final => DriverState::Done,
                Some(_) => DriverState::Running,
                None => DriverState::Waiting,
            };
            let running = !self.status.is_finished();
            per_driver.push(DriverStats {
                driver_id: id.clone(),
                state,
                report_seq: slot.report.as_ref().map_or(0, |r| r.seq),
                report_age_ms: slot
                    .received_at
                    .filter(|_| running)
                    .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                stats: s,
            });
        }
        aggregate.error_total = aggregate.errors.total();
        aggregate.latency = all.summary();
        aggregate.service_time = all_service.summary();
        finish_rates(&mut aggregate);
        TestView {
            id: self.id.clone(),
            status: self.status,
            reason: self.reason.clone(),
            spec: self.spec.clone(),
            drivers: self.drivers.clone(),
            created_at_ms: self.created_at_ms,
            started_at_ms: self.started_at_ms,
            finished_at_ms: self.finished_at_ms,
            aggregate,
            per_driver,
        }
    }

    /// Each reporting participant's latency histogram (for the Prometheus exporter, issue 3);
    /// empty once the test has ended and freed its histograms.
    pub fn driver_latencies(&self) -> impl Iterator<Item = (&str, &Latency)> {
        self.slots
            .iter()
            .filter(|(_, s)| s.report.is_some())
            .map(|(id, s)| (id.as_str(), &s.latency))
    }

    /// The latest report held for each participant (for the store).
    pub fn latest_reports(&self) -> impl Iterator<Item = &MetricsReport> {
        self.slots.values().filter_map(|s| s.report.as_ref())
    }
}

fn fill_counts(s: &mut Stats, r: &MetricsReport) {
    s.sent = r.requests_sent;
    s.responses = r.responses_received;
    s.ok = r.status.c2;
    s.errors = r.errors;
    s.error_total = r.errors.total();
    s.status = r.status;
    s.elapsed_ms = r.elapsed_us / 1000;
    if r.requests_total > 0 {
        s.requests_total = r.requests_total;
    }
    finish_rates(s);
}

fn finish_rates(s: &mut Stats) {
    if s.elapsed_ms > 0 {
        s.achieved_rps = s.responses as f64 * 1000.0 / s.elapsed_ms as f64;
    }
    let ended = s.responses + s.errors.connect + s.errors.timeout + s.errors.io;
    if s.requests_total > 0 {
        s.progress = (ended as f64 / s.requests_total as f64).min(1.0);
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
