//! Re-split on loss (issue 13, item 2), as pure functions: when a driver of a test given in
//! totals is lost mid-test, who takes its unsent share (a Floodgate driver that joins in its
//! place, else the participants still sending, by weight), at what pace (the lost driver's
//! rate, so the total rate holds), and how many requests it may have sent that no report
//! counted (the "unknown", bounded by its pace over the longest it can have gone on).
//!
//! Only a test whose drivers read the control topic and stop on their own when cut off (the
//! fail-safe) is re-split: without the fail-safe, a driver partitioned from Kafka could go on
//! sending its share while others send it again, and nothing would bound it.

use crate::protocol::limits::Caps;
use crate::protocol::{HandOverPart, TookOver};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A lost driver, as the hand-over needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Loss {
    pub driver_id: String,
    /// Why it was judged lost.
    pub why: String,
    /// Requests it was to send (its share, with any it had taken itself).
    pub requests: u64,
    /// What its last report said it had sent.
    pub sent: u64,
    /// Its pace, requests/s; `None` when unpaced.
    pub rate: Option<f64>,
    /// The pace it measured, requests/s (its last report's count over its elapsed time): the
    /// bound of an unpaced driver's unreported requests.
    pub measured_rate: f64,
    /// From its last report's snapshot to the latest instant it can still have been sending
    /// (its last sign of life plus the fail-safe).
    pub unreported_for: Duration,
}

/// A participant that can take a share: alive, a Floodgate driver, still sending its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Receiver {
    pub driver_id: String,
    /// Its share's weight (its pace, else its count).
    pub weight: f64,
    /// Its pace now, requests/s; `None` when unpaced.
    pub rate: Option<f64>,
}

/// One hand-over, as planned and published.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HandOver {
    /// In the test's numbering of pace changes.
    pub seq: u64,
    /// When it was decided, and the instant the receivers take their new pace (ms since the
    /// Unix epoch, orchestrator's clock).
    pub decided_at_ms: u64,
    pub at_ms: u64,
    /// The lost driver and why it was judged lost.
    pub from: String,
    pub why: String,
    /// Its share, what it reported sent, and the difference handed over.
    pub share: u64,
    pub reported_sent: u64,
    pub unsent: u64,
    /// At most this many requests may have left it after its last report (never more than
    /// `unsent`); the target may count up to this many over the total.
    pub unknown_max: u64,
    /// Each receiver's part: requests added, and its new pace.
    pub parts: BTreeMap<String, HandOverPart>,
    /// The receiver that joined the test in the lost driver's place, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
}

/// A hand-over in the test's history: as planned, what each receiver reported taking, and what
/// is known of the lost driver's unreported requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HandOverView {
    #[serde(flatten)]
    pub hand_over: HandOver,
    /// The receivers that reported taking their part, with when (orchestrator's clock).
    #[serde(default)]
    pub taken: Vec<Taken>,
    /// Sent by the lost driver after its last report before the hand-over, once a later report
    /// of its own says so (it was cut off, not dead); `None` while unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_after: Option<u64>,
    /// What is still unknown: `unknown_max` until the lost driver reports again, then 0.
    pub unknown: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Taken {
    pub driver_id: String,
    pub requests: u64,
    pub at_ms: f64,
}

/// Plans the hand-over of `loss`'s unsent share: all of it to `replacement` at the lost pace
/// when one is ready, else split over `receivers` by weight (exactly, by largest remainder),
/// each one's pace raised by its part of the lost pace. `None` when there is nothing to hand
/// over or no one to take it.
pub fn plan(
    loss: &Loss,
    receivers: &[Receiver],
    replacement: Option<&str>,
    caps: &Caps,
    seq: u64,
    now_ms: u64,
    lead_ms: u64,
) -> Option<HandOver> {
    let unsent = loss.requests.saturating_sub(loss.sent);
    if unsent == 0 {
        return None;
    }
    let capped = |r: f64| r.min(caps.rate);
    let parts: BTreeMap<String, HandOverPart> = match replacement {
        Some(id) => BTreeMap::from([(
            id.to_string(),
            HandOverPart {
                requests: unsent,
                rate: loss.rate.map(capped),
            },
        )]),
        None => {
            let total: f64 = receivers.iter().map(|r| r.weight).sum();
            if receivers.is_empty() || total.is_nan() || total <= 0.0 {
                return None;
            }
            let weights: Vec<f64> = receivers.iter().map(|r| r.weight).collect();
            let counts = super::split::largest_remainder(unsent, &weights);
            receivers
                .iter()
                .zip(counts)
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| {
                    let rate = match (r.rate, loss.rate) {
                        (Some(own), Some(lost)) => Some(capped(own + lost * r.weight / total)),
                        (own, _) => own,
                    };
                    (r.driver_id.clone(), HandOverPart { requests: n, rate })
                })
                .collect()
        }
    };
    if parts.is_empty() {
        return None;
    }
    Some(HandOver {
        seq,
        decided_at_ms: now_ms,
        at_ms: now_ms + lead_ms,
        from: loss.driver_id.clone(),
        why: loss.why.clone(),
        share: loss.requests,
        reported_sent: loss.sent,
        unsent,
        unknown_max: unknown_max(loss, unsent),
        parts,
        replacement: replacement.map(str::to_string),
    })
}

/// The most requests `loss` can have sent unreported: its pace (or, unpaced, the pace it
/// measured) over the time it can have gone on after its last report, rounded up, and never
/// more than it had left to send.
pub fn unknown_max(loss: &Loss, unsent: u64) -> u64 {
    let rate = loss.rate.unwrap_or(loss.measured_rate).max(0.0);
    let n = (rate * loss.unreported_for.as_secs_f64()).ceil();
    if n.is_finite() && n < unsent as f64 {
        n as u64
    } else {
        unsent
    }
}

/// The history as the view shows it: each hand-over with what its receivers reported taking
/// (`took`: each driver's taken shares and its clock shift in ms), and what the lost driver
/// reported after it (`later_sent`: its last report's count, if one came after the hand-over).
pub fn history<'a>(
    planned: &[HandOver],
    took: impl IntoIterator<Item = (&'a str, &'a [TookOver], f64)> + Clone,
    later_sent: impl Fn(&str) -> Option<u64>,
) -> Vec<HandOverView> {
    planned
        .iter()
        .map(|h| {
            let taken = took
                .clone()
                .into_iter()
                .flat_map(|(id, list, shift_ms)| {
                    list.iter().filter(|t| t.seq == h.seq).map(move |t| Taken {
                        driver_id: id.to_string(),
                        requests: t.requests,
                        at_ms: t.at_us as f64 / 1000.0 - shift_ms,
                    })
                })
                .collect();
            let sent_after = later_sent(&h.from).map(|n| n.saturating_sub(h.reported_sent));
            HandOverView {
                hand_over: h.clone(),
                taken,
                sent_after,
                unknown: if sent_after.is_some() {
                    0
                } else {
                    h.unknown_max
                },
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "hand_over_tests.rs"]
mod tests;
