//! How the seed's own fields are written, for peers that read them differently.
//!
//! The seed quotes every value (`"1000"`), but the public implementations of the same spec
//! disagree: most decode counts into integers and break on strings, and three of five read
//! `test_message_delay` in seconds. Floodgate's own nodes never depend on the choice (they read
//! the exact extension fields `delay_us` and `request_count`), so the style only decides what a
//! foreign node sees. The per-peer table is in docs/protocol.md.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// Seed numbers as JSON numbers (`1000`) or as the seed's quoted strings (`"1000"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberStyle {
    /// Works with every public peer but one (the default).
    #[default]
    Number,
    /// The seed's literal form.
    String,
}

/// The unit of `test_message_delay`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DelayUnit {
    /// Seconds: what three of the five public peers read (the default).
    #[default]
    #[serde(rename = "s")]
    Seconds,
    #[serde(rename = "ms")]
    Millis,
}

impl DelayUnit {
    /// Microseconds in one unit.
    pub fn micros(self) -> f64 {
        match self {
            DelayUnit::Seconds => 1_000_000.0,
            DelayUnit::Millis => 1_000.0,
        }
    }
}

/// The spelling of `test_type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeCase {
    /// `TSUNAMI`, `AVALANCHE`: the seed's spelling (the default).
    #[default]
    Upper,
    /// `Tsunami`, `Avalanche`: what one peer compares against, exactly.
    Title,
}

/// How a node writes the seed's fields. Parsing never depends on it, except for the unit of a
/// `test_message_delay` that arrives without Floodgate's exact `delay_us` beside it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeedStyle {
    pub numbers: NumberStyle,
    pub delay_unit: DelayUnit,
    pub type_case: TypeCase,
}

impl SeedStyle {
    /// Writes `value` (a whole or fractional number) in this style: a whole number as a JSON
    /// integer (peers decoding into integers reject `1.0`), a fraction as a float, each quoted
    /// in the string style.
    pub fn number(&self, value: f64) -> Value {
        let v = if value.is_finite() { value } else { 0.0 };
        let whole = v.fract() == 0.0 && v.abs() < 9.0e15;
        match self.numbers {
            NumberStyle::Number if whole => Value::from(v as i64),
            NumberStyle::Number => Value::from(v),
            NumberStyle::String => Value::String(format_number(v)),
        }
    }

    /// A latency in milliseconds, rounded to the microsecond, in this style.
    pub fn millis(&self, ms: f64) -> Value {
        let v = if ms.is_finite() { ms } else { 0.0 };
        let rounded = (v * 1000.0).round() / 1000.0;
        match self.numbers {
            NumberStyle::Number => Value::from(rounded),
            NumberStyle::String => Value::String(format!("{rounded:.3}")),
        }
    }
}

/// The shortest exact decimal of a number (`10`, `0.01`, `2.5`).
fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        // Rust prints the shortest representation that round-trips.
        format!("{v}")
    }
}

impl fmt::Display for NumberStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NumberStyle::Number => "number",
            NumberStyle::String => "string",
        })
    }
}

impl FromStr for NumberStyle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "number" | "numbers" | "json" => Ok(NumberStyle::Number),
            "string" | "strings" | "quoted" => Ok(NumberStyle::String),
            _ => Err(format!("{s:?} is not number or string")),
        }
    }
}

impl fmt::Display for DelayUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DelayUnit::Seconds => "s",
            DelayUnit::Millis => "ms",
        })
    }
}

impl FromStr for DelayUnit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" | "seconds" => Ok(DelayUnit::Seconds),
            "ms" | "millis" | "milliseconds" => Ok(DelayUnit::Millis),
            _ => Err(format!("{s:?} is not s or ms")),
        }
    }
}

impl fmt::Display for TypeCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TypeCase::Upper => "upper",
            TypeCase::Title => "title",
        })
    }
}

impl FromStr for TypeCase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "upper" | "uppercase" => Ok(TypeCase::Upper),
            "title" | "titlecase" => Ok(TypeCase::Title),
            _ => Err(format!("{s:?} is not upper or title")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_integers_when_whole_and_quoted_in_the_string_style() {
        let n = SeedStyle::default();
        let s = SeedStyle {
            numbers: NumberStyle::String,
            ..Default::default()
        };
        let cases = [
            (1000.0, json!(1000), json!("1000")),
            (0.0, json!(0), json!("0")),
            (0.01, json!(0.01), json!("0.01")),
            (2.5, json!(2.5), json!("2.5")),
            (f64::NAN, json!(0), json!("0")),
        ];
        for (v, number, string) in cases {
            assert_eq!(n.number(v), number, "{v}");
            assert_eq!(s.number(v), string, "{v}");
        }
        assert_eq!(n.millis(1.23456), json!(1.235));
        assert_eq!(s.millis(1.23456), json!("1.235"));
    }

    #[test]
    fn style_names_parse_from_flags() {
        assert_eq!("string".parse(), Ok(NumberStyle::String));
        assert_eq!("MS".parse(), Ok(DelayUnit::Millis));
        assert_eq!("s".parse(), Ok(DelayUnit::Seconds));
        assert_eq!("title".parse(), Ok(TypeCase::Title));
        assert!("hours".parse::<DelayUnit>().is_err());
    }
}
