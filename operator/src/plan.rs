//! The reconcile decision, pure: (spec, status, observed world) → what to do and the next
//! status. The controller gathers the observations, calls [`plan`], then acts; everything
//! that decides is here and table-tested without a cluster.
//!
//! The test ID is the LoadTest's UID, so creating the test is idempotent: an operator that
//! restarts between creating a test and recording it finds the test by that ID instead of
//! starting a second one. An operator that lost its store takes a running test over from the
//! record in its status ([`takeover`]).

use crate::configmaps::Resolved;
use crate::crd::MAX_RECORDED_PARTITIONS;
use crate::crd::{Condition, DriverProgress, LoadTestSpec, LoadTestStatus, Phase, Stats};
use crate::crd::{RateChangeStatus, RequestProgress, RunRecord, StartSkewStatus, ThresholdsStatus};
use crate::rate::{self, Pace};
use floodgate::model::TestStatus;
use floodgate::protocol::limits;
use std::collections::BTreeSet;
use std::time::Duration;

/// How long to wait for the drivers to register before giving up.
pub const DRIVER_WAIT: Duration = Duration::from_secs(300);
/// How often a running test's progress is written into the status.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How often to look again while waiting for drivers.
pub const SCALING_EVERY: Duration = Duration::from_secs(1);
/// How often to read a missing ConfigMap again (it is not watched: the operator may only
/// `get` ConfigMaps, and only those a LoadTest names).
pub const INPUTS_EVERY: Duration = Duration::from_secs(5);

/// The orchestrator's view of a test, as much as the status needs.
#[derive(Clone, Debug, PartialEq)]
pub struct TestObservation {
    pub status: TestStatus,
    pub reason: Option<String>,
    pub aggregate: Stats,
    pub drivers: Vec<DriverProgress>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Whether the numbers are final (a stopped test takes its drivers' last reports first).
    pub settled: bool,
    /// Drivers that could not keep up, each named (issue 12): their figures measure the load
    /// generator, not the target.
    pub generator_warnings: Vec<String>,
    /// The thresholds' verdict and values, when the test has thresholds.
    pub thresholds: Option<ThresholdsStatus>,
    /// A mix's figures by request name (at most `limits::MAX_MIX_ENTRIES`).
    pub by_request: Vec<RequestProgress>,
    /// How far apart the drivers started (issue 13).
    pub start_skew: Option<StartSkewStatus>,
    /// Its live rate changes (issue 13).
    pub rate_changes: Vec<RateChangeStatus>,
    /// The pace it started with, the way the LoadTest gives it.
    pub start_pace: Option<Pace>,
    /// The pace its last change asked for, if this orchestrator made it.
    pub last_asked: Option<Pace>,
}

/// What the controller saw before deciding.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Replicas of the LoadTest's driver Deployment, if it exists.
    pub deployment_replicas: Option<i32>,
    /// Alive, idle drivers of this LoadTest's Deployment, in registration order.
    pub registered: Vec<String>,
    /// The test with this LoadTest's ID, if the orchestrator has one.
    pub test: Option<TestObservation>,
    /// How long the LoadTest has been in phase Scaling.
    pub scaling_for: Duration,
    /// Why this operator could not take the running test over at start-up, if it tried.
    pub not_taken_over: Option<String>,
    /// The spec's ConfigMap references (`spec.tls.caFrom`, `spec.mix[i].bodyFrom`), read when
    /// [`reads_inputs`] says so.
    pub inputs: Resolved,
    /// The current time (RFC 3339), for timestamps.
    pub now: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create the driver Deployment or set its replicas.
    ScaleDrivers(i32),
    /// Create the test with these drivers and start it.
    StartTest { driver_ids: Vec<String> },
    /// Change the running test's pace to the spec's (issue 13).
    SetRate(Pace),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub status: LoadTestStatus,
    /// When to reconcile again even if nothing changes; `None` once the LoadTest is done.
    pub requeue: Option<Duration>,
}

/// Decides the next step for one LoadTest.
pub fn plan(spec: &LoadTestSpec, current: Option<&LoadTestStatus>, observed: &Observed) -> Plan {
    let mut st = current.cloned().unwrap_or_default();
    let wanted = spec.drivers;
    st.drivers_wanted = wanted;
    let mut actions = Vec::new();
    let scale = |actions: &mut Vec<Action>, replicas: i32| {
        if observed.deployment_replicas != Some(replicas) {
            actions.push(Action::ScaleDrivers(replicas));
        }
    };
    let requeue = match st.phase {
        // A threshold that cannot be parsed never runs: refused before any driver starts.
        Phase::Pending if check_thresholds(spec).is_err() => {
            let why = check_thresholds(spec).err().unwrap_or_default();
            finish(
                &mut st,
                Phase::Failed,
                &observed.now,
                "InvalidThresholds",
                &why,
            );
            None
        }
        // Both caPem and caFrom (the CRD's rule refuses it; this holds without that rule too).
        Phase::Pending if check_tls(spec).is_err() => {
            let why = check_tls(spec).err().unwrap_or_default();
            finish(&mut st, Phase::Failed, &observed.now, "InvalidTls", &why);
            None
        }
        Phase::Pending if check_checks(spec).is_err() => {
            let why = check_checks(spec).err().unwrap_or_default();
            finish(&mut st, Phase::Failed, &observed.now, "InvalidChecks", &why);
            None
        }
        // A ConfigMap the spec names is missing: no driver is started until it is there.
        Phase::Pending if observed.inputs.pending.is_some() => {
            wait_for_inputs(&mut st, observed);
            Some(INPUTS_EVERY)
        }
        Phase::Pending => {
            scale(&mut actions, wanted as i32);
            advance(
                &mut st,
                Phase::Scaling,
                &observed.now,
                "Scaling",
                &format!("scaling the drivers to {wanted}"),
            );
            Some(SCALING_EVERY)
        }
        Phase::Scaling => {
            scale(&mut actions, wanted as i32);
            st.drivers_registered = observed.registered.len().min(wanted as usize) as u32;
            if observed.test.is_some() {
                // Started before a restart cut the status update short: pick it up.
                advance(
                    &mut st,
                    Phase::Running,
                    &observed.now,
                    "Running",
                    "the test is running",
                );
                Some(PROGRESS_EVERY)
            } else if observed.registered.len() >= wanted as usize
                && observed.inputs.pending.is_some()
            {
                // Read again at the start and gone since Pending: wait for it, drivers ready.
                wait_for_inputs(&mut st, observed);
                Some(INPUTS_EVERY)
            } else if observed.registered.len() >= wanted as usize {
                let driver_ids = observed
                    .registered
                    .iter()
                    .take(wanted as usize)
                    .cloned()
                    .collect();
                actions.push(Action::StartTest { driver_ids });
                st.start_time = Some(observed.now.clone());
                // The pace it starts at (a change made before the start is just the spec).
                st.rate = rate::at_start(spec);
                advance(
                    &mut st,
                    Phase::Running,
                    &observed.now,
                    "Running",
                    "the test is running",
                );
                Some(PROGRESS_EVERY)
            } else if observed.scaling_for >= DRIVER_WAIT {
                actions.retain(|a| !matches!(a, Action::ScaleDrivers(_)));
                scale(&mut actions, 0);
                let msg = format!(
                    "only {} of {wanted} drivers registered within {}s",
                    observed.registered.len(),
                    DRIVER_WAIT.as_secs()
                );
                finish(
                    &mut st,
                    Phase::Failed,
                    &observed.now,
                    "DriversUnavailable",
                    &msg,
                );
                None
            } else {
                Some(SCALING_EVERY)
            }
        }
        Phase::Running => match &observed.test {
            None => {
                scale(&mut actions, 0);
                let msg = match &observed.not_taken_over {
                    Some(why) => format!(
                        "the orchestrator's store does not know this test, and it could not be taken over: {why}"
                    ),
                    None => "the orchestrator has no record of this test (its store was lost); the test cannot be resumed".to_string(),
                };
                finish(&mut st, Phase::Failed, &observed.now, "TestLost", &msg);
                None
            }
            Some(t) => {
                record(&mut st, t);
                generator_condition(&mut st, t, &observed.now);
                if let Some(th) = &t.thresholds {
                    thresholds_condition(&mut st, th, &observed.now);
                }
                if let Some(pace) = rate::decide(spec, &mut st, t, &observed.now) {
                    actions.push(Action::SetRate(pace));
                }
                match t.status {
                    // Ended, but the last reports are still arriving: record them first.
                    s if s.is_finished() && !t.settled => Some(PROGRESS_EVERY),
                    TestStatus::Completed => {
                        scale(&mut actions, 0);
                        finish(
                            &mut st,
                            Phase::Succeeded,
                            &observed.now,
                            "Completed",
                            "every driver's final report is in",
                        );
                        None
                    }
                    TestStatus::Failed | TestStatus::Stopped => {
                        scale(&mut actions, 0);
                        let reason = t
                            .reason
                            .clone()
                            .unwrap_or_else(|| format!("the test was {}", t.status.as_str()));
                        finish(&mut st, Phase::Failed, &observed.now, "TestFailed", &reason);
                        None
                    }
                    _ => Some(PROGRESS_EVERY),
                }
            }
        },
        Phase::Succeeded | Phase::Failed => {
            // Done: the drivers stay scaled down, and nothing ever runs again.
            scale(&mut actions, 0);
            rate::after_end(spec, &mut st, &observed.now);
            None
        }
    };
    st.drivers_summary = Some(format!("{}/{}", st.drivers_registered, wanted));
    // A reconcile that failed earlier has passed now.
    if st
        .conditions
        .iter()
        .any(|c| c.type_ == "Reconciled" && c.status == "False")
    {
        set_condition(
            &mut st,
            "Reconciled",
            true,
            "Reconciled",
            "the last reconcile passed",
            &observed.now,
        );
    }
    // A ConfigMap that was missing is there now (read this time, and found).
    if reads_inputs(spec, current, observed)
        && observed.inputs.pending.is_none()
        && st
            .conditions
            .iter()
            .any(|c| c.type_ == INPUTS && c.status == "False")
    {
        set_condition(
            &mut st,
            INPUTS,
            true,
            "Resolved",
            "every ConfigMap the spec names was read",
            &observed.now,
        );
    }
    Plan {
        actions,
        status: st,
        requeue,
    }
}

/// The condition saying whether the spec's ConfigMap references could be read.
pub const INPUTS: &str = "InputsResolved";

/// Whether this reconcile needs the spec's ConfigMap references read: while Pending (to hold
/// the drivers back until they can be read) and at the start of the test (the value the
/// test gets is read then), never while running or after.
pub fn reads_inputs(
    spec: &LoadTestSpec,
    current: Option<&LoadTestStatus>,
    observed: &Observed,
) -> bool {
    match current.map_or(Phase::Pending, |s| s.phase) {
        Phase::Pending => true,
        Phase::Scaling => {
            observed.test.is_none() && observed.registered.len() >= spec.drivers as usize
        }
        _ => false,
    }
}

/// Stays in the phase, with `InputsResolved=False` and the message naming the field, the
/// ConfigMap and the key; retried.
fn wait_for_inputs(st: &mut LoadTestStatus, observed: &Observed) {
    let Some(p) = &observed.inputs.pending else {
        return;
    };
    let message = format!("waiting for {p}; retried every {}s", INPUTS_EVERY.as_secs());
    set_condition(st, INPUTS, false, p.reason(), &message, &observed.now);
    st.message = Some(message);
}

/// The LoadTest's `tls`, as far as the schema cannot hold it without its CEL rule.
pub fn check_tls(spec: &LoadTestSpec) -> Result<(), String> {
    match &spec.tls {
        Some(t) if t.ca_pem.is_some() && t.ca_from.is_some() => {
            Err("spec.tls: give tls.caPem or tls.caFrom, not both".to_string())
        }
        _ => Ok(()),
    }
}

/// The LoadTest's thresholds, parsed as the orchestrator will parse them (the CRD's schema
/// checks only their shape); the error names the field, e.g. `spec.thresholds[1].threshold`.
pub fn check_thresholds(spec: &LoadTestSpec) -> Result<(), String> {
    use floodgate::thresholds;
    let mut parsed = Vec::new();
    for (i, t) in spec.thresholds.iter().enumerate() {
        let at = |field: &str, e: String| format!("spec.thresholds[{i}].{field}: {e}");
        let expr = thresholds::parse(&t.threshold).map_err(|e| at("threshold", e))?;
        let delay = match &t.delay {
            Some(d) => thresholds::parse_delay(d).map_err(|e| at("delay", e))?,
            None => Duration::ZERO,
        };
        parsed.push(thresholds::Threshold {
            text: t.threshold.clone(),
            expr,
            abort_on_fail: t.abort_on_fail.unwrap_or(false),
            delay,
        });
    }
    // A threshold may be scoped to a mix entry's name (`home: p95 < 100ms`), and only to one.
    let names: Vec<&str> = spec.mix.iter().flatten().map(|m| m.name.as_str()).collect();
    let names = (!names.is_empty()).then_some(&names[..]);
    thresholds::check_scopes(&parsed, names).map_err(|e| format!("spec.{e}"))
}

/// The LoadTest's checks, as far as the schema cannot hold them (a code out of 100-599, a
/// range backwards, `equals` that is not JSON); the error names the field.
pub fn check_checks(spec: &LoadTestSpec) -> Result<(), String> {
    crate::input::check(spec).map_err(|e| e.to_string())
}

/// The longest driver ID a record may name (a pod name).
const MAX_ID_LEN: usize = 253;

/// Whether a LoadTest's test is to be taken over by an operator whose store does not know it:
/// `None` when it is not running; else the record to take it over from, checked, or why it
/// cannot be. The status is input from anyone who may write it: every field is checked, and
/// what is echoed back is bounded.
pub fn takeover(
    uid: &str,
    status: Option<&LoadTestStatus>,
    metrics_topic: &str,
    now_ms: u64,
) -> Option<Result<RunRecord, String>> {
    let st = status.filter(|s| s.phase == Phase::Running)?;
    let Some(r) = &st.run else {
        return Some(Err(
            "the status holds no readable record of the test's start \
             (written by an older operator, or changed by hand)"
                .to_string(),
        ));
    };
    Some(check_record(r, uid, metrics_topic, now_ms).map(|()| r.clone()))
}

fn check_record(r: &RunRecord, uid: &str, metrics_topic: &str, now_ms: u64) -> Result<(), String> {
    if r.test_id != uid {
        return Err(format!(
            "the record is of test {:?}, not of this LoadTest's ({uid})",
            bounded(&r.test_id)
        ));
    }
    let distinct: BTreeSet<&String> = r.drivers.iter().collect();
    let ids_fine = r
        .drivers
        .iter()
        .all(|d| !d.is_empty() && d.len() <= MAX_ID_LEN);
    if !(limits::MIN_DRIVERS..=limits::MAX_DRIVERS).contains(&r.drivers.len())
        || distinct.len() != r.drivers.len()
        || !ids_fine
    {
        return Err(format!(
            "the record names {} driver(s) ({} distinct); a test has {} to {} distinct, non-empty IDs",
            r.drivers.len(),
            distinct.len(),
            limits::MIN_DRIVERS,
            limits::MAX_DRIVERS
        ));
    }
    if r.metrics_topic != metrics_topic {
        return Err(format!(
            "the record is of metrics topic {:?}; this operator reads {metrics_topic:?}",
            bounded(&r.metrics_topic)
        ));
    }
    let partitions: BTreeSet<i32> = r.metrics_from.iter().map(|p| p.partition).collect();
    let positions_fine = r
        .metrics_from
        .iter()
        .all(|p| p.partition >= 0 && p.offset >= 0);
    if r.metrics_from.is_empty()
        || r.metrics_from.len() > MAX_RECORDED_PARTITIONS
        || partitions.len() != r.metrics_from.len()
        || !positions_fine
    {
        return Err(format!(
            "the record's metrics positions are unusable ({} listed; each partition once, at most {MAX_RECORDED_PARTITIONS}, none negative)",
            r.metrics_from.len()
        ));
    }
    if r.start_at_ms == 0 || r.start_at_ms > now_ms.saturating_add(limits::MAX_START_AHEAD_MS) {
        return Err(format!(
            "the record's start ({} ms) is unset or too far ahead",
            r.start_at_ms
        ));
    }
    Ok(())
}

/// At most 64 characters of a value from outside, for a message.
fn bounded(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A reconcile that failed, in the status the user reads (`kubectl describe`), instead of only
/// a log line and a retry: `Reconciled=False` with the error, and the message. A `permanent`
/// error (the orchestrator refused the spec) fails the LoadTest, which then never retries.
pub fn failed_reconcile(
    current: Option<&LoadTestStatus>,
    kind: &str,
    error: &str,
    permanent: bool,
    now: &str,
) -> LoadTestStatus {
    let mut st = current.cloned().unwrap_or_default();
    let message = format!("reconcile failed ({kind}): {error}");
    set_condition(&mut st, "Reconciled", false, kind, &message, now);
    if permanent {
        finish(&mut st, Phase::Failed, now, "Refused", &message);
    } else {
        st.message = Some(message);
    }
    st
}

/// The status of a LoadTest whose drivers are ready while another test runs: the orchestrator
/// runs one test at a time, so this one waits its turn. Not an error: a `Queued` condition and
/// the message say behind which test, and the phase stays where it is.
pub fn queued(current: Option<&LoadTestStatus>, running: &str, now: &str) -> LoadTestStatus {
    let mut st = current.cloned().unwrap_or_default();
    let message = format!(
        "queued: test {running} is running (the orchestrator runs one test at a time); this one starts when it ends"
    );
    set_condition(&mut st, "Queued", true, "OtherTestRunning", &message, now);
    st.message = Some(message);
    st
}

/// Moves the phase forward (never back) and records the transition as a condition.
fn advance(st: &mut LoadTestStatus, to: Phase, now: &str, reason: &str, message: &str) {
    if to <= st.phase || st.phase.is_terminal() {
        return;
    }
    if to >= Phase::Running && st.conditions.iter().any(|c| c.type_ == "Queued") {
        set_condition(st, "Queued", false, "Started", "its turn came", now);
    }
    st.phase = to;
    st.message = Some(message.to_string());
    set_condition(st, "Progressing", !to.is_terminal(), reason, message, now);
}

fn finish(st: &mut LoadTestStatus, to: Phase, now: &str, reason: &str, message: &str) {
    advance(st, to, now, reason, message);
    st.completion_time.get_or_insert_with(|| now.to_string());
    set_condition(
        st,
        "Succeeded",
        to == Phase::Succeeded,
        reason,
        message,
        now,
    );
}

fn set_condition(
    st: &mut LoadTestStatus,
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    now: &str,
) {
    let status = if ok { "True" } else { "False" };
    set_condition_to(st, type_, status, reason, message, now);
}

/// [`set_condition`] with any status: "True", "False" or "Unknown".
pub(crate) fn set_condition_to(
    st: &mut LoadTestStatus,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    let status = status.to_string();
    match st.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now.to_string();
            }
            c.status = status;
            c.reason = reason.to_string();
            c.message = message.to_string();
        }
        None => st.conditions.push(Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.to_string(),
            last_transition_time: now.to_string(),
        }),
    }
}

/// The `ThresholdsPassed` condition from the thresholds' verdict: True when every threshold
/// passed; False when one failed (naming each with its measured value); Unknown while the test
/// runs, or when a threshold had no data (never a pass).
fn thresholds_condition(st: &mut LoadTestStatus, t: &ThresholdsStatus, now: &str) {
    let failed: Vec<String> = t
        .results
        .iter()
        .filter(|r| r.state == "failed")
        .map(|r| match r.measured {
            Some(m) => format!("{} (measured {m} {})", r.threshold, r.unit),
            None => r.threshold.clone(),
        })
        .collect();
    let no_data: Vec<&str> = t
        .results
        .iter()
        .filter(|r| r.state == "no_data")
        .map(|r| r.threshold.as_str())
        .collect();
    let (status, reason, message) = match t.verdict.as_str() {
        "passed" => (
            "True",
            "ThresholdsPassed",
            format!("all {} thresholds passed", t.results.len()),
        ),
        "failed" => (
            "False",
            "ThresholdsFailed",
            format!("failed: {}", failed.join("; ")),
        ),
        "not_evaluated" => (
            "Unknown",
            "NoData",
            format!("no data for: {}", no_data.join("; ")),
        ),
        _ => (
            "Unknown",
            "Pending",
            "evaluated when the test ends".to_string(),
        ),
    };
    let message = match &t.aborted_by {
        Some(a) => format!("{message}; {a:?} stopped the test (abortOnFail)"),
        None => message,
    };
    // Bounded: up to 32 thresholds of 256 characters each would make a long condition.
    let message: String = message.chars().take(1024).collect();
    set_condition_to(st, "ThresholdsPassed", status, reason, &message, now);
}

fn record(st: &mut LoadTestStatus, t: &TestObservation) {
    st.thresholds = t.thresholds.clone();
    st.aggregate = Some(t.aggregate.clone());
    st.by_request = t.by_request.clone();
    st.start_skew = t.start_skew.clone();
    // Only grows (a successor rebuilds the history from the drivers' reports as they come).
    if t.rate_changes.len() >= st.rate_changes.len() {
        st.rate_changes = t.rate_changes.clone();
    }
    st.drivers = t.drivers.clone();
    st.drivers_registered = st.drivers_registered.max(t.drivers.len() as u32);
    if let Some(s) = &t.started_at {
        st.start_time = Some(s.clone());
    }
}

/// `GeneratorSaturated=True` once a driver says it could not keep up, with the drivers'
/// warnings as its message: the results measure the load generator, not the target. Absent
/// while every driver keeps up (the figures are cumulative, so it does not go back).
fn generator_condition(st: &mut LoadTestStatus, t: &TestObservation, now: &str) {
    if t.generator_warnings.is_empty() {
        return;
    }
    let message: String = t.generator_warnings.join("; ").chars().take(1024).collect();
    set_condition(
        st,
        "GeneratorSaturated",
        true,
        "DriverCouldNotKeepUp",
        &message,
        now,
    );
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "plan_takeover_tests.rs"]
mod takeover_tests;

#[cfg(test)]
#[path = "plan_inputs_tests.rs"]
mod inputs_tests;
