//! Thresholds on a test run: the verdict on the exact merge of its drivers' data, and the live
//! abort of an `abort_on_fail` threshold.

use super::super::registry::Liveness;
use super::super::run::{Policy, TestRun};
use super::super::spec::{parse_input, TestSpec};
use crate::engine::Snapshot;
use crate::model::TestStatus;
use crate::protocol::MetricsReport;
use crate::thresholds::eval::{State, Verdict};
use std::time::{Duration, Instant};

fn spec(thresholds: serde_json::Value) -> TestSpec {
    let body = serde_json::json!({"test_type": "avalanche", "requests_per_driver": 4,
        "target_url": "http://127.0.0.1:1/", "thresholds": thresholds});
    parse_input(body.to_string().as_bytes())
        .expect("parse")
        .validate()
        .expect("valid")
}

fn report(node: &str, seq: u64, is_final: bool, latencies_us: &[u64]) -> MetricsReport {
    let mut snap = Snapshot {
        requests: 4,
        sent: latencies_us.len() as u64,
        ..Default::default()
    };
    snap.elapsed = Duration::from_millis(1000);
    for &us in latencies_us {
        snap.recorder.latency.record(us);
        snap.recorder.status.record(200);
    }
    let mut r = crate::driver::reporter_for_tests(node, "t", &snap, is_final);
    r.seq = seq;
    r
}

fn alive(_: &str) -> Liveness {
    Liveness {
        alive: true,
        test_id: Some("t".into()),
        floodgate: true,
        silent_for: Duration::ZERO,
        test_for: Duration::ZERO,
    }
}

fn running(thresholds: serde_json::Value) -> (TestRun, Instant) {
    let drivers = vec!["a".to_string(), "b".to_string()];
    let mut run = TestRun::new("t".into(), spec(thresholds), drivers, 0, Policy::default());
    let t0 = Instant::now();
    run.start(1, t0);
    (run, t0)
}

#[test]
fn the_verdict_is_taken_on_the_merged_histogram_once_the_test_ends() {
    // a: four fast responses; b: three slow ones and a fast one. The median of all eight is
    // fast (1 ms); the mean of the two drivers' medians would be ~30 ms.
    let (mut run, t0) = running(serde_json::json!([
        "median < 2ms",
        "p99 >= 70ms",
        "max <= 70ms",
        "error_rate == 0",
        "rps == 8",
        "p99 < 1ms"
    ]));
    run.apply(report("a", 1, false, &[1_000]), t0).expect("a1");
    let live = run.view(t0).thresholds.expect("thresholds");
    assert_eq!(live.verdict, Verdict::Pending, "{live:?}");
    run.apply(report("a", 2, true, &[1_000, 1_000, 1_000, 2_000]), t0)
        .expect("a2");
    run.apply(report("b", 1, true, &[50_000, 60_000, 70_000, 1_000]), t0)
        .expect("b1");
    assert!(run.evaluate(t0, 9, alive));
    let v = run.freeze(t0);
    assert_eq!(v.status, TestStatus::Completed);
    let t = v.thresholds.expect("thresholds");
    assert_eq!(t.verdict, Verdict::Failed);
    let states: Vec<State> = t.results.iter().map(|o| o.state).collect();
    use State::{Failed, Passed};
    assert_eq!(states, [Passed, Passed, Passed, Passed, Passed, Failed]);
    assert_eq!(t.results[0].measured, v.aggregate.latency.median_ms);
    assert_eq!(t.results[4].measured, Some(8.0));
    assert_eq!(t.aborted_by, None);
}

#[test]
fn an_aborting_threshold_stops_the_test_after_its_delay_and_stays_failed() {
    let (mut run, t0) = running(serde_json::json!([
        "max < 1s",
        {"threshold": "p99 < 10ms", "abort_on_fail": true, "delay": "2s"},
    ]));
    run.apply(report("a", 1, false, &[50_000]), t0).expect("a1");
    assert!(
        !run.check_abort(t0 + Duration::from_millis(1999), 5),
        "not due yet"
    );
    assert_eq!(run.status(), TestStatus::Running);
    assert!(run.check_abort(t0 + Duration::from_secs(2), 6));
    assert_eq!(run.status(), TestStatus::Stopped);
    let v = run.view(t0 + Duration::from_secs(2));
    let reason = v.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("\"p99 < 10ms\"") && reason.contains("50.0"),
        "{reason}"
    );
    assert_eq!(
        v.thresholds.as_ref().map(|t| t.verdict),
        Some(Verdict::Failed)
    );
    // Later, faster reports bring p99 back under the limit: the threshold that stopped the
    // test stays failed; the other is taken on the final data.
    let later = t0 + Duration::from_secs(3);
    run.apply(report("a", 2, true, &[1_000; 200]), later)
        .expect("a2");
    run.apply(report("b", 1, true, &[1_000; 200]), later)
        .expect("b1");
    assert!(
        run.evaluate(later, 9, alive),
        "settled: every final report is in"
    );
    let t = run.freeze(later).thresholds.expect("thresholds");
    assert_eq!(t.verdict, Verdict::Failed);
    assert_eq!(t.aborted_by.as_deref(), Some("p99 < 10ms"));
    let aborted = &t.results[1];
    assert!(
        aborted.aborted && aborted.state == State::Failed,
        "{aborted:?}"
    );
    assert_eq!(t.results[0].state, State::Passed);
    assert!(
        !run.check_abort(later, 10),
        "an ended test is not aborted again"
    );
}

#[test]
fn a_name_scoped_threshold_is_refused_without_a_mix() {
    let body = serde_json::json!({"test_type": "avalanche", "requests_per_driver": 4,
        "target_url": "http://127.0.0.1:1/", "thresholds": ["p99 < 1s", "home: p99 < 1s"]});
    let e = parse_input(body.to_string().as_bytes())
        .expect("parse")
        .validate()
        .expect_err("no mix");
    assert_eq!(e.field, "thresholds[1]");
}
