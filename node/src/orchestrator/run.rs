//! One test's life on the orchestrator: its participants' parts, the aggregate over them (exact
//! where it can be, `null` with a reason where it cannot), and a status that only moves forward
//! (created → running → completed | failed | stopped). A stop ends the test at once; reports
//! still arriving for a short settle window fill in its final numbers.

use super::clock::Offset;
use super::hand_over::HandOver;
pub use super::part::Rejected;
use super::part::{Judgement, Part, Rules};
use super::rate_change::{self, RateChange};
use super::registry::Liveness;
use super::series::{DriverTotals, Point, Series};
use super::spec::TestSpec;
use super::split::{Share, Split};
use super::stage_view::{named_warning, stage_stats};
use super::verdict;
use super::view::{driver_stats, finish_rates, merged};
use super::view::{DriverStats, Stats, TestView};
use crate::model::TestStatus;
use crate::protocol::{MetricsReport, RunState, TestType};
use crate::stats::{Latency, LatencyStats};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A Floodgate participant that is alive but has neither reported nor said it is running this
/// test this long after the start never got the trigger.
const NO_START_GRACE: Duration = Duration::from_secs(15);
/// After a stop, reports are still taken this long (or until every part is final).
pub const SETTLE: Duration = Duration::from_secs(10);
/// A Floodgate participant that reported, then beats without naming the test this long, and
/// sent no final report, was restarted: longer than a final report takes to follow the last
/// heartbeat of a run, even through a broker that is slow to take it.
const NOT_RUNNING_GRACE: Duration = Duration::from_secs(10);

/// The orchestrator's settings for judging drivers without completion signals.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// The shortest quiet period that ends a driver's part when it gives no completion signal.
    pub quiet: Duration,
    /// The least time a driver of another implementation may take to send its first report.
    pub no_report: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            quiet: Duration::from_secs(5),
            no_report: Duration::from_secs(120),
        }
    }
}

/// One test. Its status only moves forward, through the methods below.
#[derive(Debug)]
pub struct TestRun {
    id: String,
    spec: TestSpec,
    drivers: Vec<String>,
    status: TestStatus,
    reason: Option<String>,
    created_at_ms: u64,
    started_at_ms: Option<u64>,
    finished_at_ms: Option<u64>,
    start_instant: Option<Instant>,
    parts: BTreeMap<String, Part>,
    rules: Rules,
    /// Set by a stop: reports are taken until then, and the view is frozen after.
    settle_until: Option<Instant>,
    /// Once finished and settled, the view is computed once and the histograms are freed.
    frozen: Option<TestView>,
    /// Chart points while the test runs; handed to the store when it ends.
    series: Option<Series>,
    /// The `abort_on_fail` threshold that stopped the test, if one did.
    aborted_by: Option<String>,
    /// Live rate changes, in order (issue 13); a paced hand-over is one too.
    rate_changes: Vec<RateChange>,
    /// Lost drivers' shares handed to others, in order (issue 13).
    hand_overs: Vec<HandOver>,
    /// Replacements, with the instant each joined (its part is judged from then).
    joined: BTreeMap<String, Instant>,
}

/// How often a running test gets a chart point.
pub const SAMPLE_EVERY_MS: u64 = 500;

impl TestRun {
    pub fn new(
        id: String,
        spec: TestSpec,
        drivers: Vec<String>,
        created_at_ms: u64,
        policy: Policy,
    ) -> Self {
        let parts = drivers
            .iter()
            .map(|d| (d.clone(), Part::default()))
            .collect();
        let gap = match (spec.test_type, spec.throughput_per_driver) {
            (TestType::Tsunami, _) => Duration::from_micros((spec.delay_ms * 1000.0) as u64),
            (TestType::Avalanche, Some(rate)) if rate > 0.0 => {
                Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::MAX)
            }
            _ => Duration::ZERO,
        };
        let expected = match spec.duration_ms {
            // A time-bound test's last request is due before its end.
            Some(ms) => Duration::from_millis(ms),
            None => gap.saturating_mul(u32::try_from(spec.requests_per_driver).unwrap_or(u32::MAX)),
        };
        let rules = Rules {
            requests: spec.requests_per_driver,
            quiet: policy.quiet,
            gap,
            no_start: NO_START_GRACE,
            no_report: policy.no_report.max(expected.saturating_mul(2)),
            not_running: NOT_RUNNING_GRACE,
        };
        Self {
            id,
            spec,
            drivers,
            status: TestStatus::Created,
            reason: None,
            created_at_ms,
            started_at_ms: None,
            finished_at_ms: None,
            start_instant: None,
            parts,
            rules,
            settle_until: None,
            frozen: None,
            series: None,
            aborted_by: None,
            rate_changes: Vec::new(),
            hand_overs: Vec::new(),
            joined: BTreeMap::new(),
        }
    }

    /// The test's shares, when it was given in totals (the resolved spec carries them).
    fn split(&self) -> Option<&Split> {
        super::spec_total::shared(&self.spec)
    }

    fn share(&self, id: &str) -> Option<&Share> {
        self.split()?.shares.iter().find(|s| s.driver_id == id)
    }

    /// Requests `id` was told to send: its share of a total, else the per-driver count; with
    /// what it took from lost drivers. A lost driver whose share was handed over is held to
    /// what it had reported then.
    fn requests_of(&self, id: &str) -> u64 {
        if let Some(h) = self.handed_over(id) {
            return h.reported_sent;
        }
        // Each share has its own count: of a total count, or of a total rate over a duration.
        let timed = self.spec.duration_ms.is_some();
        let counted = (self.spec.totals.as_ref())
            .is_some_and(|t| t.requests.is_some() || (timed && t.rate.is_some()));
        let own = match self.share(id) {
            Some(s) if counted => s.requests,
            _ if self.is_replacement(id) => 0,
            _ => self.spec.requests_per_driver,
        };
        own + self.taken_by(id)
    }

    /// The gap `id` was paced at from the start: the test's, or its own share's when the rate
    /// is shared.
    fn start_gap_of(&self, id: &str) -> Duration {
        if self.is_replacement(id) {
            // Its pace is the one it joined at.
            let joined_at = self.hand_overs.iter().find_map(|h| h.parts.get(id)?.rate);
            return joined_at.map_or(Duration::ZERO, |r| {
                Duration::try_from_secs_f64(1.0 / r).unwrap_or(Duration::MAX)
            });
        }
        let rate_shared = self.spec.totals.as_ref().is_some_and(|t| t.rate.is_some());
        match self.share(id).filter(|s| rate_shared && s.rate_scale > 0.0) {
            Some(s) => self.rules.gap.div_f64(s.rate_scale),
            None => self.rules.gap,
        }
    }

    /// The rules `id`'s part is judged by: its own count, and its own gap when the rate is
    /// shared; after a rate change, the slowest pace it has had (a driver slowed down is not
    /// quiet, and has longer to send its first report).
    fn rules_of(&self, id: &str) -> Rules {
        let mut rules = self.rules;
        rules.requests = self.requests_of(id);
        rules.gap = rate_change::slowest_gap(self.start_gap_of(id), &self.rate_changes, id);
        let expected = rules
            .gap
            .saturating_mul(u32::try_from(rules.requests).unwrap_or(u32::MAX));
        rules.no_report = rules.no_report.max(expected.saturating_mul(2));
        rules
    }

    /// The test as a rate change sees it; `not_floodgate` names the participants that read no
    /// control topic.
    pub fn rate_context(&self, not_floodgate: Vec<String>) -> rate_change::Running<'_> {
        let drivers = self.active_drivers();
        // After a hand-over the shares no longer follow the split: a new total is shared by
        // each driver's pace now.
        let weights = match self.hand_overs.is_empty() {
            true => BTreeMap::new(),
            false => (drivers.iter())
                .filter_map(|d| Some((d.clone(), self.rate_of(d)?)))
                .collect(),
        };
        rate_change::Running {
            spec: &self.spec,
            drivers,
            weights,
            started_at_ms: self.started_at_ms.unwrap_or(0),
            changes: &self.rate_changes,
            reported_seq: self.next_seq(self.reported_seq()) - 1,
            not_floodgate,
        }
    }

    /// Records a rate change published to the drivers.
    pub fn change_rate(&mut self, change: RateChange) {
        self.rate_changes.push(change);
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The view of a test that has ended and settled (its numbers final).
    pub fn frozen_view(&self) -> Option<&TestView> {
        self.frozen.as_ref()
    }

    pub fn status(&self) -> TestStatus {
        self.status
    }

    pub fn drivers(&self) -> &[String] {
        &self.drivers
    }

    /// A test restored from the store after it finished. It takes no more reports, so its
    /// numbers are final even if it was stored while settling after a stop.
    pub fn finished(mut view: TestView) -> Self {
        view.settled = true;
        let mut run = Self::new(
            view.id.clone(),
            view.spec.clone(),
            view.drivers.clone(),
            view.created_at_ms,
            Policy::default(),
        );
        run.status = view.status;
        run.reason = view.reason.clone();
        run.started_at_ms = view.started_at_ms;
        run.finished_at_ms = view.finished_at_ms;
        run.parts.clear();
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

    /// Ends the test now, on request: `stopped` at once, whatever the drivers do. Reports that
    /// arrive within [`SETTLE`] still fill in the numbers. A test not yet running is cancelled.
    pub fn stop(&mut self, now: Instant, now_ms: u64) {
        if self.status.is_finished() {
            return;
        }
        let was_running = self.status == TestStatus::Running;
        self.status = TestStatus::Stopped;
        self.reason = Some("stopped on request".to_string());
        self.finished_at_ms = Some(now_ms);
        if was_running {
            self.settle_until = Some(now + SETTLE);
        }
    }

    /// Stops a running test whose `abort_on_fail` threshold fails on the data so far (once its
    /// delay from the start has passed), as a stop on request would, with a reason naming the
    /// threshold. True when it did: the drivers must then be told to stop.
    pub fn check_abort(&mut self, now: Instant, now_ms: u64) -> bool {
        let (TestStatus::Running, Some(start)) = (self.status, self.start_instant) else {
            return false;
        };
        if now < start {
            return false;
        }
        let since_ms = now.saturating_duration_since(start).as_millis() as u64;
        let Some(failed) = verdict::abort(&self.spec.thresholds, &self.parts, since_ms) else {
            return false;
        };
        self.status = TestStatus::Stopped;
        self.reason = Some(verdict::abort_reason(&failed, since_ms));
        self.finished_at_ms = Some(now_ms);
        self.settle_until = Some(now + SETTLE);
        self.aborted_by = Some(failed.threshold);
        true
    }

    /// Ends the test as failed (the bus refused its messages).
    pub fn fail(&mut self, reason: &str, now_ms: u64) {
        if self.status.is_finished() {
            return;
        }
        self.status = TestStatus::Failed;
        self.reason = Some(reason.to_string());
        self.finished_at_ms = Some(now_ms);
    }

    /// Whether the test has ended but still takes reports (after a stop).
    pub fn settling(&self) -> bool {
        self.status.is_finished() && self.frozen.is_none() && self.settle_until.is_some()
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
        // A driver that reports no counts has no rate to chart (it would read as zero).
        let charted = self
            .parts
            .iter()
            .filter(|(_, p)| p.report.as_ref().is_none_or(|r| r.counted));
        let handed: Vec<&str> = self.hand_overs.iter().map(|h| h.from.as_str()).collect();
        let totals = charted.map(|(id, part)| {
            let r = part.report.as_ref();
            // Reports without their own clock are placed at their arrival.
            let arrival_us = part
                .received_at
                .map_or(0, |t| t.saturating_duration_since(start).as_micros() as u64);
            DriverTotals {
                id,
                seq: part.order,
                elapsed_us: r.map_or(0, |r| {
                    if r.elapsed_us > 0 {
                        r.elapsed_us
                    } else {
                        arrival_us
                    }
                }),
                sent: r.map_or(0, |r| r.requests_sent),
                responses: r.map_or(0, |r| r.responses_received),
                errors: r.map_or(0, |r| r.errors.total()),
                // A lost driver whose share was handed over holds back no point.
                is_final: r.is_some_and(|r| r.is_final) || handed.contains(&id.as_str()),
                latency: &part.latency,
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
        if self.frozen.is_some() {
            self.series = None;
        }
    }

    /// Applies a report if it is newer than the one held for its driver; returns the order it
    /// is held under (its `seq`, or its arrival number) and the report as held (made cumulative).
    pub fn apply(
        &mut self,
        report: MetricsReport,
        now: Instant,
    ) -> Result<(u64, MetricsReport), Rejected> {
        if self.frozen.is_some() {
            return Err(Rejected::Finished);
        }
        let part = self
            .parts
            .get_mut(&report.node_id)
            .ok_or(Rejected::NotParticipant)?;
        part.apply(report, now)?;
        let held = part.report.clone().ok_or(Rejected::Stale)?;
        Ok((part.order, held))
    }

    /// Keeps a driver's clock offset as estimated now, once it has reported its first send
    /// (see `Part::note_clock`).
    pub fn note_clock(&mut self, node_id: &str, clock: Option<Offset>) {
        if let Some(part) = self.parts.get_mut(node_id) {
            part.note_clock(clock);
        }
    }

    /// Decides whether a running test has ended, or a stopped one has settled. Returns true
    /// when the test is over and its view should be frozen and stored.
    pub fn evaluate(
        &mut self,
        now: Instant,
        now_ms: u64,
        liveness: impl Fn(&str) -> Liveness,
    ) -> bool {
        if self.settling() {
            let all_final = self
                .parts
                .values()
                .all(|p| p.report.as_ref().is_some_and(|r| r.is_final));
            return all_final || self.settle_until.is_some_and(|t| now >= t);
        }
        if self.status != TestStatus::Running {
            return false;
        }
        let mut lost = Vec::new();
        let mut refused = Vec::new();
        let mut pending = false;
        let rules: BTreeMap<String, Rules> = self
            .drivers
            .iter()
            .map(|d| (d.clone(), self.rules_of(d)))
            .collect();
        for (id, part) in self.parts.iter_mut() {
            let rules = rules.get(id).unwrap_or(&self.rules);
            let since_start = (self.joined.get(id).copied().or(self.start_instant))
                .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
            let j = part.judge(&liveness(id), &self.id, since_start, now, rules);
            let handed_over = self.hand_overs.iter().any(|h| &h.from == id);
            match &j {
                Judgement::Pending => pending = true,
                // Its share went to others: their parts decide.
                Judgement::Lost(_) if handed_over => {}
                Judgement::Lost(why) => lost.push(format!("{id} ({why})")),
                Judgement::Refused(why) => refused.push(format!("{id}: {why}")),
                Judgement::Done(_) => {}
            }
            part.judged = Some(j);
        }
        if pending {
            return false;
        }
        // A verdict is true: whatever a driver says, one that counted fewer requests than it
        // was asked to send did not complete its part.
        let short: Vec<String> = self
            .parts
            .iter()
            .filter(|(id, _)| self.handed_over(id).is_none())
            .filter_map(|(id, p)| {
                let r = p.report.as_ref()?;
                let requests = rules.get(id).map_or(self.rules.requests, |r| r.requests);
                let stopped = r.is_final
                    && matches!(r.test_status, Some(RunState::Stopped | RunState::Failed));
                // An unpaced time-bound test has no count (0): its drivers' word decides.
                let under = requests > 0 && r.counted && r.requests_sent < requests;
                let why = match (r.reason.as_deref(), stopped) {
                    (Some(reason), _) => reason.to_string(),
                    (None, true) => "stopped early".to_string(),
                    (None, false) => format!("sent {} of {requests}", r.requests_sent),
                };
                (stopped || under).then(|| format!("{id}: {why}"))
            })
            .collect();
        let (status, reason) = if !refused.is_empty() {
            (
                TestStatus::Failed,
                Some(format!("refused by {}", refused.join("; "))),
            )
        } else if !lost.is_empty() {
            (
                TestStatus::Failed,
                Some(format!(
                    "lost driver(s) {} before their part ended; the results are partial",
                    lost.join(", ")
                )),
            )
        } else if !short.is_empty() {
            (
                TestStatus::Failed,
                Some(format!(
                    "not every request was sent ({}); the results are partial",
                    short.join("; ")
                )),
            )
        } else {
            (TestStatus::Completed, None)
        };
        self.status = status;
        self.reason = reason;
        self.finished_at_ms = Some(now_ms);
        true
    }

    /// Frees the histograms once a finished test's view has been computed.
    pub fn freeze(&mut self, now: Instant) -> TestView {
        let mut view = self.view(now);
        if self.status.is_finished() {
            view.settled = true;
            self.frozen = Some(view.clone());
            self.parts.clear();
        }
        view
    }

    pub fn view(&self, now: Instant) -> TestView {
        if let Some(v) = &self.frozen {
            return v.clone();
        }
        let running = !self.status.is_finished();
        let mut per_driver: Vec<DriverStats> = self
            .parts
            .iter()
            .map(|(id, part)| driver_stats(id, part, self.requests_of(id), running, now))
            .collect();
        for (d, part) in per_driver.iter_mut().zip(self.parts.values()) {
            if self.in_hand_over(&d.driver_id) {
                // The plan wins over the driver's word: a lost driver is held to what it had
                // reported, a receiver to its share plus what it was handed (which its own
                // report says only once it took it).
                d.stats.requests_total = self.requests_of(&d.driver_id);
                finish_rates(&mut d.stats);
            }
            timed_progress(&self.spec, d);
            let reported = part.report.as_ref().map_or(&[][..], |r| &r.stages[..]);
            d.stats.stages = stage_stats(&self.spec, 1, std::iter::once(reported));
        }
        let mut aggregate = Stats {
            requests_total: self.drivers.iter().map(|d| self.requests_of(d)).sum(),
            ..Default::default()
        };
        for d in &per_driver {
            let s = &d.stats;
            aggregate.sent += s.sent;
            aggregate.responses += s.responses;
            aggregate.ok += s.ok;
            aggregate.errors.add(&s.errors);
            aggregate.checks_failed.add(&s.checks_failed);
            aggregate.status.add(&s.status);
            aggregate.elapsed_ms = aggregate.elapsed_ms.max(s.elapsed_ms);
            aggregate.counted &= s.counted;
            aggregate.tls_resumed += s.tls_resumed;
            if aggregate.first_error.is_none() {
                aggregate.first_error.clone_from(&s.first_error);
            }
        }
        aggregate.error_total = aggregate.errors.total();
        aggregate.latency = merged(
            self.parts
                .iter()
                .map(|(id, p)| (id.as_str(), &p.latency, p.figures())),
        );
        aggregate.service_time = merged(
            self.parts
                .iter()
                .map(|(id, p)| (id.as_str(), &p.service, LatencyStats::exact(&p.service))),
        );
        aggregate.schedule_lag = merged(
            self.parts
                .iter()
                .map(|(id, p)| (id.as_str(), &p.lag, LatencyStats::exact(&p.lag))),
        );
        aggregate.lag_note = crate::stats::lag_note(&aggregate.latency, &aggregate.schedule_lag);
        aggregate.connect_time = merged(
            self.parts
                .iter()
                .map(|(id, p)| (id.as_str(), &p.connect, LatencyStats::exact(&p.connect))),
        );
        aggregate.tls_handshake = merged(
            self.parts
                .iter()
                .map(|(id, p)| (id.as_str(), &p.tls, LatencyStats::exact(&p.tls))),
        );
        aggregate.by_request = super::view_mix::shown(super::view_mix::merge(self.parts.values()));
        finish_rates(&mut aggregate);
        aggregate.progress = overall_progress(&per_driver);
        aggregate.stages = stage_stats(
            &self.spec,
            self.drivers.len() as u64,
            self.parts
                .values()
                .filter_map(|p| p.report.as_ref().map(|r| &r.stages[..])),
        );
        let generator_warnings = per_driver
            .iter()
            .filter_map(|d| {
                let w = d.generator.as_ref()?.warning.as_deref()?;
                Some(named_warning(&d.driver_id, w))
            })
            .collect();
        TestView {
            start_skew: super::clock::start_skew(
                per_driver.iter().filter_map(|d| d.start.as_ref()),
            ),
            generator_warnings,
            id: self.id.clone(),
            status: self.status,
            reason: self.reason.clone(),
            spec: self.spec.clone(),
            drivers: self.drivers.clone(),
            created_at_ms: self.created_at_ms,
            started_at_ms: self.started_at_ms,
            finished_at_ms: self.finished_at_ms,
            settled: false,
            aggregate,
            per_driver,
            split: self.split().cloned(),
            hand_overs: self.hand_over_history(),
            rate_changes: rate_change::history(
                &self.rate_changes,
                self.parts.iter().filter_map(|(id, p)| {
                    let r = p.report.as_ref()?;
                    Some((id.as_str(), &r.rate_changes[..], p.clock))
                }),
            ),
            thresholds: verdict::judge(
                &self.spec.thresholds,
                &self.parts,
                self.status.is_finished(),
                self.aborted_by.as_deref(),
            ),
        }
    }

    /// Each reporting participant's latency, connect and TLS handshake histograms (for the
    /// Prometheus exporter); empty once the test has ended and freed its histograms.
    pub fn driver_histograms(&self) -> impl Iterator<Item = DriverHistograms> + '_ {
        self.parts
            .iter()
            .filter(|(_, p)| p.report.is_some())
            .map(|(id, p)| DriverHistograms {
                node: id.clone(),
                latency: p.latency.clone(),
                connect: p.connect.clone(),
                tls: p.tls.clone(),
            })
    }
}

/// One driver's histograms of a running test, as the Prometheus exporter reads them.
#[derive(Clone, Debug)]
pub struct DriverHistograms {
    pub node: String,
    pub latency: Latency,
    pub connect: Latency,
    pub tls: Latency,
}

/// A time-bound driver's progress is its share of the duration (its count may be open), and
/// all of it once its part is done.
fn timed_progress(spec: &TestSpec, d: &mut DriverStats) {
    let Some(ms) = spec.duration_ms.filter(|&ms| ms > 0) else {
        return;
    };
    d.stats.progress = if d.state == crate::model::DriverState::Done {
        1.0
    } else {
        (d.stats.elapsed_ms as f64 / ms as f64).min(1.0)
    };
}

#[path = "run_hand_over.rs"]
mod hand_over;
pub use hand_over::Decided;

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;

/// The whole test's progress: each part's weighted by its share of the requests (by the
/// number of parts when no count is known, as in a time-bound test).
fn overall_progress(per_driver: &[DriverStats]) -> f64 {
    let total: u64 = per_driver.iter().map(|d| d.stats.requests_total).sum();
    if per_driver.is_empty() {
        return 0.0;
    }
    if total == 0 {
        return per_driver.iter().map(|d| d.stats.progress).sum::<f64>() / per_driver.len() as f64;
    }
    per_driver
        .iter()
        .map(|d| d.stats.progress * d.stats.requests_total as f64)
        .sum::<f64>()
        / total as f64
}
