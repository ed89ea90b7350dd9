//! Liberal parsing of the seed's values: numbers that arrive as JSON numbers or numeric strings,
//! latencies with or without a unit (`"1.2"`, `"850.2ms"`, `"1.002s"`), flags as booleans or
//! words. Every parser here either returns a finite value or an error naming what it got, and
//! strings that arrive from the network are bounded (see `limits`).

use super::limits;
use serde::de::{self, Deserializer};
use serde::Deserialize;

/// A number, or a string holding one; empty strings and null count as absent.
pub(super) fn lenient_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
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

pub(super) fn any_as_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
}

/// A latency in milliseconds: a number (ms), a numeric string (ms), or a string with a unit as
/// Go's `time.Duration` prints it (`"1.002345s"`, `"850.2ms"`, `"523.4µs"`, `"120ns"`, `"1m2s"`).
/// Empty strings and null are absent.
pub(super) fn lenient_latency_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| de::Error::custom("latency out of range")),
        serde_json::Value::String(s) if s.trim().is_empty() => Ok(None),
        serde_json::Value::String(s) => duration_ms(s.trim())
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("expected a latency in ms, got {s:?}"))),
        other => Err(de::Error::custom(format!(
            "expected a latency in ms, got {other}"
        ))),
    }
}

/// `"12.5"` (ms) or a sequence of number+unit pairs (`"1m2.5s"`), in milliseconds.
pub(super) fn duration_ms(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    let mut rest = s;
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "us" | "µs" | "μs" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * factor;
    }
    total.is_finite().then_some(total)
}

/// A flag: `true`/`false`, `"true"`/`"yes"`/`"1"`, `1`/`0`; null is false.
pub(super) fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(false),
        serde_json::Value::Bool(b) => Ok(b),
        serde_json::Value::Number(n) => Ok(n.as_f64().is_some_and(|v| v != 0.0)),
        serde_json::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Ok(true),
            "false" | "no" | "n" | "0" | "" => Ok(false),
            _ => Err(de::Error::custom(format!(
                "expected true or false, got {s:?}"
            ))),
        },
        other => Err(de::Error::custom(format!(
            "expected true or false, got {other}"
        ))),
    }
}

/// Any string, number or null as an optional string (IDs that peers send as numbers).
pub(super) fn any_as_opt_string<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    })
}

/// [`any_as_string`], at most [`limits::MAX_ID_LEN`] bytes: IDs end up in the registry, the
/// store and every dashboard event, so a megabyte ID is refused here.
pub(super) fn any_as_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = any_as_string(d)?;
    limits::check_id(&s).map_err(de::Error::custom)?;
    Ok(s)
}

/// [`any_as_opt_string`], at most [`limits::MAX_ID_LEN`] bytes.
pub(super) fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    bounded(any_as_opt_string(d)?, limits::MAX_ID_LEN)
}

/// Any other short string, at most [`limits::MAX_TEXT_LEN`] bytes.
pub(super) fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    bounded(any_as_opt_string(d)?, limits::MAX_TEXT_LEN)
}

/// [`any_as_string`], at most [`limits::MAX_TEXT_LEN`] bytes.
pub(super) fn any_as_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = any_as_string(d)?;
    limits::check_len(&s, limits::MAX_TEXT_LEN).map_err(de::Error::custom)?;
    Ok(s)
}

fn bounded<E: de::Error>(s: Option<String>, max: usize) -> Result<Option<String>, E> {
    if let Some(s) = &s {
        limits::check_len(s, max).map_err(E::custom)?;
    }
    Ok(s)
}
