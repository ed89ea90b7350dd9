//! Tests of a test run's state machine and of exact aggregation across drivers.

use super::*;
use crate::driver::plan_for;
use crate::engine::Snapshot;
use crate::orchestrator::spec::parse_input;

fn spec(requests: u64) -> TestSpec {
    let body = format!(
        r#"{{"test_type":"avalanche","requests_per_driver":{requests},"target_url":"http://127.0.0.1:1/"}}"#
    );
    parse_input(body.as_bytes())
        .expect("parse")
        .validate()
        .expect("valid")
}

/// A report as a driver would send it, from raw latencies in µs.
fn report(node: &str, seq: u64, is_final: bool, latencies_us: &[u64]) -> MetricsReport {
    let mut snap = Snapshot {
        requests_total: 4,
        sent: latencies_us.len() as u64,
        ..Default::default()
    };
    snap.elapsed = Duration::from_millis(1000);
    for &us in latencies_us {
        snap.recorder.latency.record(us);
        snap.recorder.service.record(us / 2);
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
    }
}

fn running(drivers: &[&str]) -> (TestRun, Instant) {
    let mut run = TestRun::new(
        "t".into(),
        spec(4),
        drivers.iter().map(|d| d.to_string()).collect(),
        0,
    );
    let t0 = Instant::now();
    run.start(1, t0);
    (run, t0)
}

#[test]
fn completes_when_every_final_report_is_in_and_aggregates_exactly() {
    let (mut run, t0) = running(&["a", "b"]);
    run.apply(report("a", 1, false, &[1_000]), t0).expect("a1");
    assert!(!run.evaluate(t0, 5, alive));
    run.apply(report("a", 2, true, &[1_000, 1_000, 1_000, 2_000]), t0)
        .expect("a2");
    run.apply(report("b", 1, true, &[50_000, 60_000, 70_000, 1_000]), t0)
        .expect("b1");
    assert!(run.evaluate(t0, 9, alive));
    assert_eq!(
        (run.status, run.finished_at_ms),
        (TestStatus::Completed, Some(9))
    );

    let v = run.view(t0);
    let a = &v.aggregate;
    assert_eq!(
        (a.requests_total, a.sent, a.responses, a.ok, a.error_total),
        (8, 8, 8, 8, 0)
    );
    // Exactly the statistics of the eight raw samples, not averages of per-driver values.
    let mut raw = Latency::default();
    for us in [1_000, 1_000, 1_000, 2_000, 50_000, 60_000, 70_000, 1_000] {
        raw.record(us);
    }
    assert_eq!(a.latency, raw.summary());
    assert_eq!(a.latency.median_ms, 1.0);
    assert_eq!(a.latency.mean_ms, 23.25);
    assert_eq!(a.latency.mode_ms, 1.05);
    assert_eq!(a.service_time.mean_ms, 23.25 / 2.0);
    assert_eq!(a.achieved_rps, 8.0);
    assert_eq!(a.progress, 1.0);
    assert!(v.per_driver.iter().all(|d| d.state == DriverState::Done));
    assert_eq!(v.per_driver[1].stats.latency.max_ms, 70.0);
}

#[test]
fn duplicates_reorders_and_strangers_are_harmless() {
    let (mut run, t0) = running(&["a", "b"]);
    run.apply(report("a", 3, false, &[1_000, 2_000]), t0)
        .expect("newest");
    assert_eq!(
        run.apply(report("a", 2, false, &[1_000]), t0),
        Err(Rejected::Stale)
    );
    assert_eq!(
        run.apply(report("a", 3, false, &[1_000, 2_000]), t0),
        Err(Rejected::Stale)
    );
    assert_eq!(
        run.apply(report("zed", 1, false, &[1]), t0),
        Err(Rejected::NotParticipant)
    );
    run.apply(report("a", 4, true, &[1_000, 2_000]), t0)
        .expect("final");
    assert_eq!(
        run.apply(report("a", 9, false, &[1]), t0),
        Err(Rejected::Stale),
        "a final report is never superseded"
    );
    let mut bad = report("b", 1, false, &[1]);
    bad.histogram = Some("garbage!".into());
    assert!(matches!(run.apply(bad, t0), Err(Rejected::Malformed(_))));
    assert_eq!(run.view(t0).aggregate.sent, 2);
}

#[test]
fn a_lost_driver_fails_the_test_with_partial_results_once_the_others_finish() {
    let (mut run, t0) = running(&["a", "b"]);
    run.apply(report("a", 1, false, &[1_000]), t0).expect("a");
    run.apply(report("b", 1, false, &[1_000]), t0).expect("b");
    let b_lost = |id: &str| Liveness {
        alive: id != "b",
        test_id: Some("t".into()),
    };
    assert!(!run.evaluate(t0, 2, b_lost), "a is still running");
    assert_eq!(run.view(t0).per_driver[1].state, DriverState::Lost);
    run.apply(report("a", 2, true, &[1_000, 1_000, 1_000, 1_000]), t0)
        .expect("a final");
    assert!(run.evaluate(t0, 3, b_lost));
    assert_eq!(run.status, TestStatus::Failed);
    assert!(run
        .reason
        .as_deref()
        .unwrap_or("")
        .contains("lost driver(s) b"));
    let v = run.freeze(t0);
    assert_eq!(
        v.aggregate.sent, 5,
        "what b sent before it was lost is kept"
    );
    assert_eq!(run.view(t0), v, "a frozen view does not change");
    assert_eq!(
        run.apply(report("b", 2, true, &[1]), t0),
        Err(Rejected::Finished),
        "phases only move forward"
    );
}

#[test]
fn a_driver_that_never_started_is_not_waited_for_forever() {
    let (mut run, t0) = running(&["a", "b"]);
    run.apply(report("a", 1, true, &[1_000]), t0).expect("a");
    let idle = |_: &str| Liveness {
        alive: true,
        test_id: None,
    };
    assert!(!run.evaluate(t0 + Duration::from_secs(5), 2, idle));
    assert!(run.evaluate(t0 + Duration::from_secs(16), 3, idle));
    assert_eq!(run.status, TestStatus::Failed);
}

#[test]
fn a_stopped_test_ends_as_stopped() {
    let (mut run, t0) = running(&["a", "b"]);
    run.stop_requested = true;
    run.apply(report("a", 1, true, &[1]), t0).expect("a");
    run.apply(report("b", 1, true, &[1]), t0).expect("b");
    assert!(run.evaluate(t0, 1, alive));
    assert_eq!(run.status, TestStatus::Stopped);
    assert!(
        !run.evaluate(t0, 2, alive),
        "a finished test never changes again"
    );
}

#[test]
fn plan_for_uses_the_config() {
    let s = spec(7);
    let c = s.to_config("t", &["a".into()], "o");
    let p = plan_for(&c, None, None).expect("plan");
    assert_eq!((p.requests, p.concurrency), (7, 50));
}
