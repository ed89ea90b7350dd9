//! Thresholds: pass/fail expressions on a test's merged data (`p99 < 250ms`, `p(99.9) < 1s`,
//! `error_rate < 0.1%`, `rps >= 950`, `home: p95 < 100ms`), parsed here and evaluated by
//! [`eval`]. Pure: no clock, no I/O; the orchestrator evaluates them centrally on merged data
//! and `floodgate load` on its own. The syntax is documented in docs/decisions.md ("Issue 12:
//! thresholds and the verdict").
//!
//! Grammar: `[<request name> ":"] <metric> <op> <number>[<unit>]`, with
//! - metric: `p<N>` or `p(<N>)` (a percentile, 0 < N <= 100), `median`, `mean` (`avg`), `min`,
//!   `max` (latency, unit `us`/`µs`, `ms` or `s`, required); `error_rate` (a ratio 0..1, or a
//!   percentage with `%`); `rps` (responses per second, optional `/s`); `errors` and
//!   `checks_failed` (counts);
//! - op: `<`, `<=`, `>`, `>=`, `==`, `!=`.

pub mod eval;
mod input;

pub use input::{check_scopes, from_json, parse_delay, ThresholdError};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// At most this many thresholds per test (each is evaluated on every tick of a running test).
pub const MAX_THRESHOLDS: usize = 32;
/// A threshold expression is at most this long.
pub const MAX_TEXT: usize = 256;
/// The longest `delay` before an `abort_on_fail` threshold is first evaluated (a day).
pub const MAX_DELAY: Duration = Duration::from_secs(86_400);

/// What a threshold measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// A latency percentile, 0 < p <= 100, from the merged HDR histogram.
    Percentile(f64),
    Mean,
    Min,
    Max,
    /// Errors over completed requests (responses plus requests that ended without one).
    ErrorRate,
    /// Responses per second over the elapsed time.
    Rps,
    /// Failed requests, counted.
    Errors,
    /// Responses that failed a check, counted.
    ChecksFailed,
}

/// The unit a metric's values are shown in (and a limit is written back in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Ms,
    Ratio,
    PerSecond,
    Count,
}

impl Metric {
    pub fn unit(self) -> Unit {
        match self {
            Metric::Percentile(_) | Metric::Mean | Metric::Min | Metric::Max => Unit::Ms,
            Metric::ErrorRate => Unit::Ratio,
            Metric::Rps => Unit::PerSecond,
            Metric::Errors | Metric::ChecksFailed => Unit::Count,
        }
    }

    fn is_latency(self) -> bool {
        self.unit() == Unit::Ms
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Percentile(p) if p.fract() == 0.0 => write!(f, "p{p}"),
            Metric::Percentile(p) => write!(f, "p({p})"),
            Metric::Mean => f.write_str("mean"),
            Metric::Min => f.write_str("min"),
            Metric::Max => f.write_str("max"),
            Metric::ErrorRate => f.write_str("error_rate"),
            Metric::Rps => f.write_str("rps"),
            Metric::Errors => f.write_str("errors"),
            Metric::ChecksFailed => f.write_str("checks_failed"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    /// Longest first, so that `<=` is not read as `<`.
    const ALL: [(&'static str, Op); 6] = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, o)| *o == self)
            .map_or("?", |(s, _)| s)
    }

    /// `measured op limit`.
    pub fn holds(self, measured: f64, limit: f64) -> bool {
        match self {
            Op::Lt => measured < limit,
            Op::Le => measured <= limit,
            Op::Gt => measured > limit,
            Op::Ge => measured >= limit,
            Op::Eq => measured == limit,
            Op::Ne => measured != limit,
        }
    }
}

/// A parsed expression. Latency limits are held in microseconds (the histograms' unit), so
/// that `p99 < 250ms` compares whole numbers exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// The request name it is scoped to (a mix entry); `None` is the whole test.
    pub request: Option<String>,
    pub metric: Metric,
    pub op: Op,
    pub limit: f64,
}

impl Expr {
    /// The limit in the metric's display unit (ms for latency).
    pub fn shown_limit(&self) -> f64 {
        if self.metric.is_latency() {
            self.limit / 1000.0
        } else {
            self.limit
        }
    }
}

/// One threshold as a test carries it: the text as given, its parse, and whether a failure
/// stops the test (evaluated live from `delay` after the start).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Stored", into = "Stored")]
pub struct Threshold {
    pub text: String,
    pub expr: Expr,
    pub abort_on_fail: bool,
    pub delay: Duration,
}

/// A threshold as stored and shown: the text is the source of truth, parsed again on reading.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub threshold: String,
    #[serde(default)]
    pub abort_on_fail: bool,
    #[serde(default)]
    pub delay_ms: u64,
}

impl TryFrom<Stored> for Threshold {
    type Error = String;
    fn try_from(s: Stored) -> Result<Self, String> {
        Ok(Threshold {
            expr: parse(&s.threshold)?,
            text: s.threshold,
            abort_on_fail: s.abort_on_fail,
            delay: Duration::from_millis(s.delay_ms),
        })
    }
}

impl From<Threshold> for Stored {
    fn from(t: Threshold) -> Self {
        Stored {
            threshold: t.text,
            abort_on_fail: t.abort_on_fail,
            delay_ms: t.delay.as_millis() as u64,
        }
    }
}

const METRICS_HELP: &str =
    "p<N>, p(<N>), median, mean, min, max, error_rate, rps, errors, checks_failed";

/// Parses one expression. The error says what is wrong and where (a column, from 1).
pub fn parse(text: &str) -> Result<Expr, String> {
    if text.len() > MAX_TEXT {
        return Err(format!("is longer than {MAX_TEXT} characters"));
    }
    let col = |part: &str| text.len() - text.trim_start().len() + offset_in(text, part) + 1;
    let body = text.trim();
    if body.is_empty() {
        return Err("is empty; write e.g. \"p99 < 250ms\"".into());
    }
    let (request, rest) = match body.split_once(':') {
        Some((name, rest)) => {
            let name = name.trim();
            if !valid_name(name) {
                return Err(format!(
                    "{name:?} (column {}) is not a request name ([A-Za-z0-9_.-], 1 to 64)",
                    col(name)
                ));
            }
            (Some(name.to_string()), rest)
        }
        None => (None, body),
    };
    let (at, sym, op) = Op::ALL
        .iter()
        .filter_map(|(s, o)| rest.find(s).map(|i| (i, *s, *o)))
        .min_by_key(|(i, s, _)| (*i, std::cmp::Reverse(s.len())))
        .ok_or_else(|| {
            format!(
                "{rest:?} has no comparison: one of <, <=, >, >=, ==, != (e.g. \"p99 < 250ms\")"
            )
        })?;
    let name = rest[..at].trim();
    let value = rest[at + sym.len()..].trim();
    let metric = parse_metric(name)
        .map_err(|why| format!("{why} (column {}; metrics: {METRICS_HELP})", col(name)))?;
    let limit = parse_value(metric, value).map_err(|why| {
        if value.is_empty() {
            format!("{why} after {sym:?}")
        } else {
            format!("{why} (column {})", col(value))
        }
    })?;
    Ok(Expr {
        request,
        metric,
        op,
        limit,
    })
}

/// Where `part` (a subslice of `text`, trimmed) starts, in bytes from the trimmed start.
fn offset_in(text: &str, part: &str) -> usize {
    let start = text.trim_start().as_ptr() as usize;
    (part.as_ptr() as usize).saturating_sub(start)
}

/// Request names as the mix defines them.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn parse_metric(name: &str) -> Result<Metric, String> {
    let m = match name {
        "" => return Err("no metric before the comparison".into()),
        "median" => Metric::Percentile(50.0),
        "mean" | "avg" => Metric::Mean,
        "min" => Metric::Min,
        "max" => Metric::Max,
        "error_rate" => Metric::ErrorRate,
        "rps" => Metric::Rps,
        "errors" => Metric::Errors,
        "checks_failed" => Metric::ChecksFailed,
        _ => {
            let unknown = || format!("unknown metric {name:?}");
            let digits = match name.strip_prefix("p(") {
                Some(inner) => inner.strip_suffix(')').ok_or_else(unknown)?.trim(),
                None => name.strip_prefix('p').ok_or_else(unknown)?,
            };
            let p = number(digits).ok_or_else(unknown)?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(format!(
                    "{name:?}: a percentile is over 0 and at most 100 (for 99.9 write p(99.9))"
                ));
            }
            Metric::Percentile(p)
        }
    };
    Ok(m)
}

/// A plain decimal: digits with at most one point, no sign or exponent.
fn number(s: &str) -> Option<f64> {
    let ok = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|b| *b == b'.').count() <= 1
        && s.bytes().any(|b| b.is_ascii_digit());
    ok.then(|| s.parse().ok()).flatten()
}

fn parse_value(metric: Metric, value: &str) -> Result<f64, String> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (num, unit) = (&value[..split], value[split..].trim());
    let n = number(num).ok_or_else(|| {
        if value.is_empty() {
            "no value".to_string()
        } else {
            format!("{value:?} is not a number (digits, at most one point, no sign)")
        }
    })?;
    match metric.unit() {
        Unit::Ms => {
            let us = match unit {
                "us" | "µs" => n,
                "ms" => n * 1e3,
                "s" => n * 1e6,
                "" => {
                    return Err(format!(
                        "{value:?} needs a unit: us, ms or s (e.g. \"{value}ms\")"
                    ))
                }
                u => return Err(format!("{u:?} is not a latency unit: us, ms or s")),
            };
            Ok(us)
        }
        Unit::Ratio => {
            let ratio = match unit {
                // Through the decimal string, so that `0.1%` is the same double as `0.001`.
                "%" => format!("{num}e-2").parse().unwrap_or(f64::NAN),
                "" => n,
                u => return Err(format!("{u:?} is not a unit of a rate: a ratio or a %")),
            };
            if !(0.0..=1.0).contains(&ratio) {
                return Err(format!("{value:?} is not between 0 and 1 (0% and 100%)"));
            }
            Ok(ratio)
        }
        Unit::PerSecond => match unit {
            "" | "/s" => Ok(n),
            u => Err(format!("{u:?} is not a unit of rps: none, or /s")),
        },
        Unit::Count => match unit {
            "" if n.fract() == 0.0 => Ok(n),
            "" => Err(format!("{value:?} is not a whole count")),
            u => Err(format!("{u:?}: a count has no unit")),
        },
    }
}

#[cfg(test)]
mod tests;
