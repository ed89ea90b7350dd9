//! Tests of one driver's part: ordering of reports from any implementation, and the decision
//! table of when a part has ended.

use super::*;
use crate::protocol::{self, MetricsReport};

const S: Duration = Duration::from_secs(1);

fn rules() -> Rules {
    Rules {
        requests: 100,
        quiet: 5 * S,
        gap: Duration::ZERO,
        no_start: 15 * S,
        no_report: 120 * S,
        not_running: 10 * S,
    }
}

fn seed(json: &str) -> MetricsReport {
    protocol::parse(json.as_bytes()).expect("a report")
}

fn floodgate(seq: u64, is_final: bool) -> MetricsReport {
    let mut r = seed(r#"{"node_id":"d","test_id":"t","requests_sent":10,"responses_received":10}"#);
    r.seq = seq;
    r.is_final = is_final;
    r
}

fn live(alive: bool, floodgate: bool, test: Option<&str>) -> Liveness {
    Liveness {
        alive,
        test_id: test.map(str::to_string),
        floodgate,
        silent_for: if alive { S } else { 20 * S },
        test_for: 30 * S,
    }
}

/// Alive and Floodgate's, its heartbeats naming `test` for `secs` seconds.
fn beating(test: Option<&str>, secs: u32) -> Liveness {
    Liveness {
        test_for: S * secs,
        ..live(true, true, test)
    }
}

#[test]
fn reports_without_seq_are_kept_by_arrival_and_sequenced_ones_by_seq() {
    let t0 = Instant::now();
    let mut p = Part::default();
    for mean in [1, 2, 3] {
        let r = seed(&format!(
            r#"{{"node_id":"d","test_id":"t","report_id":"","metrics":{{"mean_latency":{mean}}}}}"#
        ));
        p.apply(r, t0)
            .expect("every seed report is newer than the last");
    }
    assert_eq!(p.order, 3);
    assert_eq!(
        p.report.as_ref().and_then(|r| r.metrics.mean_latency),
        Some(3.0)
    );

    let mut p = Part::default();
    p.apply(floodgate(2, false), t0).expect("seq 2");
    assert_eq!(p.apply(floodgate(1, false), t0), Err(Rejected::Stale));
    assert_eq!(p.apply(floodgate(2, false), t0), Err(Rejected::Stale));
    p.apply(floodgate(3, true), t0).expect("final");
    assert_eq!(
        p.apply(floodgate(9, false), t0),
        Err(Rejected::Stale),
        "a final report stays"
    );
}

#[test]
fn a_per_report_count_becomes_cumulative_and_raw_latencies_a_histogram() {
    let t0 = Instant::now();
    let mut p = Part::default();
    for n in [3, 4] {
        let r = seed(&format!(
            r#"{{"node_id":"d","test_id":"t","no_of_req":{n},"metrics":{{"mean_latency":2}}}}"#
        ));
        p.apply(r, t0).expect("applies");
    }
    let r = p.report.as_ref().expect("held");
    assert_eq!((r.requests_sent, r.counted), (7, true));

    let mut p = Part::default();
    p.apply(
        seed(r#"{"node_id":"d","test_id":"t","latencies":[1.0,2.0,3.0,10.0],"metrics":{"mean_latency":4,"min_latency":1,"max_latency":10}}"#),
        t0,
    )
    .expect("applies");
    let f = p.figures();
    assert_eq!(f.source, crate::stats::LatencySource::Histogram);
    assert_eq!(
        (f.count, f.min_ms, f.max_ms, f.mean_ms),
        (4, Some(1.0), Some(10.0), Some(4.0))
    );
    assert_eq!(f.median_ms, Some(2.0), "exact, from the raw samples");
}

/// One row of the decision table: what was received, the driver's liveness, seconds since the
/// start and since the report, and the judgement wanted.
struct Case(
    &'static str,
    Option<MetricsReport>,
    Liveness,
    u64,
    u64,
    Judgement,
);

#[test]
fn when_a_part_has_ended_decision_table() {
    let t0 = Instant::now();
    let status = |s: &str| {
        seed(&format!(
            r#"{{"node_id":"d","test_id":"t","test_status":"{s}","metrics":{{"mean_latency":1}}}}"#
        ))
    };
    let count = |n: u64| {
        seed(&format!(
            r#"{{"node_id":"d","test_id":"t","num_requests":{n},"metrics":{{"mean_latency":1}}}}"#
        ))
    };
    let bare = seed(
        r#"{"node_id":"d","test_id":"t","report_id":"","metrics":{"mean_latency":1.5,"median_latency":1.2,"min_latency":0.4,"max_latency":9}}"#,
    );
    let zeros = seed(
        r#"{"node_id":"d","test_id":"t","metrics":{"mean_latency":0,"median_latency":0,"min_latency":0,"max_latency":0}}"#,
    );
    let mut refused = floodgate(1, true);
    refused.test_status = Some(RunState::Refused);
    refused.reason = Some("no target URL".into());
    let lost = |why: &str| Judgement::Lost(why.to_string());
    use Judgement::{Done, Pending};
    #[rustfmt::skip]
    let cases = [
        Case("floodgate final", Some(floodgate(4, true)), live(false, true, None), 30, 0, Done(Ended::Final)),
        Case("floodgate progress", Some(floodgate(3, false)), live(true, true, Some("t")), 30, 20, Pending),
        Case("refused", Some(refused), live(true, true, None), 1, 0, Judgement::Refused("no target URL".into())),
        Case("status complete", Some(status("complete")), live(true, false, None), 1, 0, Done(Ended::Status)),
        Case("status done", Some(status("DONE")), live(true, false, None), 1, 0, Done(Ended::Status)),
        Case("status running", Some(status("running")), live(true, false, None), 1, 1, Pending),
        Case("count reached", Some(count(100)), live(true, false, None), 1, 0, Done(Ended::Count)),
        Case("count short", Some(count(99)), live(true, false, None), 1, 1, Pending),
        Case("count short and gone", Some(count(50)), live(false, false, None), 30, 20, lost("no heartbeat or report for 20000 ms")),
        Case("quiet not yet", Some(bare.clone()), live(true, false, None), 10, 4, Pending),
        Case("quiet", Some(bare.clone()), live(true, false, None), 10, 5, Done(Ended::Quiet)),
        Case("quiet even if gone", Some(bare), live(false, false, None), 30, 6, Done(Ended::Quiet)),
        Case("zeros say nothing", Some(zeros), live(true, false, None), 10, 9, Pending),
        Case("seed driver silent", None, live(true, false, None), 119, 0, Pending),
        Case("seed driver never reports", None, live(true, false, None), 121, 0, lost("sent no report within 120 s of the start")),
        Case("floodgate never started", None, live(true, true, None), 16, 0, lost("alive but never started the test (15 s after the start)")),
        Case("floodgate starting", None, live(true, true, Some("t")), 16, 0, Pending),
        Case("gone", Some(floodgate(2, false)), live(false, true, Some("t")), 30, 20, lost("no heartbeat or report for 20000 ms")),
        // Restarted under the same ID: alive, beating, running nothing, and no final report.
        Case("restarted, just now", Some(floodgate(2, false)), beating(None, 9), 30, 10, Pending),
        Case("restarted", Some(floodgate(2, false)), beating(None, 10), 30, 10, lost("alive but no longer running the test, and no final report, for 10 s (restarted?)")),
        Case("running another test", Some(floodgate(2, false)), beating(Some("u"), 12), 30, 10, lost("alive but no longer running the test, and no final report, for 12 s (restarted?)")),
        Case("finished, final report on its way", Some(floodgate(2, false)), beating(None, 3), 30, 3, Pending),
        Case("restarted, final report arrived", Some(floodgate(3, true)), beating(None, 30), 30, 0, Done(Ended::Final)),
    ];
    for Case(name, report, liveness, since_start, since_report, want) in cases {
        let mut p = Part::default();
        let now = t0 + 200 * S;
        if let Some(r) = report {
            p.apply(r, now - S * since_report as u32).expect(name);
        }
        let start = S * since_start as u32;
        assert_eq!(
            p.judge(&liveness, "t", start, now, &rules()),
            want,
            "{name}"
        );
    }
}

#[test]
fn the_quiet_period_stretches_to_three_report_intervals_or_request_gaps() {
    let t0 = Instant::now();
    let mut p = Part::default();
    let r = |mean: u32| {
        seed(&format!(
            r#"{{"node_id":"d","test_id":"t","metrics":{{"mean_latency":{mean}}}}}"#
        ))
    };
    p.apply(r(1), t0).expect("first");
    p.apply(r(2), t0 + 4 * S).expect("second, 4 s later");
    assert_eq!(p.quiet_period(&rules()), 12 * S);
    let slow = Rules {
        gap: 10 * S,
        ..rules()
    };
    assert_eq!(p.quiet_period(&slow), 30 * S);
    let l = live(true, false, None);
    assert_eq!(
        p.judge(&l, "t", 20 * S, t0 + 15 * S, &rules()),
        Judgement::Pending
    );
    assert_eq!(
        p.judge(&l, "t", 20 * S, t0 + 16 * S, &rules()),
        Judgement::Done(Ended::Quiet)
    );
}
