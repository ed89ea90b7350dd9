//! A test's hand-overs (issue 13, item 2): which of its lost drivers' shares to hand over and
//! to whom (the decision is `hand_over::plan`'s), and how a hand-over changes what each part is
//! judged by: the lost driver is held to what it reported, each receiver to its share plus what
//! it took, a replacement to what it took alone, from when it joined.

use super::super::hand_over::{self, HandOver, HandOverView, Loss, Receiver};
use super::super::part::Judgement;
use super::super::rate_change::RateChange;
use super::super::registry::Liveness;
use super::super::spec::TestSpec;
use super::TestRun;
use crate::model::TestStatus;
use crate::protocol::limits::{self, Caps};
use crate::protocol::{ConfigShare, TestConfig, TestType};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Slack on the unreported time of a lost driver: its report's snapshot instant is read from
/// its own clock and elapsed time, which may be off by a few milliseconds.
const UNREPORTED_SLACK: Duration = Duration::from_millis(250);

/// A hand-over decided, for the edges to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    pub hand_over: HandOver,
    /// For a replacement: the test's config naming its share (the orchestrator's ID is filled
    /// in by the edge that publishes it).
    pub config: Option<Box<TestConfig>>,
}

impl TestRun {
    /// The hand-over of `id`'s share, if it was lost and handed over.
    pub(super) fn handed_over(&self, id: &str) -> Option<&HandOver> {
        self.hand_overs.iter().find(|h| h.from == id)
    }

    /// Requests `id` took from lost drivers.
    pub(super) fn taken_by(&self, id: &str) -> u64 {
        (self.hand_overs.iter())
            .filter_map(|h| h.parts.get(id))
            .map(|p| p.requests)
            .sum()
    }

    /// Whether `id` gave or took a share in a hand-over.
    pub(super) fn in_hand_over(&self, id: &str) -> bool {
        (self.hand_overs.iter()).any(|h| h.from == id || h.parts.contains_key(id))
    }

    /// Whether `id` joined the test in a lost driver's place.
    pub(super) fn is_replacement(&self, id: &str) -> bool {
        self.joined.contains_key(id)
    }

    /// How long `id`'s part has run: from the start, or from when it joined.
    pub(super) fn since_start_of(&self, id: &str, now: Instant) -> Duration {
        let from = self.joined.get(id).copied().or(self.start_instant);
        from.map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }

    /// `id`'s pace now, requests/s: the latest change naming it, else its starting pace;
    /// `None` when unpaced.
    pub(super) fn rate_of(&self, id: &str) -> Option<f64> {
        let changed = (self.rate_changes.iter().rev()).find_map(|c| c.rates.get(id).copied());
        changed.or_else(|| {
            let gap = self.start_gap_of(id);
            (!gap.is_zero()).then(|| 1.0 / gap.as_secs_f64())
        })
    }

    /// The participants still taking part: not lost and handed over.
    pub(super) fn active_drivers(&self) -> Vec<String> {
        (self.drivers.iter())
            .filter(|d| self.handed_over(d).is_none())
            .cloned()
            .collect()
    }

    /// The next number of a pace change or hand-over: after every one planned here and every
    /// one a driver reported (a restarted orchestrator forgets its plans).
    pub(super) fn next_seq(&self, reported: u64) -> u64 {
        let planned = self.rate_changes.last().map_or(0, |c| c.seq);
        let handed = self.hand_overs.last().map_or(0, |h| h.seq);
        planned.max(handed).max(reported) + 1
    }

    /// Whether a lost driver's share can be handed over at all: a running test given in a
    /// total count, with the fail-safe on (see `hand_over`), every participant a Floodgate
    /// driver, and a pace change left in its budget.
    fn resplits(&self, not_floodgate: bool) -> bool {
        let spec = &self.spec;
        self.status == TestStatus::Running
            && spec.totals.as_ref().is_some_and(|t| t.requests.is_some())
            && spec.fail_safe_ms > 0
            && spec.duration_ms.is_none()
            && spec.stages.is_empty()
            && !not_floodgate
    }

    /// Decides the hand-overs due now: one per participant judged lost whose share is not yet
    /// handed over, to the first of `idle` (Floodgate drivers running nothing) that can join,
    /// else to the participants still sending. Each is recorded here before it is published.
    pub fn plan_hand_overs(
        &mut self,
        now: Instant,
        now_ms: u64,
        liveness: impl Fn(&str) -> Liveness,
        mut idle: Vec<String>,
        caps: &Caps,
    ) -> Vec<Decided> {
        let not_floodgate = self.drivers.iter().any(|d| {
            let seen = liveness(d);
            let sequenced = self.parts.get(d).is_some_and(|p| p.sequenced());
            !(seen.floodgate || sequenced)
        });
        if !self.resplits(not_floodgate) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for id in self.active_drivers() {
            let Some(part) = self.parts.get(&id) else {
                continue;
            };
            let live = liveness(&id);
            let rules = self.rules_of(&id);
            let since = self.since_start_of(&id, now);
            let Judgement::Lost(why) = part.judge(&live, &self.id, since, now, &rules) else {
                continue;
            };
            let reported = self.reported_seq();
            let seq = self.next_seq(reported);
            if seq > limits::MAX_RATE_CHANGES as u64 {
                continue;
            }
            let loss = self.loss(&id, why, &live, now);
            // A test that names its drivers takes a replacement only from its own pool.
            let spec = &self.spec;
            idle.retain(|d| {
                let pooled = spec.driver_ids.is_none()
                    || (spec.replacement_prefix.as_deref()).is_some_and(|p| d.starts_with(p));
                pooled && !self.drivers.contains(d)
            });
            let replacement = idle.first().cloned();
            let receivers = self.receivers(&id, &liveness);
            let lead = limits::RATE_CHANGE_LEAD_MS;
            let Some(h) = hand_over::plan(
                &loss,
                &receivers,
                replacement.as_deref(),
                caps,
                seq,
                now_ms,
                lead,
            ) else {
                continue;
            };
            if replacement.is_some() {
                idle.remove(0);
            }
            let config = h.replacement.as_deref().map(|r| {
                Box::new(replacement_config(
                    &self.spec,
                    &self.id,
                    &self.drivers,
                    r,
                    &h,
                    self.spec_rate(),
                ))
            });
            self.record(h.clone(), now + Duration::from_millis(lead));
            out.push(Decided {
                hand_over: h,
                config,
            });
        }
        out
    }

    /// The highest pace-change number any driver reported applying.
    pub(super) fn reported_seq(&self) -> u64 {
        (self.parts.values())
            .filter_map(|p| p.report.as_ref())
            .flat_map(|r| {
                let rates = r.rate_changes.iter().map(|c| c.seq);
                rates.chain(r.hand_overs.iter().map(|t| t.seq))
            })
            .max()
            .unwrap_or(0)
    }

    /// The test's broadcast per-driver pace, requests/s (the mean over the participants of a
    /// test given in totals); `None` when unpaced.
    fn spec_rate(&self) -> Option<f64> {
        match self.spec.test_type {
            TestType::Tsunami if self.spec.delay_ms > 0.0 => Some(1000.0 / self.spec.delay_ms),
            TestType::Tsunami => None,
            TestType::Avalanche => self.spec.throughput_per_driver,
        }
    }

    /// `id`, lost, as the hand-over sees it.
    fn loss(&self, id: &str, why: String, live: &Liveness, now: Instant) -> Loss {
        let part = self.parts.get(id);
        let report = part.and_then(|p| p.report.as_ref());
        let sent = report.filter(|r| r.counted).map_or(0, |r| r.requests_sent);
        let elapsed = Duration::from_micros(report.map_or(0, |r| r.elapsed_us));
        let measured_rate = match elapsed.as_secs_f64() {
            s if s > 0.0 => sent as f64 / s,
            _ => 0.0,
        };
        // Its last report's snapshot, on this orchestrator's clock: the part's own start plus
        // the elapsed time it reported.
        let start = self.joined.get(id).copied().or(self.start_instant);
        let snapshot = start.map_or(now, |s| s + elapsed);
        // The latest it can have sent: a fail-safe after it was last heard (it stops on its
        // own once it has heard no one for that long, which it cannot have before we lost it).
        let last_seen = now.checked_sub(live.silent_for).unwrap_or(now);
        let until = last_seen + Duration::from_millis(self.spec.fail_safe_ms);
        Loss {
            driver_id: id.to_string(),
            why,
            requests: self.requests_of(id),
            sent,
            rate: self.rate_of(id),
            measured_rate,
            unreported_for: until.saturating_duration_since(snapshot) + UNREPORTED_SLACK,
        }
    }

    /// The participants that can take `lost`'s share: alive Floodgate drivers still sending
    /// their own (a part that ended could not take more), by weight: their pace, else count.
    fn receivers(&self, lost: &str, liveness: &impl Fn(&str) -> Liveness) -> Vec<Receiver> {
        self.active_drivers()
            .into_iter()
            .filter(|d| d != lost)
            .filter(|d| {
                let part = self.parts.get(d);
                let report = part.and_then(|p| p.report.as_ref());
                let sending = report.is_some_and(|r| r.seq > 0 && !r.is_final);
                let done = part.is_some_and(|p| {
                    matches!(p.judged, Some(Judgement::Done(_) | Judgement::Refused(_)))
                });
                sending && !done && liveness(d).alive
            })
            .map(|d| {
                let rate = self.rate_of(&d);
                Receiver {
                    weight: rate.unwrap_or(self.requests_of(&d) as f64),
                    rate,
                    driver_id: d,
                }
            })
            .collect()
    }

    /// Keeps a hand-over: a replacement becomes a participant (joining at `joins`), and a
    /// paced hand-over is also a pace change in the test's history.
    fn record(&mut self, h: HandOver, joins: Instant) {
        if let Some(r) = &h.replacement {
            self.drivers.push(r.clone());
            self.parts.insert(r.clone(), Default::default());
            self.joined.insert(r.clone(), joins);
        }
        let paced = h.parts.values().any(|p| p.rate.is_some());
        self.hand_overs.push(h.clone());
        if paced {
            // Every participant still sending, at its pace from the hand-over on.
            let rates: BTreeMap<String, f64> = (self.active_drivers().into_iter())
                .filter_map(|d| {
                    let new = h.parts.get(&d).and_then(|p| p.rate);
                    Some((d.clone(), new.or_else(|| self.rate_of(&d))?))
                })
                .collect();
            self.rate_changes.push(RateChange {
                seq: h.seq,
                requested_at_ms: h.decided_at_ms,
                at_ms: h.at_ms,
                input: Default::default(),
                rates,
            });
        }
    }

    /// The hand-overs as the view shows them.
    pub(super) fn hand_over_history(&self) -> Vec<HandOverView> {
        let took = self.parts.iter().filter_map(|(id, p)| {
            let r = p.report.as_ref()?;
            let shift_ms =
                p.clock.map_or(0, super::super::clock::Offset::applied_us) as f64 / 1000.0;
            Some((id.as_str(), &r.hand_overs[..], shift_ms))
        });
        let took: Vec<_> = took.collect();
        hand_over::history(&self.hand_overs, took.iter().copied(), |from| {
            let p = self.parts.get(from)?;
            let r = p.report.as_ref().filter(|r| r.is_final && r.counted)?;
            Some(r.requests_sent)
        })
    }
}

/// The config a replacement joins with: the test's, with the participants as they are now and
/// its own share (the lost driver's unsent requests at the lost driver's pace).
fn replacement_config(
    spec: &TestSpec,
    id: &str,
    drivers: &[String],
    replacement: &str,
    h: &HandOver,
    mean_rate: Option<f64>,
) -> TestConfig {
    let mut with = drivers.to_vec();
    with.retain(|d| d != &h.from);
    with.push(replacement.to_string());
    let mut config = spec.to_config(id, &with, "");
    config.orchestrator_id = None;
    let rate = h.parts.get(replacement).and_then(|p| p.rate);
    let rate_scale = match (rate, mean_rate) {
        (Some(r), Some(mean)) if mean > 0.0 => r / mean,
        _ => 1.0,
    };
    config.shares = BTreeMap::from([(
        replacement.to_string(),
        ConfigShare {
            request_count: Some(h.unsent),
            rate_scale,
        },
    )]);
    config
}

#[cfg(test)]
#[path = "run_hand_over_tests.rs"]
mod tests;
