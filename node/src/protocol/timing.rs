//! A time-bound test on the wire (issue 12): `duration_ms` instead of a count, or rate `stages`
//! (`[{"duration_ms": 30000, "rate": 100}]`, per driver, each a linear ramp from the previous
//! stage's rate, the first from `start_rate`) that imply the duration. Read liberally, checked
//! against `limits`, emitted exactly; a config without them is the seed's count-bound test.

use super::lenient::{lenient_opt_f64, lenient_opt_u64};
use super::limits;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// One rate stage: its length and the rate (requests/s per driver) reached at its end.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateStage {
    pub duration_ms: u64,
    pub rate: f64,
}

/// How a time-bound test is bounded.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeBound {
    /// From the start to the end of sending: the stages' sum when there are stages.
    pub duration_ms: u64,
    /// Empty: the test's own pace (Tsunami delay, throughput cap, or none) for `duration_ms`.
    pub stages: Vec<RateStage>,
    /// The rate the first stage ramps from (0 unless named).
    pub start_rate: f64,
}

impl TimeBound {
    /// A plain duration at the test's own pace.
    pub fn duration(duration_ms: u64) -> Self {
        Self {
            duration_ms,
            stages: Vec::new(),
            start_rate: 0.0,
        }
    }

    /// Stages ramping from `start_rate`; the duration is their sum.
    pub fn staged(start_rate: f64, stages: Vec<RateStage>) -> Self {
        Self {
            duration_ms: stages
                .iter()
                .fold(0u64, |a, s| a.saturating_add(s.duration_ms)),
            stages,
            start_rate,
        }
    }

    /// The extension fields, added to a `test_config` being emitted.
    pub(super) fn emit_into(&self, m: &mut Map<String, Value>) {
        m.insert("duration_ms".into(), json!(self.duration_ms));
        if !self.stages.is_empty() {
            m.insert("stages".into(), json!(self.stages));
            m.insert("start_rate".into(), json!(self.start_rate));
        }
    }
}

#[derive(Deserialize)]
struct TimingWire {
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    duration_ms: Option<u64>,
    #[serde(default)]
    stages: Option<Vec<StageWire>>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    start_rate: Option<f64>,
}

#[derive(Deserialize)]
struct StageWire {
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    duration_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    rate: Option<f64>,
}

/// The time bound of a `test_config`, if it names one; the error names the field.
pub(super) fn parse(v: &Value) -> Result<Option<TimeBound>, String> {
    let pick = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let w: TimingWire = super::parse_value(json!({
        "duration_ms": pick("duration_ms"),
        "stages": pick("stages"),
        "start_rate": pick("start_rate"),
    }))
    .map_err(|e| e.to_string())?;
    let stages = w.stages.unwrap_or_default();
    if stages.is_empty() {
        if w.start_rate.is_some() {
            return Err("start_rate: only a test with stages takes a start rate".into());
        }
        return w
            .duration_ms
            .map(|ms| {
                limits::check_duration_ms(ms)
                    .map(TimeBound::duration)
                    .map_err(|e| format!("duration_ms: {e}"))
            })
            .transpose();
    }
    if stages.len() > limits::MAX_STAGES {
        return Err(format!("stages: at most {}", limits::MAX_STAGES));
    }
    let start_rate = limits::check_stage_rate(w.start_rate.unwrap_or(0.0))
        .map_err(|e| format!("start_rate: {e}"))?;
    let mut checked = Vec::with_capacity(stages.len());
    for (i, s) in stages.iter().enumerate() {
        let duration_ms = s
            .duration_ms
            .ok_or_else(|| format!("stages[{i}].duration_ms: is required"))
            .and_then(|ms| {
                limits::check_duration_ms(ms).map_err(|e| format!("stages[{i}].duration_ms: {e}"))
            })?;
        let rate = s
            .rate
            .ok_or_else(|| format!("stages[{i}].rate: is required"))
            .and_then(|r| {
                limits::check_stage_rate(r).map_err(|e| format!("stages[{i}].rate: {e}"))
            })?;
        checked.push(RateStage { duration_ms, rate });
    }
    let t = TimeBound::staged(start_rate, checked);
    limits::check_duration_ms(t.duration_ms).map_err(|e| format!("stages: their sum {e}"))?;
    if w.duration_ms.is_some_and(|d| d != t.duration_ms) {
        return Err(format!(
            "duration_ms: disagrees with the stages, whose sum is {} ms",
            t.duration_ms
        ));
    }
    Ok(Some(t))
}

#[cfg(test)]
#[path = "timing_tests.rs"]
mod tests;
