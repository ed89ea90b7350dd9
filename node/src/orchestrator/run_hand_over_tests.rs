//! A test's hand-overs, on a run fed reports and liveness by hand.

use super::super::super::split::Member;
use super::super::*;
use crate::engine::Snapshot;
use crate::orchestrator::spec::parse_input;
use crate::protocol::limits::Caps;

/// 30 requests at 30/s in total over a, b and c (10 each at 10/s), with `fail_safe_ms`.
fn shared_run(fail_safe_ms: u64) -> (TestRun, Instant) {
    let body = format!(
        r#"{{"test_type":"avalanche","total_requests":30,"total_rate":30,
            "fail_safe_ms":{fail_safe_ms},"target_url":"http://127.0.0.1:1/"}}"#
    );
    let spec = parse_input(body.as_bytes()).expect("parse");
    let spec = spec.validate().expect("valid");
    let members: Vec<Member> = ["a", "b", "c"]
        .iter()
        .map(|id| Member {
            id: id.to_string(),
            floodgate: true,
            capacity: None,
        })
        .collect();
    let spec =
        crate::orchestrator::spec_total::resolve(&spec, &members, &Caps::HARD).expect("resolves");
    let drivers = members.iter().map(|m| m.id.clone()).collect();
    let mut run = TestRun::new("t".into(), spec, drivers, 0, Policy::default());
    let t0 = Instant::now();
    run.start(1, t0);
    (run, t0)
}

fn report(node: &str, seq: u64, requests: u64, sent: u64, is_final: bool) -> MetricsReport {
    let mut snap = Snapshot {
        requests,
        sent,
        done: is_final,
        ..Default::default()
    };
    snap.elapsed = Duration::from_millis(400);
    for _ in 0..sent {
        snap.recorder.latency.record(1_000);
        snap.recorder.status.record(200);
    }
    let mut r = crate::driver::reporter_for_tests(node, "t", &snap, is_final);
    r.seq = seq;
    r
}

/// Every driver alive and running the test but `dead`, silent for 3 s.
fn all_but(dead: &'static str) -> impl Fn(&str) -> Liveness {
    move |d: &str| Liveness {
        alive: d != dead,
        test_id: (d != dead).then(|| "t".to_string()),
        floodgate: true,
        silent_for: Duration::from_secs(if d == dead { 3 } else { 0 }),
        test_for: Duration::ZERO,
    }
}

/// a, b and c each report 4 sent; c is then lost.
fn lost_c(fail_safe_ms: u64, idle: &[&str]) -> (TestRun, Instant, Vec<Decided>) {
    let (mut run, t0) = shared_run(fail_safe_ms);
    for d in ["a", "b", "c"] {
        run.apply(report(d, 1, 10, 4, false), t0).expect("report");
    }
    let now = t0 + Duration::from_secs(4);
    assert!(!run.evaluate(now, 4_000, all_but("none")));
    let idle = idle.iter().map(|d| d.to_string()).collect();
    let decided = run.plan_hand_overs(now, 4_000, all_but("c"), idle, &Caps::HARD);
    (run, now, decided)
}

#[test]
fn a_lost_drivers_unsent_share_goes_to_the_others_and_the_test_completes_on_the_total() {
    let (mut run, now, decided) = lost_c(2_000, &[]);
    let [d] = &decided[..] else {
        panic!("one hand-over, got {decided:?}");
    };
    let h = &d.hand_over;
    assert_eq!(
        (h.from.as_str(), h.unsent, h.reported_sent, h.seq),
        ("c", 6, 4, 1)
    );
    assert_eq!((h.parts["a"].requests, h.parts["b"].requests), (3, 3));
    assert_eq!(
        (h.parts["a"].rate, h.parts["b"].rate),
        (Some(15.0), Some(15.0))
    );
    // Its 10/s from its last report (0.4 s in) to 2 s after it was last heard (1 s in): at
    // most 26 at its pace, so all 6 it had left.
    assert_eq!(h.unknown_max, 6);
    assert!(d.config.is_none());
    // Decided once: the next evaluation hands nothing over again.
    assert!(run
        .plan_hand_overs(now, 4_000, all_but("c"), Vec::new(), &Caps::HARD)
        .is_empty());
    // The receivers are held to their share plus what they took; c to what it reported.
    let v = run.view(now);
    let totals: Vec<u64> = v
        .per_driver
        .iter()
        .map(|d| d.stats.requests_total)
        .collect();
    assert_eq!((totals, v.aggregate.requests_total), (vec![13, 13, 4], 30));
    assert_eq!(v.rate_changes.last().map(|c| c.total_rate), Some(30.0));
    // a sends its 13, b only its own 10: short, so failed, whatever c did.
    let mut short = run_clone(&run);
    short.apply(report("a", 2, 13, 13, true), now).expect("a");
    short.apply(report("b", 2, 10, 10, true), now).expect("b");
    assert!(short.evaluate(now, 5_000, all_but("c")));
    assert_eq!(short.status, TestStatus::Failed, "{:?}", short.reason);
    run.apply(report("a", 2, 13, 13, true), now).expect("a");
    run.apply(report("b", 2, 13, 13, true), now).expect("b");
    assert!(run.evaluate(now, 5_000, all_but("c")));
    assert_eq!(run.status, TestStatus::Completed, "{:?}", run.reason);
    let v = run.view(now);
    assert_eq!((v.aggregate.sent, v.hand_overs[0].unknown), (30, 6));
}

/// A copy of a run as it stands (runs are not `Clone`: the state owns one of each).
fn run_clone(run: &TestRun) -> TestRun {
    let mut copy = TestRun::new(
        run.id.clone(),
        run.spec.clone(),
        run.drivers.clone(),
        0,
        Policy::default(),
    );
    copy.status = run.status;
    copy.start_instant = run.start_instant;
    copy.parts = run.parts.clone();
    copy.hand_overs = run.hand_overs.clone();
    copy.rate_changes = run.rate_changes.clone();
    copy
}

#[test]
fn an_idle_driver_joins_in_the_lost_ones_place_and_its_part_is_judged_from_then() {
    let (mut run, now, decided) = lost_c(2_000, &["d"]);
    let h = &decided[0].hand_over;
    assert_eq!(h.replacement.as_deref(), Some("d"));
    assert_eq!(h.parts["d"].requests, 6);
    let config = decided[0].config.as_ref().expect("a config to join with");
    assert_eq!(config.drivers, ["a", "b", "d"]);
    let share = config.shares["d"];
    assert_eq!(share.request_count, Some(6));
    assert!((share.rate_scale - 1.0).abs() < 1e-9);
    assert_eq!(run.drivers, ["a", "b", "c", "d"]);
    // d has not reported yet, 16 s after the test's start (longer than a driver that never
    // started is waited for): it joined only 4 s ago.
    let later = now + Duration::from_secs(12);
    let joining = |id: &str| Liveness {
        test_id: None,
        ..all_but("c")(id)
    };
    for d in ["a", "b"] {
        run.apply(report(d, 2, 10, 10, true), later).expect("final");
    }
    assert!(!run.evaluate(later, 9_000, joining), "{:?}", run.reason);
    run.apply(report("d", 1, 6, 6, true), later).expect("d");
    assert!(run.evaluate(later, 9_000, all_but("c")));
    assert_eq!(run.status, TestStatus::Completed, "{:?}", run.reason);
}

#[test]
fn without_the_fail_safe_a_lost_driver_fails_the_test_as_before() {
    let (mut run, now, decided) = lost_c(0, &["d"]);
    assert!(decided.is_empty());
    for d in ["a", "b"] {
        run.apply(report(d, 2, 10, 10, true), now).expect("final");
    }
    assert!(run.evaluate(now, 5_000, all_but("c")));
    assert_eq!(run.status, TestStatus::Failed);
    assert!(run
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("lost driver(s) c")));
}

#[test]
fn a_test_that_names_its_drivers_takes_a_replacement_only_from_its_own_pool() {
    // (the replacement prefix, the idle drivers, who joins)
    let table: [(Option<&str>, &[&str], Option<&str>); 3] = [
        (None, &["pool-d"], None),
        (Some("pool-"), &["other-d", "pool-d"], Some("pool-d")),
        (Some("pool-"), &["other-d"], None),
    ];
    for (prefix, idle, joins) in table {
        let (mut run, t0) = shared_run(2_000);
        run.spec.driver_ids = Some(vec!["a".into(), "b".into(), "c".into()]);
        run.spec.replacement_prefix = prefix.map(str::to_string);
        for d in ["a", "b", "c"] {
            run.apply(report(d, 1, 10, 4, false), t0).expect("report");
        }
        let now = t0 + Duration::from_secs(4);
        let idle = idle.iter().map(|d| d.to_string()).collect();
        let decided = run.plan_hand_overs(now, 4_000, all_but("c"), idle, &Caps::HARD);
        let h = &decided[0].hand_over;
        assert_eq!(h.replacement.as_deref(), joins, "{prefix:?}");
        // Without a replacement from the pool, the others take it.
        assert_eq!(h.parts.len(), if joins.is_some() { 1 } else { 2 });
    }
}
