//! Tests of a test run's state machine and of exact aggregation across drivers.

use super::*;
use crate::driver::plan_for;
use crate::engine::Snapshot;
use crate::model::{DriverState, Ended, ReportFormat};
use crate::orchestrator::spec::parse_input;
use crate::stats::{Latency, LatencySource, LatencyStats};

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
        requests: 4,
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
        floodgate: true,
        silent_for: Duration::ZERO,
        test_for: Duration::ZERO,
    }
}

fn running(drivers: &[&str]) -> (TestRun, Instant) {
    let mut run = TestRun::new(
        "t".into(),
        spec(4),
        drivers.iter().map(|d| d.to_string()).collect(),
        0,
        Policy::default(),
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
    assert_eq!(a.latency, LatencyStats::exact(&raw));
    assert_eq!(a.latency.median_ms, Some(1.0));
    assert_eq!(a.latency.mean_ms, Some(23.25));
    assert_eq!(a.latency.mode_ms, Some(1.05));
    assert_eq!(a.service_time.mean_ms, Some(23.25 / 2.0));
    assert_eq!(a.achieved_rps, 8.0);
    assert_eq!(a.progress, 1.0);
    assert!(v.per_driver.iter().all(|d| d.state == DriverState::Done));
    assert_eq!(v.per_driver[1].stats.latency.max_ms, Some(70.0));
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
    // The schedule lag's histogram (an extension) is held to the same rule, and nothing of a
    // report it spoils is taken.
    let mut bad_lag = report("b", 1, false, &[1]);
    bad_lag.lag_histogram = Some("garbage!".into());
    assert!(matches!(
        run.apply(bad_lag, t0),
        Err(Rejected::Malformed(_))
    ));
    assert_eq!(run.view(t0).aggregate.sent, 2);
}

#[test]
fn a_lost_driver_fails_the_test_with_partial_results_once_the_others_finish() {
    let (mut run, t0) = running(&["a", "b"]);
    run.apply(report("a", 1, false, &[1_000]), t0).expect("a");
    run.apply(report("b", 1, false, &[1_000]), t0).expect("b");
    let b_lost = |id: &str| Liveness {
        alive: id != "b",
        ..alive(id)
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
    let idle = |id: &str| Liveness {
        test_id: None,
        ..alive(id)
    };
    assert!(!run.evaluate(t0 + Duration::from_secs(5), 2, idle));
    assert!(run.evaluate(t0 + Duration::from_secs(16), 3, idle));
    assert_eq!(run.status, TestStatus::Failed);
}

#[test]
fn a_stop_ends_the_test_at_once_and_late_final_reports_still_count() {
    let (mut run, t0) = running(&["a", "b"]);
    run.apply(report("a", 1, false, &[1]), t0).expect("a");
    run.stop(t0, 7);
    assert_eq!(
        (run.status, run.finished_at_ms),
        (TestStatus::Stopped, Some(7)),
        "stopped at once, whatever the drivers do"
    );
    assert!(
        !run.evaluate(t0, 8, alive),
        "settling: b's final report may still come"
    );
    run.apply(report("a", 2, true, &[1, 2]), t0)
        .expect("a final");
    run.apply(report("b", 1, true, &[3]), t0).expect("b final");
    assert!(run.evaluate(t0, 9, alive), "every final report is in");
    let v = run.freeze(t0);
    assert_eq!((v.status, v.aggregate.sent), (TestStatus::Stopped, 3));

    // Drivers that never answer: the settle window ends it.
    let (mut run, t0) = running(&["a", "b"]);
    run.stop(t0, 1);
    assert!(!run.evaluate(t0 + SETTLE - Duration::from_millis(1), 2, alive));
    assert!(run.evaluate(t0 + SETTLE, 3, alive));
    assert_eq!(run.freeze(t0).status, TestStatus::Stopped);

    // A test never triggered is simply cancelled.
    let mut created = TestRun::new(
        "c".into(),
        spec(4),
        vec!["a".into(), "b".into()],
        0,
        Policy::default(),
    );
    created.stop(t0, 1);
    assert!(!created.settling());
    assert_eq!(created.status, TestStatus::Stopped);
}

#[test]
fn a_driver_that_sent_less_than_its_share_makes_the_test_fail_not_complete() {
    let (mut run, t0) = running(&["a", "b"]);
    run.apply(report("a", 1, true, &[1, 1, 1, 1]), t0)
        .expect("a");
    let short = report("b", 1, true, &[1, 1]); // 2 of 4: stopped by SIGTERM, say
    assert_eq!(short.test_status, Some(crate::protocol::RunState::Stopped));
    run.apply(short, t0).expect("b");
    assert!(run.evaluate(t0, 2, alive));
    assert_eq!(run.status, TestStatus::Failed);
    assert!(
        run.reason.as_deref().unwrap_or("").contains("2 of 4"),
        "{:?}",
        run.reason
    );
}

#[test]
fn a_refusal_fails_the_test_with_the_drivers_reason() {
    let (mut run, t0) = running(&["a", "b"]);
    let mut r = crate::driver::reporter_for_tests("a", "t", &Snapshot::default(), true);
    r.test_status = Some(crate::protocol::RunState::Refused);
    r.reason = Some("the test names no target URL".into());
    run.apply(r, t0).expect("refusal");
    run.apply(report("b", 1, true, &[1, 1, 1, 1]), t0)
        .expect("b");
    assert!(run.evaluate(t0, 2, alive));
    assert_eq!(run.status, TestStatus::Failed);
    assert!(run
        .reason
        .as_deref()
        .unwrap_or("")
        .contains("a: the test names no target URL"));
    assert_eq!(run.view(t0).per_driver[0].state, DriverState::Refused);
}

/// A seed-format report: only the four latencies, no seq, no counts.
fn seed_report(node: &str, mean: f64, median: f64, min: f64, max: f64) -> MetricsReport {
    crate::protocol::parse(
        format!(
            r#"{{"node_id":"{node}","test_id":"t","report_id":"","metrics":{{"mean_latency":{mean},"median_latency":"{median}","min_latency":{min},"max_latency":{max}}}}}"#
        )
        .as_bytes(),
    )
    .expect("a seed report")
}

#[test]
fn a_mixed_fleet_aggregates_what_is_exact_and_names_what_is_not() {
    let (mut run, t0) = running(&["f", "s"]);
    run.apply(report("f", 1, true, &[1_000, 2_000, 3_000, 4_000]), t0)
        .expect("floodgate");
    run.apply(seed_report("s", 5.0, 4.0, 0.5, 20.0), t0)
        .expect("seed");
    let v = run.view(t0);
    // Per driver: the seed driver's values as it gave them.
    let s = &v.per_driver[1];
    assert_eq!(s.report_format, Some(ReportFormat::Seed));
    assert_eq!(
        (
            s.stats.latency.median_ms,
            s.stats.latency.source,
            s.stats.counted
        ),
        (Some(4.0), LatencySource::Summary, false)
    );
    assert_eq!(s.stats.latency.p99_ms, None, "never shown as zero");
    // Aggregate: min of mins, max of maxes; no median, no mean without the seed's count.
    let a = &v.aggregate.latency;
    assert_eq!((a.min_ms, a.max_ms), (Some(0.5), Some(20.0)));
    assert_eq!((a.median_ms, a.p99_ms, a.mean_ms), (None, None, None));
    assert_eq!(a.source, LatencySource::Mixed);
    let why = a.not_mergeable.as_ref().expect("a reason");
    assert!(why.fields.contains(&"median_ms".to_string()));
    assert!(
        why.reason.contains("s sent only summary figures"),
        "{}",
        why.reason
    );
    assert!(!v.aggregate.counted);

    // With the seed driver's count known, the mean is exact (weighted), the median still not.
    let (mut run, t0) = running(&["f", "s"]);
    run.apply(report("f", 1, true, &[1_000, 2_000, 3_000, 4_000]), t0)
        .expect("floodgate");
    let mut counted = seed_report("s", 5.0, 4.0, 0.5, 20.0);
    (
        counted.requests_sent,
        counted.responses_received,
        counted.counted,
    ) = (4, 4, true);
    run.apply(counted, t0).expect("seed");
    let a = run.view(t0).aggregate.latency;
    assert_eq!(a.mean_ms, Some((2.5 * 4.0 + 5.0 * 4.0) / 8.0));
    assert_eq!(a.count, 8);
    assert_eq!(a.median_ms, None);
}

#[test]
fn seed_drivers_complete_by_status_count_or_quiet_period() {
    let (mut run, t0) = running(&["a", "b", "c"]);
    let foreign = |_: &str| Liveness {
        alive: true,
        test_id: None,
        floodgate: false,
        silent_for: Duration::ZERO,
        test_for: Duration::ZERO,
    };
    let mut done = seed_report("a", 1.0, 1.0, 1.0, 1.0);
    done.test_status = Some(crate::protocol::RunState::Completed);
    run.apply(done, t0).expect("a");
    let mut count = seed_report("b", 1.0, 1.0, 1.0, 1.0);
    (count.requests_sent, count.counted) = (4, true);
    run.apply(count, t0).expect("b");
    run.apply(seed_report("c", 2.0, 2.0, 1.0, 3.0), t0)
        .expect("c");
    assert!(
        !run.evaluate(t0 + Duration::from_secs(4), 1, foreign),
        "c may still be running"
    );
    assert!(run.evaluate(t0 + Duration::from_secs(5), 2, foreign));
    assert_eq!(run.status, TestStatus::Completed);
    let ended: Vec<Option<Ended>> = run.view(t0).per_driver.iter().map(|d| d.ended_by).collect();
    assert_eq!(
        ended,
        [Some(Ended::Status), Some(Ended::Count), Some(Ended::Quiet)]
    );
}

#[test]
fn plan_for_uses_the_config() {
    let s = spec(7);
    let c = s.to_config("t", &["a".into()], "o");
    let p = plan_for(&c, 7, None, None).expect("plan");
    assert_eq!((p.requests, p.concurrency), (7, 50));
}

#[test]
fn plan_for_takes_the_mix_and_the_tests_checks() {
    let body = br#"{"test_type":"avalanche","requests_per_driver":8,
        "checks":{"json":[{"pointer":"/a","equals":1}]},
        "mix":[{"name":"home","url":"http://127.0.0.1:1/","weight":3},
               {"name":"gone","url":"http://127.0.0.1:1/x","checks":{"status":[404]}}]}"#;
    let s = parse_input(body).expect("parse").validate().expect("valid");
    let p = plan_for(&s.to_config("t", &["a".into()], "o"), 8, None, None).expect("plan");
    // Both entries with their weights, the second with its own checks; the test's checks read
    // bodies (a JSON check), which the default checker never does.
    let mix: Vec<(u32, bool)> = p
        .mix
        .iter()
        .map(|m| (m.weight, m.checker.is_some()))
        .collect();
    assert_eq!(mix, [(3, false), (1, true)]);
    assert!(p.checker.needs_body());
}

#[test]
fn a_part_that_sent_fewer_than_asked_is_never_completed_whatever_it_says() {
    let (mut run, t0) = running(&["a", "b"]);
    run.apply(report("a", 1, true, &[1_000; 4]), t0).expect("a");
    // b claims to have completed after 3 of its 4 requests (a peer's bug, or a stop it does not
    // call one).
    let mut b = report("b", 1, true, &[1_000; 3]);
    b.test_status = Some(RunState::Completed);
    b.reason = None;
    run.apply(b, t0).expect("b");
    assert!(run.evaluate(t0, 2, alive));
    assert_eq!(run.status, TestStatus::Failed);
    assert_eq!(
        run.reason.as_deref(),
        Some("not every request was sent (b: sent 3 of 4); the results are partial")
    );
}

/// A report of `sent` requests out of `requests`, final.
fn share_report(node: &str, requests: u64, sent: u64) -> MetricsReport {
    let mut snap = Snapshot {
        requests,
        sent,
        ..Default::default()
    };
    snap.elapsed = Duration::from_millis(1000);
    for _ in 0..sent {
        snap.recorder.latency.record(1_000);
        snap.recorder.status.record(200);
    }
    let mut r = crate::driver::reporter_for_tests(node, "t", &snap, true);
    r.seq = 1;
    r
}

#[test]
fn each_part_of_a_test_in_totals_is_judged_by_its_own_share() {
    use crate::orchestrator::split::{Member, SplitBy};
    let body = r#"{"test_type":"avalanche","total_requests":9,"target_url":"http://127.0.0.1:1/"}"#;
    let spec = parse_input(body.as_bytes())
        .expect("parse")
        .validate()
        .expect("valid");
    let members: Vec<Member> = [("a", 2.0), ("b", 1.0)]
        .iter()
        .map(|(id, c)| Member {
            id: id.to_string(),
            floodgate: true,
            capacity: Some(*c),
        })
        .collect();
    let spec = crate::orchestrator::spec_total::resolve(
        &spec,
        &members,
        &crate::protocol::limits::Caps::HARD,
    )
    .expect("resolves");
    let split = crate::orchestrator::spec_total::shared(&spec).cloned();
    assert_eq!(split.as_ref().map(|s| s.by), Some(SplitBy::Capacity));
    // (a's sent, b's sent, the status wanted): a's share is 6, b's 3.
    let cases = [
        (6, 3, TestStatus::Completed),
        // b sent a's mean, not its share: short.
        (4, 5, TestStatus::Failed),
        (6, 2, TestStatus::Failed),
    ];
    // The spec carries the shares, through the store too (a restarted orchestrator rebuilds
    // its running tests from the stored spec).
    let stored = serde_json::to_string(&spec).expect("stored");
    let spec: TestSpec = serde_json::from_str(&stored).expect("read back");
    for (a, b, want) in cases {
        let mut run = TestRun::new(
            "t".into(),
            spec.clone(),
            vec!["a".into(), "b".into()],
            0,
            Policy::default(),
        );
        let t0 = Instant::now();
        run.start(1, t0);
        run.apply(share_report("a", 6, a), t0).expect("a");
        run.apply(share_report("b", 3, b), t0).expect("b");
        assert!(run.evaluate(t0, 2, alive), "{a}/{b} ends");
        assert_eq!(run.status, want, "{a}/{b}: {:?}", run.reason);
        let v = run.view(t0);
        assert_eq!(v.aggregate.requests_total, 9);
        let totals: Vec<u64> = v
            .per_driver
            .iter()
            .map(|d| d.stats.requests_total)
            .collect();
        assert_eq!(totals, [6, 3]);
        assert_eq!(v.split, split);
    }
}
