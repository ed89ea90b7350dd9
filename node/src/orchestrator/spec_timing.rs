//! The time-bound part of a test spec (issue 12): `duration` (or `duration_ms`), `stages` and
//! `start_rate`, validated field by field; and what the orchestrator expects of such a test:
//! its pace and its count per driver, computed by the same pure schedule the drivers run.

use super::spec::{FieldError, StageInput, TestSpec};
use crate::protocol::limits::{self, Caps};
use crate::protocol::{RateStage, TestType, TimeBound};
use crate::schedule::Pace;
use std::time::Duration;

/// A duration given as `name` (humantime, `"30s"`) or `name_ms`; at most one of them.
fn duration_of(
    field: &str,
    text: Option<&str>,
    ms: Option<u64>,
) -> Result<Option<u64>, FieldError> {
    let ms = match (text, ms) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new(
                field,
                format!("give {field} or {field}_ms, not both"),
            ))
        }
        (Some(t), None) => {
            let d = humantime::parse_duration(t.trim()).map_err(|e| {
                FieldError::new(
                    field,
                    format!("{t:?} is not a duration such as \"30s\": {e}"),
                )
            })?;
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
        }
        (None, Some(ms)) => ms,
        (None, None) => return Ok(None),
    };
    let named = if text.is_some() {
        field.to_string()
    } else {
        format!("{field}_ms")
    };
    limits::check_duration_ms(ms)
        .map(Some)
        .map_err(|e| FieldError::new(&named, e))
}

/// A stage's or the start's rate: 0 (a pause) or within the limits and this deployment's cap.
fn rate_of(field: &str, rate: f64, caps: &Caps) -> Result<f64, FieldError> {
    let r = limits::check_stage_rate(rate).map_err(|e| FieldError::new(field, e))?;
    if r > caps.rate {
        return Err(FieldError::new(
            field,
            format!(
                "must be at most {} requests/s (this deployment's cap)",
                caps.rate
            ),
        ));
    }
    Ok(r)
}

/// Whether the input names stages.
pub(super) fn staged(stages: &Option<Vec<StageInput>>) -> bool {
    stages.as_ref().is_some_and(|s| !s.is_empty())
}

/// The time bound an input asks for, if any.
pub(super) fn timing(
    duration: Option<&str>,
    duration_ms: Option<u64>,
    stages: Option<&[StageInput]>,
    start_rate: Option<f64>,
    caps: &Caps,
) -> Result<Option<TimeBound>, FieldError> {
    let duration = duration_of("duration", duration, duration_ms)?;
    let Some(stages) = stages else {
        if start_rate.is_some() {
            return Err(FieldError::new(
                "start_rate",
                "only a test with stages ramps from a start rate",
            ));
        }
        return Ok(duration.map(TimeBound::duration));
    };
    if stages.is_empty() {
        return Err(FieldError::new("stages", "needs at least one stage"));
    }
    if stages.len() > limits::MAX_STAGES {
        return Err(FieldError::new(
            "stages",
            format!("at most {} stages", limits::MAX_STAGES),
        ));
    }
    if duration.is_some() {
        let field = if duration_ms.is_some() {
            "duration_ms"
        } else {
            "duration"
        };
        return Err(FieldError::new(
            field,
            "stages imply the duration (their sum); leave it out",
        ));
    }
    let start_rate = rate_of("start_rate", start_rate.unwrap_or(0.0), caps)?;
    let mut checked = Vec::with_capacity(stages.len());
    for (i, s) in stages.iter().enumerate() {
        let field = format!("stages[{i}].duration");
        let duration_ms = duration_of(&field, s.duration.as_deref(), s.duration_ms)?
            .ok_or_else(|| FieldError::new(&field, "is required, e.g. \"30s\""))?;
        let field = format!("stages[{i}].rate");
        let rate = s.rate.ok_or_else(|| {
            FieldError::new(
                &field,
                "is required: requests/s per driver at the stage's end",
            )
        })?;
        checked.push(RateStage {
            duration_ms,
            rate: rate_of(&field, rate, caps)?,
        });
    }
    let t = TimeBound::staged(start_rate, checked);
    limits::check_duration_ms(t.duration_ms)
        .map_err(|e| FieldError::new("stages", format!("their durations' sum {e}")))?;
    Ok(Some(t))
}

/// A time-bound test takes no count, and a staged one no other pace.
pub(super) fn check_exclusive(
    t: &TimeBound,
    requests: Option<u64>,
    throughput: Option<f64>,
    delay_ms: f64,
) -> Result<(), FieldError> {
    let bound = if t.stages.is_empty() {
        "duration"
    } else {
        "stages"
    };
    if requests.is_some() {
        return Err(FieldError::new(
            "requests_per_driver",
            format!("a test ends after a count or after a time, not both: leave out requests_per_driver or {bound}"),
        ));
    }
    if !t.stages.is_empty() && throughput.is_some() {
        return Err(FieldError::new(
            "throughput_per_driver",
            "a staged test's rate is its stages'; leave it out",
        ));
    }
    if !t.stages.is_empty() && delay_ms > 0.0 {
        return Err(FieldError::new(
            "delay_ms",
            "a staged test's pace is its stages'; leave it out",
        ));
    }
    Ok(())
}

/// Puts a checked time bound in a spec, with the count its pace has due in it.
pub(super) fn apply(spec: &mut TestSpec, t: TimeBound, caps: &Caps) -> Result<(), FieldError> {
    let field = if t.stages.is_empty() {
        "duration"
    } else {
        "stages"
    };
    spec.duration_ms = Some(t.duration_ms);
    spec.start_rate = (!t.stages.is_empty()).then_some(t.start_rate);
    spec.stages = t.stages;
    spec.requests_per_driver = match spec.pace().count_within(spec.duration()) {
        None => 0,
        Some(0) => {
            return Err(FieldError::new(
                field,
                "no request is due in it (every rate is 0)",
            ))
        }
        Some(n) if n > caps.requests => {
            return Err(FieldError::new(
                field,
                format!(
                    "at this pace it sends {n} requests per driver; at most {} are allowed",
                    caps.requests
                ),
            ))
        }
        Some(n) => n,
    };
    Ok(())
}

impl TestSpec {
    /// Its time bound on the wire; `None` for a count-bound test.
    pub fn time_bound(&self) -> Option<TimeBound> {
        let ms = self.duration_ms?;
        Some(if self.stages.is_empty() {
            TimeBound::duration(ms)
        } else {
            TimeBound::staged(self.start_rate.unwrap_or(0.0), self.stages.clone())
        })
    }

    /// The duration of a time-bound test (zero for a count-bound one).
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms.unwrap_or(0))
    }

    /// Its pace, as every driver runs it.
    pub fn pace(&self) -> Pace {
        let delay = match self.test_type {
            TestType::Tsunami => Duration::from_micros((self.delay_ms * 1000.0).round() as u64),
            TestType::Avalanche => Duration::ZERO,
        };
        Pace::of(
            delay,
            self.throughput_per_driver,
            self.start_rate.unwrap_or(0.0),
            self.stages.iter().map(|s| (s.duration_ms, s.rate)),
        )
    }
}

#[cfg(test)]
#[path = "spec_timing_tests.rs"]
mod tests;
