//! `test_config.shares` (issue 13): each Floodgate driver's part of a test given in totals.
//!
//! `{"driver-1": {"request_count": 5000, "rate_scale": 0.5}, …}`. The config's own per-driver
//! fields (`request_count`, `delay_us`, `throughput_per_driver`, and their seed spellings) are
//! the broadcast figures, which drivers of other implementations run; a Floodgate driver named
//! here sends `request_count` instead, at its rate times `rate_scale`.

use super::limits::{self, MAX_DRIVERS, MAX_KNOWN_DRIVERS, MAX_REQUESTS};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One driver's share.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigShare {
    /// Requests it sends instead of the broadcast count; absent for a test with no count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_count: Option<u64>,
    /// Its rate over the broadcast per-driver rate (its Tsunami gap is divided by it).
    pub rate_scale: f64,
}

/// Reads `shares` from a config: absent is none; each entry is checked, and one out of range
/// refuses the test (naming it), since a driver must not guess its part of a total.
pub(super) fn parse(v: &Value) -> Result<BTreeMap<String, ConfigShare>, String> {
    let Some(raw) = v.get("shares").filter(|s| !s.is_null()) else {
        return Ok(BTreeMap::new());
    };
    let obj = raw
        .as_object()
        .ok_or("shares: must be an object of driver IDs")?;
    if obj.len() > MAX_KNOWN_DRIVERS {
        return Err(format!("shares: at most {MAX_KNOWN_DRIVERS} drivers"));
    }
    let mut out = BTreeMap::new();
    for (id, share) in obj {
        limits::check_id(id).map_err(|e| format!("shares: a driver ID {e}"))?;
        let s: ConfigShare =
            serde_json::from_value(share.clone()).map_err(|e| format!("shares.{id}: {e}"))?;
        if s.request_count.is_some_and(|n| n == 0 || n > MAX_REQUESTS) {
            return Err(format!(
                "shares.{id}.request_count: must be between 1 and {MAX_REQUESTS}"
            ));
        }
        // The scales add up to the participants, so none is above their most.
        if !(s.rate_scale.is_finite() && s.rate_scale > 0.0 && s.rate_scale <= MAX_DRIVERS as f64) {
            return Err(format!(
                "shares.{id}.rate_scale: must be above 0 and at most {MAX_DRIVERS}"
            ));
        }
        out.insert(id.clone(), s);
    }
    Ok(out)
}

/// A per-driver gap divided by `scale`, in whole microseconds (at least one), within limits.
pub(super) fn scaled_gap_us(gap_us: u64, scale: f64) -> Result<u64, String> {
    if gap_us == 0 {
        return Ok(0);
    }
    let us = (gap_us as f64 / scale).round().max(1.0);
    limits::check_delay_us(us).map_err(|e| format!("delay_us scaled by rate_scale: {e}"))
}

/// A per-driver rate times `scale`, within limits.
pub(super) fn scaled_rate(rate: f64, scale: f64) -> Result<f64, String> {
    limits::check_rate(rate * scale)
        .map_err(|e| format!("throughput_per_driver scaled by rate_scale: {e}"))
}
