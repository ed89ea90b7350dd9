//! A LoadTest's live rate (issue 13), as pure decisions: which spec field carries the pace,
//! whether a running test is to be asked for a new one, and what the status says after the
//! orchestrator applied or refused it.
//!
//! The operator applies the spec's *changes*: it compares the spec's pace with the one it set
//! last (`status.rate`: the spec's at the start, then each value it changed to), not with the
//! pace the test runs at, so that a change made through the REST API or the CLI stays until
//! the spec's pace changes again. A value the orchestrator refused is remembered
//! (`status.rate.refused`) and not asked for again until the spec's pace changes. Both live in
//! the status, so the decision holds across reconciles and operator restarts.

use crate::crd::TestType;
use crate::crd::{LoadTestSpec, LoadTestStatus, PaceValue, RateChangeStatus, RateStatus};
use crate::plan::TestObservation;
use floodgate::model::TestStatus;
use floodgate::orchestrator::rate_change::{RateChangeView, RateInput};
use floodgate::orchestrator::spec::TestSpec;
use floodgate::protocol::limits;

/// The condition that tells how the last change of the spec's pace went.
pub const RATE_CHANGED: &str = "RateChanged";

/// A pace, the way a LoadTest gives it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// A Tsunami's milliseconds between two requests of one driver.
    DelayMs(f64),
    /// A capped Avalanche's requests/s per driver.
    ThroughputPerDriver(f64),
    /// A test given in totals: requests/s over all drivers.
    TotalRate(f64),
}

impl Pace {
    /// The spec's pace, the one field a live change takes: `totalRate` for a test given in
    /// totals, else `delayMs` for a Tsunami, `throughputPerDriver` for a capped Avalanche.
    /// `None`: no pace to change (an uncapped Avalanche, stages).
    pub fn of(spec: &LoadTestSpec) -> Option<Pace> {
        if let Some(r) = spec.total_rate {
            return Some(Pace::TotalRate(r));
        }
        match spec.test_type {
            TestType::Tsunami => spec.delay_ms.filter(|d| *d > 0.0).map(Pace::DelayMs),
            TestType::Avalanche => spec.throughput_per_driver.map(Pace::ThroughputPerDriver),
        }
    }

    /// The pace an orchestrator's test started with, by the same rule.
    pub fn of_test(spec: &TestSpec) -> Option<Pace> {
        if let Some(r) = spec.totals.as_ref().and_then(|t| t.rate) {
            return Some(Pace::TotalRate(r));
        }
        match spec.test_type {
            floodgate::protocol::TestType::Tsunami => {
                (spec.delay_ms > 0.0).then_some(Pace::DelayMs(spec.delay_ms))
            }
            floodgate::protocol::TestType::Avalanche => {
                spec.throughput_per_driver.map(Pace::ThroughputPerDriver)
            }
        }
    }

    /// The pace a change asked for, when one field was given.
    pub fn of_input(i: &RateInput) -> Option<Pace> {
        match (i.delay_ms, i.throughput_per_driver, i.total_rate) {
            (Some(d), None, None) => Some(Pace::DelayMs(d)),
            (None, Some(t), None) => Some(Pace::ThroughputPerDriver(t)),
            (None, None, Some(r)) => Some(Pace::TotalRate(r)),
            _ => None,
        }
    }

    fn of_value(v: &PaceValue) -> Option<Pace> {
        Pace::of_input(&RateInput {
            delay_ms: v.delay_ms,
            throughput_per_driver: v.throughput_per_driver,
            total_rate: v.total_rate,
        })
    }

    /// The spec field, e.g. `spec.totalRate`.
    pub fn field(self) -> &'static str {
        match self {
            Pace::DelayMs(_) => "spec.delayMs",
            Pace::ThroughputPerDriver(_) => "spec.throughputPerDriver",
            Pace::TotalRate(_) => "spec.totalRate",
        }
    }

    pub fn value(self) -> f64 {
        match self {
            Pace::DelayMs(v) | Pace::ThroughputPerDriver(v) | Pace::TotalRate(v) => v,
        }
    }

    /// What the orchestrator is asked for.
    pub fn input(self) -> RateInput {
        let v = self.value_fields();
        RateInput {
            delay_ms: v.delay_ms,
            throughput_per_driver: v.throughput_per_driver,
            total_rate: v.total_rate,
        }
    }

    pub fn value_fields(self) -> PaceValue {
        let mut v = PaceValue::default();
        match self {
            Pace::DelayMs(d) => v.delay_ms = Some(d),
            Pace::ThroughputPerDriver(t) => v.throughput_per_driver = Some(t),
            Pace::TotalRate(r) => v.total_rate = Some(r),
        }
        v
    }

    /// `spec.totalRate 600`, for messages.
    fn shown(self) -> String {
        format!("{} {}", self.field(), self.value())
    }
}

impl RateStatus {
    /// The pace the operator set last.
    pub fn pace(&self) -> Option<Pace> {
        Pace::of_input(&RateInput {
            delay_ms: self.delay_ms,
            throughput_per_driver: self.throughput_per_driver,
            total_rate: self.total_rate,
        })
    }

    fn set(&mut self, pace: Pace) {
        let v = pace.value_fields();
        (self.delay_ms, self.throughput_per_driver, self.total_rate) =
            (v.delay_ms, v.throughput_per_driver, v.total_rate);
    }

    fn refused_pace(&self) -> Option<Pace> {
        self.refused.as_ref().and_then(Pace::of_value)
    }
}

/// `status.rate` of a test that starts now: the spec's pace (none for a test without one).
pub fn at_start(spec: &LoadTestSpec) -> Option<RateStatus> {
    Pace::of(spec).map(|p| {
        let mut r = RateStatus::default();
        r.set(p);
        r
    })
}

/// The history as the status shows it, bounded as the orchestrator bounds it.
pub fn history(changes: &[RateChangeView]) -> Vec<RateChangeStatus> {
    changes
        .iter()
        .take(limits::MAX_RATE_CHANGES)
        .map(|c| RateChangeStatus {
            seq: c.change.seq,
            at_ms: c.change.at_ms,
            total_rate: c.total_rate,
            drivers: u32::try_from(c.change.rates.len()).unwrap_or(u32::MAX),
            switched: u32::try_from(c.applied.len()).unwrap_or(u32::MAX),
            switch_skew_ms: c.switch_skew_ms,
        })
        .collect()
}

/// What to do about the pace of a LoadTest whose test the orchestrator has (phase Running):
/// `Some(pace)` to ask for it. Records in `st` what needs no call: the pace at the start for
/// a record that lacks it, a change already made (a status write lost after the call), a
/// change the test ended before.
pub fn decide(
    spec: &LoadTestSpec,
    st: &mut LoadTestStatus,
    t: &TestObservation,
    now: &str,
) -> Option<Pace> {
    let changes = u32::try_from(t.rate_changes.len()).unwrap_or(u32::MAX);
    if st.rate.is_none() {
        // Started without the record (an older operator, or one lost): the test's own pace.
        st.rate = t.start_pace.map(|p| {
            let mut r = RateStatus::default();
            r.set(p);
            r
        });
    }
    if let Some(r) = &mut st.rate {
        r.changes = r.changes.max(changes);
    }
    let want = Pace::of(spec)?;
    if t.status.is_finished() {
        ignored(st, want, now);
        return None;
    }
    if t.status != TestStatus::Running {
        // Created: it starts in a moment, at the pace it was created with; asked then.
        return None;
    }
    let rate = st.rate.get_or_insert_with(RateStatus::default);
    if rate.pace() == Some(want) {
        if rate.refused.take().is_some() {
            // Back at the pace in force after a refusal.
            let message = format!("{} is the pace set", want.shown());
            set_condition(st, "True", "Applied", &message, now);
        }
        return None;
    }
    if t.last_asked == Some(want) {
        // Asked for by an earlier reconcile whose status write was lost.
        rate.set(want);
        rate.refused = None;
        let message = format!("{} applied (change {changes})", want.shown());
        set_condition(st, "True", "Applied", &message, now);
        return None;
    }
    if rate.refused_pace() == Some(want) {
        return None;
    }
    Some(want)
}

/// A finished LoadTest (or a test that ended) whose spec's pace differs from the one set:
/// nothing runs any more, so it is not applied, and the condition says so.
pub fn ignored(st: &mut LoadTestStatus, want: Pace, now: &str) {
    let Some(set) = st.rate.as_ref().and_then(RateStatus::pace) else {
        return;
    };
    if set == want {
        return;
    }
    let message = format!(
        "{} is not applied: the test had ended (it ran at {} {})",
        want.shown(),
        set.field(),
        set.value()
    );
    set_condition(st, "False", "TestEnded", &message, now);
}

/// The pace of a LoadTest that has ended: only a condition (see [`ignored`]).
pub fn after_end(spec: &LoadTestSpec, st: &mut LoadTestStatus, now: &str) {
    if let Some(want) = Pace::of(spec) {
        ignored(st, want, now);
    }
}

/// The status after the orchestrator took the change: `status.rate` is the new pace, the
/// history the view's; returns the message (for the condition and the Event).
pub fn applied(
    st: &mut LoadTestStatus,
    pace: Pace,
    changes: Vec<RateChangeStatus>,
    now: &str,
) -> String {
    let last = changes.last().cloned();
    let rate = st.rate.get_or_insert_with(RateStatus::default);
    rate.set(pace);
    rate.refused = None;
    rate.changes = u32::try_from(changes.len()).unwrap_or(u32::MAX);
    if changes.len() >= st.rate_changes.len() {
        st.rate_changes = changes;
    }
    let message = match last {
        Some(c) => format!(
            "{} applied (change {}): {} requests/s over {} drivers from {}",
            pace.shown(),
            c.seq,
            c.total_rate,
            c.drivers,
            instant(c.at_ms)
        ),
        None => format!("{} applied", pace.shown()),
    };
    set_condition(st, "True", "Applied", &message, now);
    message
}

/// The status after the orchestrator refused the change (`conflict`: the test cannot change
/// pace; else the value is invalid): remembered, so it is not asked for again; returns the
/// message (for the condition and the Event).
pub fn refused(
    st: &mut LoadTestStatus,
    pace: Pace,
    why: &str,
    conflict: bool,
    now: &str,
) -> String {
    st.rate.get_or_insert_with(RateStatus::default).refused = Some(pace.value_fields());
    let why: String = why.chars().take(512).collect();
    let message = format!(
        "{} was refused: {why}; the test keeps its pace",
        pace.shown()
    );
    let reason = if conflict {
        "CannotChangePace"
    } else {
        "InvalidRate"
    };
    set_condition(st, "False", reason, &message, now);
    message
}

/// Unix milliseconds as RFC 3339 with milliseconds.
fn instant(ms: u64) -> String {
    let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

fn set_condition(st: &mut LoadTestStatus, status: &str, reason: &str, message: &str, now: &str) {
    crate::plan::set_condition_to(st, RATE_CHANGED, status, reason, message, now);
}

#[cfg(test)]
#[path = "rate_tests.rs"]
mod tests;
