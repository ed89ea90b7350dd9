//! A test given in totals (issue 13): `total_requests`, `total_rate` and `split`, checked
//! against the per-driver figures they replace, and resolved into every participant's share
//! once the participants are known (`split`). Pure.
//!
//! A total count is split exactly, and a total rate by the same weights, so that every driver
//! needs about as long for its share. So a count given in total takes its pace in total too:
//! a per-driver pace beside shares by capacity would end the drivers at different times.

use super::spec::{FieldError, TestSpec};
use super::split::{self, Member, Split, SplitBy};
use crate::protocol::limits::{self, Caps, MAX_TOTAL_REQUESTS};
use crate::protocol::TestType;
use crate::schedule::Pace;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a test gave in totals; the per-driver figures of its spec are then the means.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Requests per second over all participants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(default, skip_serializing_if = "SplitBy::is_default")]
    pub split: SplitBy,
    /// Each participant's share, once the participants are known: kept in the spec, so that
    /// every copy of it (the store, a restarted orchestrator) judges each part by its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<Split>,
}

/// The figures a spec gives, as the user typed them.
pub(super) struct Given {
    pub test_type: TestType,
    pub total_requests: Option<u64>,
    pub total_rate: Option<f64>,
    pub split: Option<SplitBy>,
    pub requests_per_driver: Option<u64>,
    pub throughput_per_driver: Option<f64>,
    pub delay_ms: f64,
    pub time_bound: bool,
    /// Time-bound by stages (each with its own per-driver rate).
    pub staged: bool,
}

/// Checks the totals against what they replace; `None` when the test gives none.
pub(super) fn check(g: &Given) -> Result<Option<Totals>, FieldError> {
    if g.total_requests.is_none() && g.total_rate.is_none() {
        return match g.split {
            Some(_) => Err(FieldError::new(
                "split",
                "applies to a test given in total_requests and total_rate",
            )),
            None => Ok(None),
        };
    }
    if let Some(n) = g.total_requests {
        if g.requests_per_driver.is_some() {
            return Err(FieldError::new(
                "total_requests",
                "give either requests_per_driver or total_requests, not both",
            ));
        }
        if g.time_bound {
            return Err(FieldError::new(
                "total_requests",
                "a time-bound test (duration, stages) has no count; leave it out",
            ));
        }
        if !(1..=MAX_TOTAL_REQUESTS).contains(&n) {
            return Err(FieldError::new(
                "total_requests",
                format!("must be between 1 and {MAX_TOTAL_REQUESTS}"),
            ));
        }
    }
    match g.total_rate {
        Some(r) => {
            limits::check_rate(r).map_err(|e| FieldError::new("total_rate", e))?;
            if g.throughput_per_driver.is_some() {
                return Err(FieldError::new(
                    "total_rate",
                    "give either throughput_per_driver or total_rate, not both",
                ));
            }
            if g.test_type == TestType::Tsunami && g.delay_ms > 0.0 {
                return Err(FieldError::new(
                    "total_rate",
                    "a Tsunami test takes its pace as delay_ms or as total_rate, not both",
                ));
            }
            if g.staged {
                return Err(FieldError::new(
                    "total_rate",
                    "a staged test's rates are its stages', per driver; a total rate is for a \
                     count-bound test (with total_requests) or one given a duration",
                ));
            }
            if g.total_requests.is_none() && !g.time_bound {
                return Err(FieldError::new(
                    "total_rate",
                    "needs total_requests: shares of the rate by capacity with the same count \
                     per driver would end the drivers at different times",
                ));
            }
        }
        None => {
            let paced = match g.test_type {
                TestType::Tsunami => true,
                TestType::Avalanche => g.throughput_per_driver.is_some(),
            };
            if paced {
                return Err(FieldError::new(
                    "total_requests",
                    "a paced test given in total_requests takes its pace as total_rate (a \
                     per-driver pace beside shares by capacity would end the drivers at \
                     different times)",
                ));
            }
        }
    }
    Ok(Some(Totals {
        requests: g.total_requests,
        rate: g.total_rate,
        split: g.split.unwrap_or_default(),
        shared: None,
    }))
}

/// The spec with its per-driver figures set to the means over `members` and every member's
/// share in `totals.shared`; the spec as it is when it gives no totals. Each share is held to
/// the per-driver limits and `caps`.
pub fn resolve(spec: &TestSpec, members: &[Member], caps: &Caps) -> Result<TestSpec, FieldError> {
    let Some(t) = &spec.totals else {
        return Ok(spec.clone());
    };
    let total = t.requests.unwrap_or(0);
    let s = split::split(total, members, t.split)
        .map_err(|e| FieldError::new("total_requests", e.to_string()))?;
    let n = members.len() as f64;
    let mut s = s;
    let mut out = spec.clone();
    if t.requests.is_some() {
        out.requests_per_driver = s.per_driver;
    }
    if let Some(rate) = t.rate {
        let mean = rate / n;
        match spec.test_type {
            TestType::Tsunami => out.delay_ms = 1000.0 / mean,
            TestType::Avalanche => out.throughput_per_driver = Some(mean),
        }
        if out.duration_ms.is_some() {
            time_bound_counts(&mut out, &mut s)?;
        }
    }
    for share in &s.shares {
        let id = &share.driver_id;
        if t.requests.is_some() && share.requests == 0 {
            return Err(FieldError::new(
                "total_requests",
                format!(
                    "{total} leaves {id} nothing to send among {} participants; give at least \
                     one request per driver",
                    members.len()
                ),
            ));
        }
        if share.requests > caps.requests {
            return Err(FieldError::new(
                "total_requests",
                format!(
                    "{id}'s share, {} requests, is over the {} a driver may send",
                    share.requests, caps.requests
                ),
            ));
        }
        if let Some(rate) = t.rate {
            let own = rate / n * share.rate_scale;
            let fine = limits::check_rate(own).is_ok() && own <= caps.rate;
            if !fine {
                return Err(FieldError::new(
                    "total_rate",
                    format!(
                        "{id}'s share, {own:.3} requests/s, is outside what a driver may run \
                         ({:.6} to {} requests/s)",
                        limits::MIN_RATE,
                        caps.rate
                    ),
                ));
            }
        }
    }
    if let Some(t) = out.totals.as_mut() {
        t.shared = Some(s);
    }
    Ok(out)
}

/// A time-bound test given a total rate: each share's count is what its own pace has due within
/// the duration, worked out from the config its driver reads (so the gap is rounded as the
/// wire rounds it), and the broadcast count the mean pace's (what seed drivers send).
fn time_bound_counts(out: &mut TestSpec, s: &mut Split) -> Result<(), FieldError> {
    let duration = out.duration();
    let ids: Vec<String> = s.shares.iter().map(|sh| sh.driver_id.clone()).collect();
    let mut config = out.to_config("", &ids, "");
    config.shares = s.wire(false);
    for share in &mut s.shares {
        let own = config
            .clone()
            .for_driver(&share.driver_id)
            .map_err(|e| FieldError::new("total_rate", e))?;
        let delay = match own.test_type {
            TestType::Tsunami => Duration::from_micros(own.delay_us),
            TestType::Avalanche => Duration::ZERO,
        };
        let pace = Pace::of(delay, own.throughput_per_driver, 0.0, []);
        share.requests = pace.count_within(duration).unwrap_or(0);
    }
    out.requests_per_driver = out.pace().count_within(duration).unwrap_or(0);
    s.per_driver = out.requests_per_driver;
    Ok(())
}

/// A resolved spec's shares, if it was given in totals.
pub fn shared(spec: &TestSpec) -> Option<&Split> {
    spec.totals.as_ref()?.shared.as_ref()
}

#[cfg(test)]
#[path = "spec_total_tests.rs"]
mod tests;
