//! One driver's part in a test: the reports it sent (from any implementation, made cumulative
//! and ordered), its latency figures, and the pure decision of whether its part has ended and
//! how: a final report, a status word, a count reached, or a quiet period; or lost.

use super::clock::{DriverStart, Offset};
use super::registry::Liveness;
pub use crate::model::Ended;
use crate::protocol::{MetricsReport, RunState};
use crate::stats::{self, Latency, LatencySource, LatencyStats};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The rules a part is judged by; the durations are documented in docs/protocol.md.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// Requests each driver was told to send.
    pub requests: u64,
    /// The shortest quiet period after which a driver that gives no completion signal is done.
    pub quiet: Duration,
    /// The gap between two requests of one driver (Tsunami delay or 1/rate), zero if unpaced.
    pub gap: Duration,
    /// A Floodgate driver that neither reports nor says it runs the test this long after the
    /// start never got the trigger.
    pub no_start: Duration,
    /// A driver of another implementation that has sent no report this long after the start.
    pub no_report: Duration,
    /// A Floodgate driver that reported for the test but whose heartbeats have named no test
    /// (or another one) this long has stopped running it without a final report: restarted.
    pub not_running: Duration,
}

/// Where a part stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    Pending,
    Done(Ended),
    Refused(String),
    Lost(String),
}

#[derive(Clone, Debug, Default)]
pub struct Part {
    pub report: Option<MetricsReport>,
    /// The held report's order: its `seq`, or its arrival number if the sender numbers nothing.
    pub order: u64,
    pub latency: Latency,
    pub service: Latency,
    /// How late its paced requests left (empty when unpaced, or from another implementation).
    pub lag: Latency,
    /// Connect and TLS handshake times of the connections it opened (empty from another
    /// implementation).
    pub connect: Latency,
    pub tls: Latency,
    /// A request mix's latency by name (empty without one).
    pub by_request: BTreeMap<String, Latency>,
    /// When the held report arrived, and when the reports last said something new.
    pub received_at: Option<Instant>,
    changed_at: Option<Instant>,
    /// The time between the last two reports that arrived.
    report_gap: Option<Duration>,
    /// Fixed once the part has ended (a lost driver whose final report arrives later still
    /// becomes done: the report wins).
    pub judged: Option<Judgement>,
    /// The driver's clock offset as estimated when its first send was first reported, kept so
    /// that its start does not move as later (busier) exchanges come in.
    pub clock: Option<Offset>,
}

/// Why a report was not applied.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    /// From a node that is not a participant.
    NotParticipant,
    /// Not newer than what is already held (a duplicate or a reordered report).
    Stale,
    /// After the test finished.
    Finished,
    /// A histogram that does not decode.
    Malformed(String),
}

impl Part {
    /// When its first request left, on the orchestrator's clock; `None` before it reported one.
    pub fn start(&self) -> Option<DriverStart> {
        let first = self.report.as_ref()?.first_send_us?;
        Some(super::clock::driver_start(first, self.clock))
    }

    /// Keeps the driver's clock estimate once it has reported its first send.
    pub fn note_clock(&mut self, clock: Option<Offset>) {
        let started = self
            .report
            .as_ref()
            .is_some_and(|r| r.first_send_us.is_some());
        if started && self.clock.is_none() {
            self.clock = clock;
        }
    }

    /// Whether the sender numbers its reports (Floodgate's drivers do; others do not).
    pub fn sequenced(&self) -> bool {
        self.report.as_ref().is_some_and(|r| r.seq > 0)
    }

    /// Takes a report if it is newer than the one held: a higher `seq`, or for reports without
    /// one, a later arrival. A final report is never replaced.
    pub fn apply(&mut self, report: MetricsReport, now: Instant) -> Result<(), Rejected> {
        let held = self.report.as_ref();
        if held.is_some_and(|h| h.is_final) {
            return Err(Rejected::Stale);
        }
        let order = if report.seq > 0 {
            if report.seq <= self.order {
                return Err(Rejected::Stale);
            }
            report.seq
        } else {
            self.order + 1
        };
        let report = normalize(report, held);
        let changed = held.is_none_or(|h| differs(h, &report));
        let decode = |h: &Option<String>| {
            stats::decode(h.as_deref().unwrap_or("")).map_err(Rejected::Malformed)
        };
        let lat_h = decode(&report.histogram)?;
        let svc_h = decode(&report.service_histogram)?;
        let lag_h = decode(&report.lag_histogram)?;
        let connect_h = decode(&report.handshakes.connect_histogram)?;
        let tls_h = decode(&report.handshakes.tls_histogram)?;
        let mut by_request = BTreeMap::new();
        for (name, n) in &report.by_request {
            let h = decode(&n.histogram)?;
            by_request.insert(
                name.clone(),
                Latency::from_parts(h, n.latency_sum_us, 0.0, 0.0),
            );
        }
        let m = &report.metrics;
        self.latency = Latency::from_parts(
            lat_h,
            report.latency_sum_us,
            m.min_latency.unwrap_or(0.0),
            m.max_latency.unwrap_or(0.0),
        );
        self.service = Latency::from_parts(svc_h, report.service_sum_us, 0.0, 0.0);
        self.lag = Latency::from_parts(lag_h, report.lag_sum_us, 0.0, 0.0);
        self.connect = Latency::from_parts(connect_h, report.handshakes.connect_sum_us, 0.0, 0.0);
        self.tls = Latency::from_parts(tls_h, report.handshakes.tls_sum_us, 0.0, 0.0);
        self.by_request = by_request;
        if changed && report.has_progress() {
            self.changed_at = Some(now);
        }
        if let Some(prev) = self.received_at {
            self.report_gap = Some(now.saturating_duration_since(prev));
        }
        self.received_at = Some(now);
        self.order = order;
        if report.is_final {
            self.judged = None;
        }
        self.report = Some(report);
        Ok(())
    }

    /// Whether this part has ended, and how. Pure: time and liveness are passed in.
    pub fn judge(
        &self,
        live: &Liveness,
        test_id: &str,
        since_start: Duration,
        now: Instant,
        rules: &Rules,
    ) -> Judgement {
        if let Some(j @ (Judgement::Done(_) | Judgement::Refused(_))) = &self.judged {
            return j.clone();
        }
        if let Some(r) = &self.report {
            if r.test_status == Some(RunState::Refused) {
                let why = r.reason.as_deref().unwrap_or("no reason given");
                return Judgement::Refused(why.to_string());
            }
            if r.is_final {
                return Judgement::Done(Ended::Final);
            }
            if r.seq == 0 {
                if r.test_status.is_some_and(RunState::is_end) {
                    return Judgement::Done(Ended::Status);
                }
                if r.counted && rules.requests > 0 && r.requests_sent >= rules.requests {
                    return Judgement::Done(Ended::Count);
                }
                // A driver gone silent that counted fewer requests than asked died mid-test.
                let short_and_gone = r.counted && r.requests_sent < rules.requests && !live.alive;
                if let Some(changed) = self.changed_at.filter(|_| !short_and_gone) {
                    if now.saturating_duration_since(changed) >= self.quiet_period(rules) {
                        return Judgement::Done(Ended::Quiet);
                    }
                }
            }
        }
        if !live.alive {
            return Judgement::Lost(format!(
                "no heartbeat or report for {} ms",
                live.silent_for.as_millis()
            ));
        }
        // A driver restarted mid-test comes back alive, under the same ID, running nothing.
        let started = self.report.is_some();
        if started
            && live.floodgate
            && live.test_id.as_deref() != Some(test_id)
            && live.test_for >= rules.not_running
        {
            return Judgement::Lost(format!(
                "alive but no longer running the test, and no final report, for {} s \
                 (restarted?)",
                live.test_for.as_secs()
            ));
        }
        if self.report.is_none() {
            if live.floodgate {
                if live.test_id.as_deref() != Some(test_id) && since_start > rules.no_start {
                    return Judgement::Lost(format!(
                        "alive but never started the test ({} s after the start)",
                        rules.no_start.as_secs()
                    ));
                }
            } else if since_start > rules.no_report {
                return Judgement::Lost(format!(
                    "sent no report within {} s of the start",
                    rules.no_report.as_secs()
                ));
            }
        }
        Judgement::Pending
    }

    /// How long a driver without a completion signal must stay unchanged to be done: the
    /// configured minimum, or three of its own report intervals or request gaps if longer.
    pub fn quiet_period(&self, rules: &Rules) -> Duration {
        let by_reports = self.report_gap.unwrap_or_default() * 3;
        rules.quiet.max(by_reports).max(rules.gap * 3)
    }

    /// The figures shown for this driver: exact from its histogram, or as it reported them.
    pub fn figures(&self) -> LatencyStats {
        if self.latency.count() > 0 {
            return LatencyStats::exact(&self.latency);
        }
        let Some(r) = &self.report else {
            return LatencyStats::exact(&self.latency);
        };
        let m = &r.metrics;
        if !m.any() {
            return LatencyStats::exact(&self.latency);
        }
        LatencyStats {
            count: if r.counted { r.responses_received } else { 0 },
            min_ms: m.min_latency,
            max_ms: m.max_latency,
            mean_ms: m.mean_latency,
            median_ms: m.median_latency,
            mode_ms: m.mode_latency,
            p90_ms: m.p90_latency,
            p95_ms: m.p95_latency,
            p99_ms: m.p99_latency,
            source: LatencySource::Summary,
            not_mergeable: None,
        }
    }
}

/// Makes a report from another implementation look like Floodgate's: a per-report count
/// (`no_of_req`) becomes cumulative, and raw `latencies` become an exact histogram.
pub fn normalize(mut r: MetricsReport, held: Option<&MetricsReport>) -> MetricsReport {
    if let (Some(delta), false) = (r.count_delta.take(), r.counted) {
        let before = held.filter(|h| h.counted).map_or(0, |h| h.requests_sent);
        r.requests_sent = before.saturating_add(delta);
        r.responses_received = r.requests_sent;
        r.counted = true;
    }
    if let Some(samples) = r.samples_ms.take() {
        if r.histogram.is_none() && !samples.is_empty() {
            let mut l = Latency::default();
            for ms in &samples {
                l.record((ms * 1000.0).round() as u64);
            }
            r.histogram = Some(stats::encode(&l.histogram));
            r.latency_sum_us = l.sum_us;
            if !r.counted {
                r.requests_sent = l.count();
                r.responses_received = l.count();
                r.counted = true;
            }
        }
    }
    r
}

/// Whether a report says something its predecessor did not (counts or latencies moved).
fn differs(a: &MetricsReport, b: &MetricsReport) -> bool {
    a.requests_sent != b.requests_sent
        || a.responses_received != b.responses_received
        || a.metrics != b.metrics
        || a.histogram != b.histogram
        || a.test_status != b.test_status
}

#[cfg(test)]
#[path = "part_tests.rs"]
mod tests;
