//! Evaluating thresholds on merged data: each threshold's measured value and state, and the
//! test's verdict. The data is a small struct ([`Data`]) built for the whole test or for one
//! request name, so the caller decides where it comes from (merged drivers' reports on the
//! orchestrator, the engine's own recorder in `floodgate load`).

use super::{Metric, Threshold, Unit};
use crate::stats::Latency;
use serde::{Deserialize, Serialize};

/// What thresholds are evaluated on, for the whole test or one request name.
pub struct Data<'a> {
    /// The merged latency (exact histogram and counters), or why there is none: a percentile
    /// cannot be merged from drivers that sent only summaries.
    pub latency: Result<&'a Latency, String>,
    pub responses: u64,
    /// Failed requests (connect, timeout, non-2xx or failed check, I/O).
    pub errors: u64,
    /// Requests that ended: responses plus those that ended without one.
    pub completed: u64,
    /// From the scheduled start to the last response, the longest of the drivers', in µs.
    pub elapsed_us: u64,
    /// False when some driver reported no counts (another implementation's summaries).
    pub counted: bool,
    /// Responses that failed a check; `None` while no check data is reported.
    pub checks_failed: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Passed,
    Failed,
    /// Nothing to measure (no response yet, no per-request data): never a pass.
    NoData,
}

/// The test's verdict over all its thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Passed,
    Failed,
    /// Some threshold had no data (and none failed): the test did not pass.
    NotEvaluated,
    /// The test still runs (an aborting threshold that failed makes it `failed` at once).
    Pending,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::NotEvaluated => "not_evaluated",
            Verdict::Pending => "pending",
        }
    }
}

/// One threshold's outcome, as every view shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The expression as given.
    pub threshold: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The metric, normalised (`p99`, `p(99.9)`, `error_rate`…).
    pub metric: String,
    pub op: String,
    /// The limit in `unit`.
    pub limit: f64,
    pub unit: Unit,
    /// The measured value in `unit`; absent with no data.
    pub measured: Option<f64>,
    pub state: State,
    /// Why there is no data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default)]
    pub abort_on_fail: bool,
    #[serde(default)]
    pub delay_ms: u64,
    /// This threshold failed live and stopped the test.
    #[serde(default)]
    pub aborted: bool,
}

/// A test's thresholds, evaluated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub verdict: Verdict,
    pub results: Vec<Outcome>,
    /// The threshold that stopped the test, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_by: Option<String>,
}

impl Thresholds {
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }

    pub fn failed(&self) -> Vec<&Outcome> {
        self.results
            .iter()
            .filter(|o| o.state == State::Failed)
            .collect()
    }
}

/// The measured value of `metric` in its internal unit (µs for latency), or why there is none.
pub fn measure(metric: Metric, d: &Data) -> Result<f64, String> {
    let counts = || {
        if d.counted {
            Ok(())
        } else {
            Err("a driver reported no counts".to_string())
        }
    };
    match metric {
        Metric::Percentile(_) | Metric::Mean | Metric::Min | Metric::Max => {
            let l = d.latency.as_ref().map_err(Clone::clone)?;
            let n = l.count();
            if n == 0 {
                return Err("no response yet".into());
            }
            Ok(match metric {
                // The same quantile the views show as p90/p95/p99, so a threshold and its
                // figure never disagree.
                Metric::Percentile(p) => l.histogram.value_at_quantile(quantile(p)) as f64,
                Metric::Mean => l.sum_us as f64 / n as f64,
                Metric::Min => l.min_us as f64,
                _ => l.max_us as f64,
            })
        }
        Metric::ErrorRate => {
            counts()?;
            if d.completed == 0 {
                return Err("no request completed yet".into());
            }
            Ok(d.errors as f64 / d.completed as f64)
        }
        Metric::Rps => {
            counts()?;
            if d.elapsed_us == 0 {
                return Err("no time elapsed yet".into());
            }
            Ok(d.responses as f64 * 1e6 / d.elapsed_us as f64)
        }
        Metric::Errors => {
            counts()?;
            Ok(d.errors as f64)
        }
        Metric::ChecksFailed => d
            .checks_failed
            .map(|n| n as f64)
            .ok_or_else(|| "no check results reported".into()),
    }
}

/// The quantile of a percentile as the nearest double to `p / 100` written in decimal: a plain
/// `99.9 / 100.0` is a hair above 0.999, which moves the rank of 1000 samples' p(99.9) by one.
fn quantile(p: f64) -> f64 {
    format!("{p}e-2").parse().unwrap_or(p / 100.0)
}

/// One threshold on its data (`None`: no data for its scope, e.g. a request name whose
/// per-request figures are not known).
pub fn evaluate(t: &Threshold, data: Option<&Data>) -> Outcome {
    let e = &t.expr;
    let measured = match data {
        Some(d) => measure(e.metric, d),
        None => Err(match &e.request {
            Some(r) => format!("no per-request data for {r:?}"),
            None => "no data".to_string(),
        }),
    };
    let (measured, state, note) = match measured {
        Ok(v) => {
            let state = if e.op.holds(v, e.limit) {
                State::Passed
            } else {
                State::Failed
            };
            let shown = if e.metric.unit() == Unit::Ms {
                v / 1000.0
            } else {
                v
            };
            (Some(shown), state, None)
        }
        Err(why) => (None, State::NoData, Some(why)),
    };
    Outcome {
        threshold: t.text.clone(),
        request: e.request.clone(),
        metric: e.metric.to_string(),
        op: e.op.as_str().to_string(),
        limit: e.shown_limit(),
        unit: e.metric.unit(),
        measured,
        state,
        note,
        abort_on_fail: t.abort_on_fail,
        delay_ms: t.delay.as_millis() as u64,
        aborted: false,
    }
}

/// Every threshold of a test on its data; `lookup` gives the data of a scope (`None`: the whole
/// test). `finished`: the test has ended, so the verdict is taken; `aborted_by`: the threshold
/// that stopped the test, which stays failed whatever the last reports say.
pub fn evaluate_all<'a>(
    thresholds: &[Threshold],
    lookup: impl Fn(Option<&str>) -> Option<Data<'a>>,
    finished: bool,
    aborted_by: Option<&str>,
) -> Thresholds {
    let mut results: Vec<Outcome> = thresholds
        .iter()
        .map(|t| evaluate(t, lookup(t.expr.request.as_deref()).as_ref()))
        .collect();
    if let Some(o) = aborted_by.and_then(|a| results.iter_mut().find(|o| o.threshold == a)) {
        o.aborted = true;
        o.state = State::Failed;
    }
    Thresholds {
        verdict: verdict(&results, finished, aborted_by.is_some()),
        results,
        aborted_by: aborted_by.map(str::to_string),
    }
}

/// Failed if any failed (or one stopped the test); while running, pending; otherwise passed
/// only when every threshold passed.
pub fn verdict(results: &[Outcome], finished: bool, aborted: bool) -> Verdict {
    if aborted {
        return Verdict::Failed;
    }
    if !finished {
        return Verdict::Pending;
    }
    if results.iter().any(|o| o.state == State::Failed) {
        Verdict::Failed
    } else if results.iter().any(|o| o.state == State::NoData) {
        Verdict::NotEvaluated
    } else {
        Verdict::Passed
    }
}

/// The first `abort_on_fail` threshold due (its delay passed, `since_start_ms`) that fails now.
pub fn first_abort<'a>(
    thresholds: &[Threshold],
    lookup: impl Fn(Option<&str>) -> Option<Data<'a>>,
    since_start_ms: u64,
) -> Option<Outcome> {
    thresholds
        .iter()
        .filter(|t| t.abort_on_fail && t.delay.as_millis() as u64 <= since_start_ms)
        .map(|t| evaluate(t, lookup(t.expr.request.as_deref()).as_ref()))
        .find(|o| o.state == State::Failed)
}

/// A value with its unit, for reasons and tables: `312.4 ms`, `0.25%`, `950.0 req/s`, `3`.
pub fn shown(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ms => format!("{v:.3} ms"),
        Unit::Ratio => format!("{}%", trim(v * 100.0)),
        Unit::PerSecond => format!("{v:.1} req/s"),
        Unit::Count => format!("{v}"),
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
