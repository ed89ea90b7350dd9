//! A live rate change of a running test (issue 13, item 3), as pure functions: what a request
//! may ask for (`PATCH /api/v1/tests/{id}`, `floodgate test set-rate`, the dashboard, a
//! LoadTest's rate fields), the change it comes to (each participant's new pace and the one
//! instant they all switch at), and the history the view shows (what each driver reported it
//! applied, on the orchestrator's clock).
//!
//! The pace is given as the test gave it: a Tsunami its `delay_ms`, a capped Avalanche its
//! `throughput_per_driver`, a test given in totals its `total_rate` (shared by the same weights
//! as at the start). A staged or time-bound test, an uncapped Avalanche and a test with a
//! driver of another implementation (which reads no control topic) cannot change pace.

use super::clock::Offset;
use super::spec::{FieldError, TestSpec};
use super::split::Split;
use super::OrchestratorError;
use crate::protocol::limits::{self, Caps};
use crate::protocol::{AppliedRate, TestType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a rate change asks for: exactly one of the three, the test's own way of giving its pace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_per_driver: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_rate: Option<f64>,
}

/// A change as planned and published.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateChange {
    /// 1 for a test's first change.
    pub seq: u64,
    pub requested_at_ms: u64,
    /// The instant every driver switches at, ms since the Unix epoch (orchestrator's clock).
    pub at_ms: u64,
    /// What was asked.
    pub input: RateInput,
    /// Each participant's new pace, requests/s.
    pub rates: BTreeMap<String, f64>,
}

impl RateChange {
    /// The new pace over all participants.
    pub fn total_rate(&self) -> f64 {
        self.rates.values().sum()
    }
}

/// One driver's switch as it reported it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Switched {
    pub driver_id: String,
    /// When its new pace took effect, on the orchestrator's clock (ms since the Unix epoch).
    pub at_ms: f64,
    /// How long after the agreed instant (0 when on time; a command that arrived late).
    pub late_ms: f64,
    /// The first request index on the new pace.
    pub first: u64,
}

/// A change in the test's history: as planned, and as each driver applied it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateChangeView {
    #[serde(flatten)]
    pub change: RateChange,
    pub total_rate: f64,
    /// The drivers that reported the switch so far.
    #[serde(default)]
    pub applied: Vec<Switched>,
    /// Latest switch minus earliest, ms, once two or more drivers reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_skew_ms: Option<f64>,
}

/// The test as a rate change sees it.
pub struct Running<'a> {
    pub spec: &'a TestSpec,
    /// The participants still sending (not those lost whose share was handed over).
    pub drivers: Vec<String>,
    /// Each one's weight in a new total rate, when it no longer follows the split (after a
    /// hand-over: its pace now); empty: the split's.
    pub weights: BTreeMap<String, f64>,
    /// When the test started (its agreed start, ms since the Unix epoch).
    pub started_at_ms: u64,
    /// Changes already made, as planned here.
    pub changes: &'a [RateChange],
    /// The highest change number the drivers reported applying: after a restart or a takeover,
    /// which start with no plan, the next change must still be numbered after it (a driver
    /// ignores a number it has passed).
    pub reported_seq: u64,
    /// Participants that read no control topic (another implementation's drivers).
    pub not_floodgate: Vec<String>,
}

fn conflict(why: impl Into<String>) -> OrchestratorError {
    OrchestratorError::Conflict(why.into())
}

/// Plans a change asked for at `now_ms`; every check names the field it is about.
pub fn plan(
    t: &Running<'_>,
    input: RateInput,
    now_ms: u64,
    caps: &Caps,
) -> Result<RateChange, OrchestratorError> {
    let spec = t.spec;
    if !spec.stages.is_empty() {
        return Err(conflict(
            "a staged test's pace is its stages; it cannot change while it runs",
        ));
    }
    if spec.duration_ms.is_some() {
        return Err(conflict(
            "a time-bound test's request count follows its rate; only a count-bound test can \
             change pace while it runs",
        ));
    }
    let total = spec
        .totals
        .as_ref()
        .and_then(|t| t.rate.is_some().then_some(t));
    let uncapped = spec.test_type == TestType::Avalanche
        && spec.throughput_per_driver.is_none()
        && total.is_none();
    if uncapped {
        return Err(conflict(
            "an uncapped Avalanche has no rate to change (give throughput_per_driver when \
             creating the test)",
        ));
    }
    if !t.not_floodgate.is_empty() {
        return Err(conflict(format!(
            "driver(s) {} are not Floodgate drivers and cannot change pace mid-test",
            t.not_floodgate.join(", ")
        )));
    }
    let last_seq = t.changes.last().map_or(0, |c| c.seq).max(t.reported_seq);
    if last_seq >= limits::MAX_RATE_CHANGES as u64 {
        return Err(conflict(format!(
            "a test takes at most {} rate changes",
            limits::MAX_RATE_CHANGES
        )));
    }
    let given = [
        ("delay_ms", input.delay_ms),
        ("throughput_per_driver", input.throughput_per_driver),
        ("total_rate", input.total_rate),
    ];
    let named: Vec<&str> = given
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(n, _)| *n)
        .collect();
    let wanted = match (total, spec.test_type) {
        (Some(_), _) => "total_rate",
        (None, TestType::Tsunami) => "delay_ms",
        (None, TestType::Avalanche) => "throughput_per_driver",
    };
    let field = match named.as_slice() {
        [one] => *one,
        [] => {
            return Err(FieldError::new(wanted, "give the new pace (one field)").into());
        }
        _ => {
            return Err(FieldError::new(
                named[1],
                "give one of delay_ms, throughput_per_driver, total_rate",
            )
            .into())
        }
    };
    if field != wanted {
        return Err(FieldError::new(
            field,
            format!("this test's pace is given as {wanted}; change it the same way"),
        )
        .into());
    }
    let rates = per_driver(t, &input, field, caps)?;
    Ok(RateChange {
        seq: last_seq + 1,
        requested_at_ms: now_ms,
        at_ms: (now_ms + limits::RATE_CHANGE_LEAD_MS).max(t.started_at_ms),
        input,
        rates,
    })
}

/// Each participant's new pace (requests/s), held to the limits and the deployment's cap.
fn per_driver(
    t: &Running<'_>,
    input: &RateInput,
    field: &str,
    caps: &Caps,
) -> Result<BTreeMap<String, f64>, OrchestratorError> {
    let spec = t.spec;
    let one = |rate: f64| -> Result<f64, FieldError> {
        let rate = limits::check_rate(rate).map_err(|e| FieldError::new(field, e))?;
        if rate > caps.rate {
            return Err(FieldError::new(
                field,
                format!(
                    "comes to {rate:.3} requests/s on a driver; this deployment allows at most {}",
                    caps.rate
                ),
            ));
        }
        Ok(rate)
    };
    let mut rates = BTreeMap::new();
    if let Some(delay) = input.delay_ms {
        if !(delay.is_finite() && delay > 0.0 && delay <= limits::MAX_DELAY_MS) {
            return Err(FieldError::new(
                "delay_ms",
                format!("must be above 0 and at most {}", limits::MAX_DELAY_MS),
            )
            .into());
        }
        // The gap is the larger of the delay and the throughput cap, as at the start.
        let gap = crate::schedule::gap(
            Duration::from_secs_f64(delay / 1000.0),
            spec.throughput_per_driver,
        );
        let rate = one(1.0 / gap.as_secs_f64())?;
        rates.extend(t.drivers.iter().map(|d| (d.clone(), rate)));
    } else if let Some(rate) = input.throughput_per_driver {
        let rate = one(rate)?;
        rates.extend(t.drivers.iter().map(|d| (d.clone(), rate)));
    } else if let Some(total) = input.total_rate {
        limits::check_rate(total).map_err(|e| FieldError::new("total_rate", e))?;
        let split = super::spec_total::shared(spec);
        let weighed: f64 = t.weights.values().sum();
        for d in &t.drivers {
            let rate = match t.weights.get(d) {
                Some(w) if weighed > 0.0 => total * w / weighed,
                _ => share_of(split, d, total, t.drivers.len()),
            };
            rates.insert(d.clone(), one(rate)?);
        }
    }
    Ok(rates)
}

/// `d`'s part of a total rate: by the weights of the test's split (equal without one).
fn share_of(split: Option<&Split>, d: &str, total: f64, n: usize) -> f64 {
    let mean = total / n.max(1) as f64;
    split
        .and_then(|s| s.shares.iter().find(|s| s.driver_id == d))
        .map_or(mean, |s| mean * s.rate_scale)
}

/// The longest gap `d` has had (what judging a quiet driver must allow for).
pub fn slowest_gap(start_gap: Duration, changes: &[RateChange], d: &str) -> Duration {
    changes
        .iter()
        .filter_map(|c| c.rates.get(d))
        .map(|&r| Duration::try_from_secs_f64(1.0 / r).unwrap_or(Duration::MAX))
        .fold(start_gap, Duration::max)
}

/// The history as the view shows it: each planned change with the drivers' reported switches
/// (`reported`: each driver's applied changes and its clock offset). After a restart, which
/// forgets the plan, the changes are rebuilt from what the drivers reported.
pub fn history<'a>(
    planned: &[RateChange],
    reported: impl IntoIterator<Item = (&'a str, &'a [AppliedRate], Option<Offset>)>,
) -> Vec<RateChangeView> {
    let mut views: BTreeMap<u64, RateChangeView> = planned
        .iter()
        .map(|c| (c.seq, view_of(c.clone())))
        .collect();
    for (driver, applied, clock) in reported {
        let shift = clock.map_or(0, Offset::applied_us) as f64 / 1000.0;
        for a in applied {
            let at_ms = a.at_us as f64 / 1000.0 - shift;
            let v = views.entry(a.seq).or_insert_with(|| {
                view_of(RateChange {
                    seq: a.seq,
                    requested_at_ms: 0,
                    at_ms: at_ms as u64,
                    input: RateInput::default(),
                    rates: BTreeMap::new(),
                })
            });
            v.change.rates.entry(driver.to_string()).or_insert(a.rate);
            v.applied.push(Switched {
                driver_id: driver.to_string(),
                at_ms,
                late_ms: (at_ms - v.change.at_ms as f64).max(0.0),
                first: a.first,
            });
        }
    }
    views
        .into_values()
        .map(|mut v| {
            v.total_rate = v.change.total_rate();
            let at = v.applied.iter().map(|s| s.at_ms);
            let (lo, hi) = at.fold((f64::MAX, f64::MIN), |(lo, hi), a| (lo.min(a), hi.max(a)));
            v.switch_skew_ms = (v.applied.len() >= 2).then_some(hi - lo);
            v
        })
        .collect()
}

fn view_of(change: RateChange) -> RateChangeView {
    RateChangeView {
        total_rate: change.total_rate(),
        change,
        applied: Vec::new(),
        switch_skew_ms: None,
    }
}

#[cfg(test)]
#[path = "rate_change_tests.rs"]
mod tests;
