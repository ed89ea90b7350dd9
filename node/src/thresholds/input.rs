//! Thresholds as a test's input gives them: the JSON list of the REST API (strings or objects
//! with `abort_on_fail` and `delay`), errors naming the element at fault, and the check of
//! request-name scopes against the test's mix.

use super::{parse, Threshold, MAX_DELAY, MAX_THRESHOLDS};
use std::time::Duration;

/// A threshold that cannot be taken, naming its place (`thresholds[1]`, `thresholds[1].delay`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ThresholdError {
    pub field: String,
    pub message: String,
}

/// Parses the `thresholds` of a test as JSON: each element a string (the expression) or an
/// object `{"threshold": "...", "abort_on_fail": bool, "delay": "10s"}`. Errors name the element.
pub fn from_json(items: &[serde_json::Value]) -> Result<Vec<Threshold>, ThresholdError> {
    if items.len() > MAX_THRESHOLDS {
        return Err(ThresholdError {
            field: "thresholds".into(),
            message: format!("at most {MAX_THRESHOLDS} thresholds"),
        });
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| one_from_json(&format!("thresholds[{i}]"), v))
        .collect()
}

fn one_from_json(field: &str, v: &serde_json::Value) -> Result<Threshold, ThresholdError> {
    let err = |sub: &str, message: String| ThresholdError {
        field: format!("{field}{sub}"),
        message,
    };
    let (text, abort_on_fail, delay, sub) = match v {
        serde_json::Value::String(s) => (s.as_str(), false, Duration::ZERO, ""),
        serde_json::Value::Object(map) => {
            if let Some(k) = map
                .keys()
                .find(|k| !["threshold", "abort_on_fail", "delay"].contains(&k.as_str()))
            {
                return Err(err(
                    &format!(".{k}"),
                    "is not a known field (threshold, abort_on_fail, delay)".into(),
                ));
            }
            let text = map
                .get("threshold")
                .and_then(|t| t.as_str())
                .ok_or_else(|| {
                    err(
                        ".threshold",
                        "is required: the expression, e.g. \"p99 < 250ms\"".into(),
                    )
                })?;
            let abort = match map.get("abort_on_fail") {
                None => false,
                Some(serde_json::Value::Bool(b)) => *b,
                Some(_) => return Err(err(".abort_on_fail", "must be true or false".into())),
            };
            let delay = match map.get("delay") {
                None => Duration::ZERO,
                Some(serde_json::Value::String(d)) => {
                    parse_delay(d).map_err(|m| err(".delay", m))?
                }
                Some(_) => {
                    return Err(err(
                        ".delay",
                        "must be a duration string like \"10s\"".into(),
                    ))
                }
            };
            if delay > Duration::ZERO && !abort {
                return Err(err(
                    ".delay",
                    "only applies with abort_on_fail: true (the verdict is always taken at the end)"
                        .into(),
                ));
            }
            (text, abort, delay, ".threshold")
        }
        _ => {
            return Err(err(
                "",
                "must be an expression string or an object {\"threshold\": ...}".into(),
            ))
        }
    };
    let expr = parse(text).map_err(|m| err(sub, m))?;
    Ok(Threshold {
        text: text.trim().to_string(),
        expr,
        abort_on_fail,
        delay,
    })
}

/// A delay such as `10s` or `1m 30s` (humantime), at most [`MAX_DELAY`].
pub fn parse_delay(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration like \"10s\": {e}"))?;
    if d > MAX_DELAY {
        return Err(format!(
            "must be at most {}",
            humantime::format_duration(MAX_DELAY)
        ));
    }
    Ok(d)
}

/// Checks the request names thresholds are scoped to against the test's request names (its
/// mix). A test without a mix has no names, so a scoped threshold there is refused.
pub fn check_scopes(
    thresholds: &[Threshold],
    names: Option<&[&str]>,
) -> Result<(), ThresholdError> {
    for (i, t) in thresholds.iter().enumerate() {
        let Some(request) = &t.expr.request else {
            continue;
        };
        let known = names.is_some_and(|n| n.contains(&request.as_str()));
        if !known {
            let message = match names {
                None => format!(
                    "is scoped to request {request:?}, but the test has no mix to name requests"
                ),
                Some(n) => format!(
                    "is scoped to request {request:?}, which is not in the mix ({})",
                    n.join(", ")
                ),
            };
            return Err(ThresholdError {
                field: format!("thresholds[{i}]"),
                message,
            });
        }
    }
    Ok(())
}
