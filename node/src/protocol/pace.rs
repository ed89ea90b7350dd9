//! What a driver's `metrics` report says of its pace (issue 12): progress per rate stage, and
//! its own load (`generator`), the figures of the saturation warning. Both are cumulative like
//! the rest of the report, read leniently (a malformed one is dropped, not the report).

use super::limits;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One stage's progress on one driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageProgress {
    /// Requests sent while this stage ran (by send instant; a request sent after the last
    /// stage ended counts in the last).
    #[serde(default)]
    pub sent: u64,
    /// Requests the schedule has due in this stage (its target, whole).
    #[serde(default)]
    pub planned: u64,
}

/// The driver's own load over the run so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorLoad {
    /// Process CPU time over wall time since the start, as a share of the cores it may use
    /// (0 to 1).
    #[serde(default)]
    pub cpu: f64,
    /// Cores the driver may use (its CPU quota or the machine's).
    #[serde(default)]
    pub cores: u32,
    /// p99 of the schedule lag, in µs (paced tests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_p99_us: Option<u64>,
    /// The gap between two due requests at the pace's mean rate so far, in µs (paced only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_us: Option<u64>,
    /// Set when the driver could not keep up: what it measured and why its figures are the
    /// generator's, not the target's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// A report's `stages`, if it is a list of at most [`limits::MAX_STAGES`] stages.
pub(super) fn stages(v: Option<&Value>) -> Vec<StageProgress> {
    // Objects only: serde would read `[1, 2]` as a struct's fields in order.
    v.and_then(Value::as_array)
        .filter(|l| l.len() <= limits::MAX_STAGES && l.iter().all(Value::is_object))
        .and_then(|l| serde_json::from_value::<Vec<StageProgress>>(Value::Array(l.clone())).ok())
        .unwrap_or_default()
}

/// A report's `generator`, if it is one; its warning bounded like a reason.
pub(super) fn generator(v: Option<&Value>) -> Option<GeneratorLoad> {
    let mut g: GeneratorLoad = serde_json::from_value(v.filter(|v| v.is_object())?.clone()).ok()?;
    if !g.cpu.is_finite() {
        g.cpu = 0.0;
    }
    if g.warning
        .as_ref()
        .is_some_and(|w| w.len() > limits::MAX_REASON_LEN)
    {
        g.warning = None;
    }
    Some(g)
}
