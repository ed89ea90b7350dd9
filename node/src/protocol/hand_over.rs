//! A lost driver's share handed to others on the wire (issue 13, item 2): the orchestrator's
//! `hand_over` command on the control topic (see [`super::Control::HandOver`]), and what each
//! receiver reports it took (`hand_overs` in its `metrics` reports). Seed drivers read neither.

use super::lenient::{lenient_opt_f64, lenient_u64};
use super::limits;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One receiver's part of a hand-over.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HandOverPart {
    /// Requests it sends on top of its own count (or, for a driver that joins, its whole count).
    #[serde(deserialize_with = "lenient_u64")]
    pub requests: u64,
    /// Its new pace from the hand-over's instant, requests/s; absent for an unpaced test.
    #[serde(
        default,
        deserialize_with = "lenient_opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub rate: Option<f64>,
}

/// Checks a hand-over's parts as a driver reads them, whoever sent them: each count and rate in
/// range, one to [`limits::MAX_DRIVERS`] receivers, none of them the lost driver.
pub fn checked_parts(from: &str, parts: &BTreeMap<String, HandOverPart>) -> Result<(), String> {
    id(from).map_err(|e| format!("from: {e}"))?;
    if parts.is_empty() || parts.len() > limits::MAX_DRIVERS {
        return Err(format!(
            "parts: between 1 and {} drivers, got {}",
            limits::MAX_DRIVERS,
            parts.len()
        ));
    }
    for (id, p) in parts {
        self::id(id).map_err(|e| format!("parts: a driver ID {e}"))?;
        if id == from {
            return Err(format!(
                "parts.{id}: the lost driver cannot take its own share"
            ));
        }
        if p.requests == 0 || p.requests > limits::MAX_REQUESTS {
            return Err(format!(
                "parts.{id}.requests: must be between 1 and {}",
                limits::MAX_REQUESTS
            ));
        }
        if let Some(rate) = p.rate {
            limits::check_rate(rate).map_err(|e| format!("parts.{id}.rate: {e}"))?;
        }
    }
    Ok(())
}

/// A driver ID: not empty, and no longer than the limit.
fn id(s: &str) -> Result<&str, String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    limits::check_id(s)
}

/// A hand-over as a receiver took it, in every report after it (cumulative, like the rest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TookOver {
    /// The hand-over's number (in the test's numbering of pace changes).
    pub seq: u64,
    /// The lost driver whose share it was.
    pub from: String,
    /// Requests it added to its count (for a driver that joined, its whole count).
    pub requests: u64,
    /// When it took them, µs since the Unix epoch on the driver's clock.
    pub at_us: u64,
}

/// A report's `hand_overs`, liberally: entries that are not well-formed are dropped, and at
/// most [`limits::MAX_RATE_CHANGES`] are read.
pub(super) fn took(v: Option<&Value>) -> Vec<TookOver> {
    let Some(list) = v.and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .take(limits::MAX_RATE_CHANGES)
        .filter_map(|e| serde_json::from_value::<TookOver>(e.clone()).ok())
        .filter(|t| id(&t.from).is_ok() && t.requests <= limits::MAX_REQUESTS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn part(requests: u64, rate: Option<f64>) -> HandOverPart {
        HandOverPart { requests, rate }
    }

    #[test]
    fn parts_out_of_range_are_refused_naming_the_field() {
        let ok = BTreeMap::from([("d1".to_string(), part(500, Some(250.0)))]);
        assert_eq!(checked_parts("d0", &ok), Ok(()));
        let table: [(&str, BTreeMap<String, HandOverPart>, &str); 5] = [
            ("d0", BTreeMap::new(), "parts:"),
            (
                "d0",
                BTreeMap::from([("d0".into(), part(1, None))]),
                "parts.d0:",
            ),
            (
                "d0",
                BTreeMap::from([("d1".into(), part(0, None))]),
                "parts.d1.requests",
            ),
            (
                "d0",
                BTreeMap::from([("d1".into(), part(1, Some(-1.0)))]),
                "parts.d1.rate",
            ),
            ("", ok.clone(), "from:"),
        ];
        for (from, parts, field) in table {
            let e = checked_parts(from, &parts).expect_err(field);
            assert!(e.starts_with(field), "{e} should name {field}");
        }
    }

    #[test]
    fn a_part_is_read_liberally_and_taken_over_entries_skip_the_malformed() {
        let p: HandOverPart =
            serde_json::from_value(json!({"requests": "40", "rate": "2.5"})).expect("lenient");
        assert_eq!(p, part(40, Some(2.5)));
        let v = json!([
            {"seq": 2, "from": "d0", "requests": 40, "at_us": 7},
            {"seq": "x"},
            {"seq": 3, "from": "", "requests": 1, "at_us": 1},
        ]);
        assert_eq!(
            took(Some(&v)),
            vec![TookOver {
                seq: 2,
                from: "d0".into(),
                requests: 40,
                at_us: 7
            }]
        );
        assert!(took(None).is_empty());
    }
}
