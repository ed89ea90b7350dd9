//! Liberal parsing and strict emitting of the seed's quoted values: numbers that may arrive as
//! JSON numbers or numeric strings, and numbers that are always written as strings.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serializer};
use std::fmt;

/// Formats a count or a delay the way the seed shows it: a JSON string of the number.
pub(super) fn num_as_string<S: Serializer, N: fmt::Display>(
    n: &N,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&n.to_string())
}

/// Milliseconds as a string with microsecond precision (`"12.345"`).
pub(super) fn ms_as_string<S: Serializer>(ms: &f64, s: S) -> Result<S::Ok, S::Error> {
    let v = if ms.is_finite() { *ms } else { 0.0 };
    s.serialize_str(&format!("{v:.3}"))
}

/// A number, or a string holding one; empty strings and null count as absent.
fn lenient_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| de::Error::custom("number out of range")),
        serde_json::Value::String(s) if s.trim().is_empty() => Ok(None),
        serde_json::Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("expected a number, got {s:?}"))),
        other => Err(de::Error::custom(format!("expected a number, got {other}"))),
    }
}

fn finite(v: f64) -> Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("expected a finite number, got {v}"))
    }
}

pub(super) fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    finite(lenient_number(d)?.unwrap_or(0.0)).map_err(de::Error::custom)
}

pub(super) fn lenient_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    lenient_number(d)?
        .map(finite)
        .transpose()
        .map_err(de::Error::custom)
}

fn to_u64(v: f64) -> Result<u64, String> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= u64::MAX as f64 {
        Ok(v as u64)
    } else {
        Err(format!("expected a whole number ≥ 0, got {v}"))
    }
}

pub(super) fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    lenient_opt_u64(d).map(|v| v.unwrap_or(0))
}

pub(super) fn lenient_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    lenient_number(d)?
        .map(to_u64)
        .transpose()
        .map_err(de::Error::custom)
}

pub(super) fn lenient_yes<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(true) => Ok(yes()),
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("yes") || s == "true" => Ok(yes()),
        other => Err(de::Error::custom(format!(
            "heartbeat must be \"YES\" or true, got {other}"
        ))),
    }
}

pub(super) fn any_as_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
}

fn yes() -> String {
    "YES".to_string()
}
