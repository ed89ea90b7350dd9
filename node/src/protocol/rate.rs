//! A live rate change on the wire (issue 13, item 3): the orchestrator's `set_rate` command on
//! the control topic (see [`super::Control::SetRate`]), and what each driver reports it applied
//! (`rate_changes` in its `metrics` reports). Seed drivers read neither.

use super::limits;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The new pace of each participant, requests/s, as `set_rate` carries it: checked here so a
/// driver never hands the engine a rate out of range, whoever sent it.
pub fn checked_rates(rates: &BTreeMap<String, f64>) -> Result<(), String> {
    if rates.is_empty() || rates.len() > limits::MAX_DRIVERS {
        return Err(format!(
            "rates: between 1 and {} drivers, got {}",
            limits::MAX_DRIVERS,
            rates.len()
        ));
    }
    for (id, &rate) in rates {
        limits::check_id(id).map_err(|e| format!("rates: a driver ID {e}"))?;
        limits::check_rate(rate).map_err(|e| format!("rates.{id}: {e}"))?;
    }
    Ok(())
}

/// `rates` read liberally: each a JSON number or a numeric string, by the wire's one lenient
/// number parser (range checks are [`checked_rates`]'s).
pub(super) fn lenient_rates<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, f64>, D::Error> {
    use serde::de::Error;
    BTreeMap::<String, Value>::deserialize(d)?
        .into_iter()
        .map(|(id, v)| match super::lenient::lenient_opt_f64(v) {
            Ok(Some(rate)) => Ok((id, rate)),
            Ok(None) => Err(D::Error::custom(format!("rates.{id}: no rate"))),
            Err(e) => Err(D::Error::custom(format!("rates.{id}: {e}"))),
        })
        .collect()
}

/// One change as a driver applied it, in every report after it (cumulative, like the rest).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppliedRate {
    /// The orchestrator's number for the change (1 for the first of a test).
    pub seq: u64,
    /// When the new pace took effect, µs since the Unix epoch on the driver's clock: the agreed
    /// instant, or later if the command arrived after it.
    pub at_us: u64,
    /// The first request index on the new pace (those before kept their instants).
    pub first: u64,
    /// The new pace, requests/s.
    pub rate: f64,
}

/// A report's `rate_changes`, liberally: entries that are not well-formed are dropped, and at
/// most [`limits::MAX_RATE_CHANGES`] are read.
pub(super) fn applied(v: Option<&Value>) -> Vec<AppliedRate> {
    let Some(list) = v.and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .take(limits::MAX_RATE_CHANGES)
        .filter(|e| e.is_object())
        .filter_map(|e| serde_json::from_value::<AppliedRate>(e.clone()).ok())
        .filter(|a| a.rate.is_finite() && a.rate > 0.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rates_out_of_range_are_refused_naming_the_driver() {
        let ok = BTreeMap::from([("d0".to_string(), 250.0), ("d1".to_string(), 0.5)]);
        assert_eq!(checked_rates(&ok), Ok(()));
        let bad = BTreeMap::from([("d0".to_string(), 0.0)]);
        assert!(checked_rates(&bad).unwrap_err().starts_with("rates.d0:"));
        let nan = BTreeMap::from([("d0".to_string(), f64::NAN)]);
        assert!(checked_rates(&nan).is_err());
        assert!(checked_rates(&BTreeMap::new()).is_err());
        let many: BTreeMap<String, f64> = (0..9).map(|i| (format!("d{i}"), 1.0)).collect();
        assert!(checked_rates(&many).is_err());
    }

    #[test]
    fn applied_changes_are_read_liberally() {
        let v = json!([
            {"seq": 1, "at_us": 1_700_000_000_000_000u64, "first": 300, "rate": 500.0},
            {"seq": "x"},
            7,
            {"seq": 2, "at_us": 1, "first": 9, "rate": -1.0},
        ]);
        assert_eq!(
            applied(Some(&v)),
            vec![AppliedRate {
                seq: 1,
                at_us: 1_700_000_000_000_000,
                first: 300,
                rate: 500.0
            }]
        );
        assert!(applied(Some(&json!("no"))).is_empty());
        assert!(applied(None).is_empty());
    }
}
