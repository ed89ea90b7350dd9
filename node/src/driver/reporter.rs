//! Turns engine snapshots into cumulative, sequenced metrics reports for one (test, node).

use crate::engine::Snapshot;
use crate::protocol::{now_unix_ms, LatencyFields, MetricsReport};
use crate::stats;

pub struct Reporter {
    node_id: String,
    test_id: String,
    seq: u64,
}

impl Reporter {
    pub fn new(node_id: &str, test_id: &str) -> Self {
        Self {
            node_id: node_id.to_string(),
            test_id: test_id.to_string(),
            seq: 0,
        }
    }

    /// The next report; each has a higher `seq` than the last, so the newest always wins.
    pub fn report(&mut self, snap: &Snapshot, is_final: bool) -> MetricsReport {
        self.seq += 1;
        let lat = &snap.recorder.latency;
        let s = lat.summary();
        MetricsReport {
            node_id: self.node_id.clone(),
            test_id: self.test_id.clone(),
            report_id: uuid::Uuid::new_v4().to_string(),
            metrics: LatencyFields {
                mean_latency: s.mean_ms,
                median_latency: s.median_ms,
                min_latency: s.min_ms,
                max_latency: s.max_ms,
                mode_latency: s.mode_ms,
                p90_latency: s.p90_ms,
                p95_latency: s.p95_ms,
                p99_latency: s.p99_ms,
            },
            seq: self.seq,
            is_final,
            requests_sent: snap.sent,
            responses_received: snap.responses(),
            errors: snap.recorder.errors,
            status: snap.recorder.status,
            requests_total: snap.requests_total,
            latency_sum_us: lat.sum_us,
            service_sum_us: snap.recorder.service.sum_us,
            elapsed_us: u64::try_from(snap.elapsed.as_micros()).unwrap_or(u64::MAX),
            histogram: Some(stats::encode(&lat.histogram)),
            service_histogram: Some(stats::encode(&snap.recorder.service.histogram)),
            timestamp_ms: Some(now_unix_ms()),
        }
    }

    /// A final report for a test that could not start at all: every request counts as a
    /// connect error, so the orchestrator sees the test end instead of waiting for it.
    pub fn failed_to_start(&mut self, requests: u64) -> MetricsReport {
        let mut snap = Snapshot {
            requests_total: requests,
            done: true,
            ..Default::default()
        };
        snap.recorder.errors.connect = requests;
        self.report(&snap, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_sequenced_and_carry_exact_fields() {
        let mut snap = Snapshot {
            requests_total: 3,
            sent: 3,
            ..Default::default()
        };
        for us in [1_000, 2_000, 6_000] {
            snap.recorder.latency.record(us);
            snap.recorder.status.record(200);
        }
        let mut r = Reporter::new("n", "t");
        let a = r.report(&snap, false);
        let b = r.report(&snap, true);
        assert_eq!((a.seq, b.seq, b.is_final), (1, 2, true));
        assert_ne!(a.report_id, b.report_id);
        assert_eq!(b.latency_sum_us, 9_000);
        assert_eq!(
            (
                b.metrics.min_latency,
                b.metrics.max_latency,
                b.metrics.mean_latency
            ),
            (1.0, 6.0, 3.0)
        );
        let h = stats::decode(b.histogram.as_deref().unwrap_or("")).expect("decodes");
        assert_eq!(h.len(), 3);
        let f = r.failed_to_start(7);
        assert_eq!(
            (f.errors.connect, f.requests_total, f.is_final),
            (7, 7, true)
        );
    }
}
