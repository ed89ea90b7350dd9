//! A LoadTest's hand-overs (issue 13, item 2), as pure functions: the orchestrator's view of
//! each lost driver's share handed to others, as `status.handOvers` shows it, and which of them
//! are new since the status was last written (each announced by one `DriverHandedOver` Event).
//!
//! The status keeps a hand-over the orchestrator no longer has: an orchestrator that restarts
//! mid-test forgets its hand-overs (see docs/decisions.md), while the receivers still send what
//! they took. The record stays, as last written, so the LoadTest tells what happened.

use floodgate::orchestrator::hand_over::HandOverView;
use floodgate::protocol::limits;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The Event's reason.
pub const DRIVER_HANDED_OVER: &str = "DriverHandedOver";
/// Characters kept of the orchestrator's reason for the loss.
const MAX_WHY_CHARS: usize = 256;

/// One hand-over (`status.handOvers[]`): a driver lost mid-test and who took its unsent share,
/// on the orchestrator's clock.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HandOverStatus {
    /// In the test's numbering of pace changes (a paced hand-over is also in `rateChanges`).
    pub seq: u64,
    /// When the loss was judged and the hand-over decided, Unix milliseconds.
    pub decided_at_ms: u64,
    /// The instant the receivers take their new pace, Unix milliseconds.
    pub at_ms: u64,
    /// The lost driver.
    pub from: String,
    /// Why it was judged lost.
    pub why: String,
    /// Requests it was to send (its share, with any it had taken itself).
    pub share: u64,
    /// What its last report said it had sent.
    pub reported_sent: u64,
    /// `share` minus `reportedSent`: what was handed over.
    pub unsent: u64,
    /// At most this many requests may have left it after its last report: the target may
    /// count up to this many over the total.
    pub unknown_max: u64,
    /// What is still unknown: `unknownMax` until the lost driver reports again, then 0.
    pub unknown: u64,
    /// Sent by the lost driver after its last report before the hand-over, once a later report
    /// of its own says so (it was cut off, not dead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_after: Option<u64>,
    /// The driver that joined the test in the lost one's place, if one did (it takes the
    /// whole share); else the participants still sending took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// Each receiver's part, by driver ID.
    #[schemars(length(max = limits::MAX_DRIVERS))]
    pub receivers: Vec<HandOverReceiver>,
}

/// A receiver's part of a hand-over.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HandOverReceiver {
    /// The driver ID.
    pub id: String,
    /// Requests it sends on top of its own (a replacement: its whole count).
    pub requests: u64,
    /// Its pace from `atMs`, requests/s; absent when unpaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Whether it reported taking its part.
    #[serde(default)]
    pub taken: bool,
}

/// One hand-over of the orchestrator's view as the status shows it.
pub fn status_of(v: &HandOverView) -> HandOverStatus {
    let h = &v.hand_over;
    HandOverStatus {
        seq: h.seq,
        decided_at_ms: h.decided_at_ms,
        at_ms: h.at_ms,
        from: h.from.clone(),
        why: h.why.chars().take(MAX_WHY_CHARS).collect(),
        share: h.share,
        reported_sent: h.reported_sent,
        unsent: h.unsent,
        unknown_max: h.unknown_max,
        unknown: v.unknown,
        sent_after: v.sent_after,
        replacement: h.replacement.clone(),
        receivers: (h.parts.iter())
            .take(limits::MAX_DRIVERS)
            .map(|(id, p)| HandOverReceiver {
                id: id.clone(),
                requests: p.requests,
                rate: p.rate,
                taken: v.taken.iter().any(|t| &t.driver_id == id),
            })
            .collect(),
    }
}

/// The orchestrator's hand-overs as the status shows them, bounded as it bounds them.
pub fn history(views: &[HandOverView]) -> Vec<HandOverStatus> {
    views
        .iter()
        .take(limits::MAX_RATE_CHANGES)
        .map(status_of)
        .collect()
}

/// Whether two records are of the same hand-over (a restarted orchestrator numbers on from
/// what the drivers reported, so a number alone could be given twice).
fn same(a: &HandOverStatus, b: &HandOverStatus) -> bool {
    a.seq == b.seq && a.from == b.from && a.decided_at_ms == b.decided_at_ms
}

/// The status's hand-overs once the orchestrator's (`seen`, from [`history`]) are in: each of
/// those as it stands now (its receivers' takes and the unknown change as reports arrive), and
/// each recorded one the orchestrator no longer has, as last written; in order, the latest
/// [`limits::MAX_RATE_CHANGES`].
pub fn merge(recorded: &[HandOverStatus], seen: Vec<HandOverStatus>) -> Vec<HandOverStatus> {
    let forgotten = (recorded.iter()).filter(|r| !seen.iter().any(|s| same(r, s)));
    let mut all: Vec<HandOverStatus> = forgotten.cloned().collect();
    all.extend(seen);
    all.sort_by_key(|h| (h.seq, h.decided_at_ms));
    let over = all.len().saturating_sub(limits::MAX_RATE_CHANGES);
    all.split_off(over)
}

/// The hand-overs of `now` that `before` (the status as last written) does not have: each is
/// announced once.
pub fn new_since<'a>(
    before: &[HandOverStatus],
    now: &'a [HandOverStatus],
) -> Vec<&'a HandOverStatus> {
    (now.iter())
        .filter(|h| !before.iter().any(|b| same(b, h)))
        .collect()
}

/// The `DriverHandedOver` Event's message: the lost driver, its unsent requests, who took
/// them and the bound on what it may have sent unreported.
pub fn message(h: &HandOverStatus) -> String {
    let took = match &h.replacement {
        Some(r) => {
            let pace = (h.receivers.iter())
                .find(|x| &x.id == r)
                .and_then(|x| x.rate)
                .map(|rate| format!(" at {} requests/s", shown(rate)))
                .unwrap_or_default();
            format!("{r}, which joined in its place{pace}")
        }
        None => {
            let parts: Vec<String> = (h.receivers.iter())
                .map(|x| match x.rate {
                    Some(rate) => {
                        format!("{} +{} (now {} requests/s)", x.id, x.requests, shown(rate))
                    }
                    None => format!("{} +{}", x.id, x.requests),
                })
                .collect();
            format!("the drivers still sending: {}", parts.join(", "))
        }
    };
    let unknown = match (h.unknown_max, h.sent_after) {
        (_, Some(n)) => format!("it reported again since, {n} sent after its last report"),
        (0, None) => "none can have left it unreported".to_string(),
        (max, None) => format!(
            "up to {max} may have left it unreported, so the target may count up to {max} over the total"
        ),
    };
    format!(
        "driver {} was lost ({}) after reporting {} of its {} sent: its {} unsent requests went to {took}; {unknown}",
        h.from, h.why, h.reported_sent, h.share, h.unsent
    )
}

/// A pace for a message: to a tenth of a request per second.
fn shown(rate: f64) -> f64 {
    (rate * 10.0).round() / 10.0
}

#[cfg(test)]
#[path = "hand_over_tests.rs"]
mod tests;
