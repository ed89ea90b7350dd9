//! Table tests of the reconcile decision.

use super::*;
use crate::crd::TestType;

fn spec(drivers: u32) -> LoadTestSpec {
    LoadTestSpec {
        target_url: Some("http://t:8080/ping".into()),
        mix: None,
        checks: None,
        method: None,
        headers: Default::default(),
        secret_headers: vec![],
        body: None,
        test_type: TestType::Avalanche,
        delay_ms: None,
        requests_per_driver: Some(100),
        duration_ms: None,
        stages: None,
        start_rate: None,
        throughput_per_driver: None,
        total_requests: None,
        total_rate: None,
        split: None,
        fail_safe_ms: None,
        drivers,
        concurrency: None,
        timeout_ms: None,
        driver_image: None,
        driver_resources: None,
        thresholds: vec![],
        http_version: None,
        streams_per_connection: None,
        tls: None,
    }
}

fn status(phase: Phase) -> LoadTestStatus {
    LoadTestStatus {
        phase,
        ..Default::default()
    }
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("lt-drivers-{i}")).collect()
}

fn test(state: &str) -> TestObservation {
    let status = TestStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == state)
        .expect("a test status");
    TestObservation {
        status,
        reason: (state == "failed").then(|| "lost driver(s) lt-drivers-1".to_string()),
        aggregate: Stats {
            sent: 150,
            ok: 150,
            p99_ms: Some(3.5),
            ..Default::default()
        },
        drivers: vec![DriverProgress {
            id: "lt-drivers-0".into(),
            state: "done".into(),
            requests: Some(100),
            sent: 100,
            ok: 100,
            errors: 0,
            p99_ms: Some(3.0),
            ..Default::default()
        }],
        started_at: Some("t0".into()),
        finished_at: None,
        settled: state != "running",
        generator_warnings: vec![],
        thresholds: None,
        by_request: vec![],
        start_skew: None,
        rate_changes: vec![],
        start_pace: None,
        last_asked: None,
    }
}

fn seen(replicas: Option<i32>, registered: usize, t: Option<TestObservation>) -> Observed {
    Observed {
        deployment_replicas: replicas,
        registered: ids(registered),
        test: t,
        scaling_for: Duration::ZERO,
        not_taken_over: None,
        inputs: Default::default(),
        now: "now".into(),
    }
}

#[test]
fn the_decision_table() {
    struct Case {
        name: &'static str,
        phase: Option<Phase>,
        observed: Observed,
        actions: Vec<Action>,
        next: Phase,
        requeue: bool,
    }
    let start = Action::StartTest { driver_ids: ids(3) };
    let cases = vec![
        Case {
            name: "new: scale up",
            phase: None,
            observed: seen(None, 0, None),
            actions: vec![Action::ScaleDrivers(3)],
            next: Phase::Scaling,
            requeue: true,
        },
        Case {
            name: "scaling, drivers coming",
            phase: Some(Phase::Scaling),
            observed: seen(Some(3), 2, None),
            actions: vec![],
            next: Phase::Scaling,
            requeue: true,
        },
        Case {
            name: "scaling, deployment changed by hand",
            phase: Some(Phase::Scaling),
            observed: seen(Some(1), 0, None),
            actions: vec![Action::ScaleDrivers(3)],
            next: Phase::Scaling,
            requeue: true,
        },
        Case {
            name: "all registered: start",
            phase: Some(Phase::Scaling),
            observed: seen(Some(3), 3, None),
            actions: vec![start.clone()],
            next: Phase::Running,
            requeue: true,
        },
        Case {
            name: "extra drivers: only N take part",
            phase: Some(Phase::Scaling),
            observed: seen(Some(3), 5, None),
            actions: vec![start],
            next: Phase::Running,
            requeue: true,
        },
        Case {
            name: "restart after starting: no second test",
            phase: Some(Phase::Scaling),
            observed: seen(Some(3), 0, Some(test("running"))),
            actions: vec![],
            next: Phase::Running,
            requeue: true,
        },
        Case {
            name: "running",
            phase: Some(Phase::Running),
            observed: seen(Some(3), 0, Some(test("running"))),
            actions: vec![],
            next: Phase::Running,
            requeue: true,
        },
        Case {
            name: "completed: scale down",
            phase: Some(Phase::Running),
            observed: seen(Some(3), 0, Some(test("completed"))),
            actions: vec![Action::ScaleDrivers(0)],
            next: Phase::Succeeded,
            requeue: false,
        },
        Case {
            name: "driver lost: failed, scale down",
            phase: Some(Phase::Running),
            observed: seen(Some(3), 0, Some(test("failed"))),
            actions: vec![Action::ScaleDrivers(0)],
            next: Phase::Failed,
            requeue: false,
        },
        Case {
            name: "stopped: failed",
            phase: Some(Phase::Running),
            observed: seen(Some(3), 0, Some(test("stopped"))),
            actions: vec![Action::ScaleDrivers(0)],
            next: Phase::Failed,
            requeue: false,
        },
        Case {
            name: "stopped, last reports still arriving: wait for them",
            phase: Some(Phase::Running),
            observed: seen(
                Some(3),
                0,
                Some(TestObservation {
                    settled: false,
                    ..test("stopped")
                }),
            ),
            actions: vec![],
            next: Phase::Running,
            requeue: true,
        },
        Case {
            name: "store lost: failed, not hung",
            phase: Some(Phase::Running),
            observed: seen(Some(3), 0, None),
            actions: vec![Action::ScaleDrivers(0)],
            next: Phase::Failed,
            requeue: false,
        },
        Case {
            name: "succeeded stays, drivers stay down",
            phase: Some(Phase::Succeeded),
            observed: seen(Some(0), 3, Some(test("completed"))),
            actions: vec![],
            next: Phase::Succeeded,
            requeue: false,
        },
        Case {
            name: "a finished test never reruns",
            phase: Some(Phase::Failed),
            observed: seen(Some(2), 3, None),
            actions: vec![Action::ScaleDrivers(0)],
            next: Phase::Failed,
            requeue: false,
        },
    ];
    for c in cases {
        let current = c.phase.map(status);
        let p = plan(&spec(3), current.as_ref(), &c.observed);
        assert_eq!(p.actions, c.actions, "{}", c.name);
        assert_eq!(p.status.phase, c.next, "{}", c.name);
        assert_eq!(p.requeue.is_some(), c.requeue, "{}", c.name);
        assert!(
            p.status.phase >= c.phase.unwrap_or_default(),
            "{}: phases only move forward",
            c.name
        );
    }
}

#[test]
fn giving_up_on_drivers_fails_and_scales_down() {
    let mut o = seen(Some(3), 1, None);
    o.scaling_for = DRIVER_WAIT;
    let p = plan(&spec(3), Some(&status(Phase::Scaling)), &o);
    assert_eq!(p.actions, vec![Action::ScaleDrivers(0)]);
    assert_eq!(p.status.phase, Phase::Failed);
    assert!(p
        .status
        .message
        .as_deref()
        .unwrap_or("")
        .contains("only 1 of 3"));
}

#[test]
fn results_and_conditions_land_in_the_status() {
    let p = plan(
        &spec(3),
        Some(&status(Phase::Running)),
        &seen(Some(3), 0, Some(test("failed"))),
    );
    let st = p.status;
    assert_eq!(
        st.aggregate.as_ref().map(|a| a.sent),
        Some(150),
        "partial results are kept"
    );
    assert_eq!(st.drivers.len(), 1);
    assert!(st.message.as_deref().unwrap_or("").contains("lost driver"));
    assert_eq!(st.completion_time.as_deref(), Some("now"));
    let succeeded = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Succeeded")
        .expect("condition");
    assert_eq!(succeeded.status, "False");
    assert_eq!(st.drivers_summary.as_deref(), Some("1/3"));
}

#[test]
fn progress_is_recorded_while_running() {
    // Starting sets Progressing=True; progress keeps it so and records the figures.
    let started = plan(
        &spec(3),
        Some(&status(Phase::Scaling)),
        &seen(Some(3), 3, None),
    );
    let progressing = |st: &LoadTestStatus| {
        st.conditions
            .iter()
            .find(|c| c.type_ == "Progressing")
            .map(|c| c.status.clone())
    };
    assert_eq!(progressing(&started.status).as_deref(), Some("True"));
    let p = plan(
        &spec(3),
        Some(&started.status),
        &seen(Some(3), 0, Some(test("running"))),
    );
    assert_eq!(
        p.status.aggregate.as_ref().map(|a| a.p99_ms),
        Some(Some(3.5))
    );
    assert_eq!(p.requeue, Some(PROGRESS_EVERY));
    assert_eq!(progressing(&p.status).as_deref(), Some("True"));
    let done = plan(
        &spec(3),
        Some(&p.status),
        &seen(Some(3), 0, Some(test("completed"))),
    );
    assert_eq!(progressing(&done.status).as_deref(), Some("False"));
}

#[test]
fn a_failed_reconcile_is_shown_in_the_status_and_a_refused_spec_fails_the_loadtest() {
    let running = status(Phase::Running);
    let st = failed_reconcile(Some(&running), "kubernetes", "conflict", false, "now");
    assert_eq!(st.phase, Phase::Running, "a passing error keeps the phase");
    assert!(st.message.as_deref().unwrap_or("").contains("conflict"));
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Reconciled")
        .expect("condition");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "kubernetes")
    );
    let healed = plan(
        &spec(3),
        Some(&st),
        &seen(Some(3), 0, Some(test("running"))),
    );
    let c = healed
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Reconciled")
        .expect("condition");
    assert_eq!(c.status, "True", "the next reconcile that passes says so");

    let scaling = status(Phase::Scaling);
    let st = failed_reconcile(
        Some(&scaling),
        "orchestrator",
        "drivers: must be between 2 and 8",
        true,
        "now",
    );
    assert_eq!(
        st.phase,
        Phase::Failed,
        "a refused spec will never run: no retry loop"
    );
    assert!(st
        .message
        .as_deref()
        .unwrap_or("")
        .contains("must be between 2 and 8"));
    let done = plan(&spec(3), Some(&st), &seen(Some(3), 3, None));
    assert!(done.actions.iter().all(|a| *a == Action::ScaleDrivers(0)));
    assert_eq!(done.requeue, None);
}

#[test]
fn a_loadtest_behind_another_test_is_queued_not_failed_and_starts_in_its_turn() {
    let scaling = status(Phase::Scaling);
    let st = queued(Some(&scaling), "t-other", "now");
    assert_eq!(st.phase, Phase::Scaling, "waiting is not a phase change");
    assert!(st.message.as_deref().unwrap_or("").contains("t-other"));
    let q = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Queued")
        .expect("Queued");
    assert_eq!(
        (q.status.as_str(), q.reason.as_str()),
        ("True", "OtherTestRunning")
    );
    assert!(
        !st.conditions
            .iter()
            .any(|c| c.type_ == "Reconciled" && c.status == "False"),
        "not shown as a failed reconcile"
    );
    // Once its test runs, the condition says so.
    let started = plan(
        &spec(3),
        Some(&st),
        &seen(Some(3), 3, Some(test("running"))),
    );
    assert_eq!(started.status.phase, Phase::Running);
    let q = started
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Queued")
        .expect("Queued");
    assert_eq!((q.status.as_str(), q.reason.as_str()), ("False", "Started"));
}

#[test]
fn a_driver_that_could_not_keep_up_is_a_condition_naming_it() {
    let quiet = plan(
        &spec(3),
        Some(&status(Phase::Running)),
        &seen(Some(3), 0, Some(test("running"))),
    );
    let saturated = |st: &LoadTestStatus| {
        st.conditions
            .iter()
            .find(|c| c.type_ == "GeneratorSaturated")
            .cloned()
    };
    assert_eq!(saturated(&quiet.status), None, "no warning, no condition");
    let warned = TestObservation {
        generator_warnings: vec![
            "driver lt-drivers-1 could not keep up: … these figures measure the load generator, not the target".into(),
        ],
        ..test("running")
    };
    let p = plan(
        &spec(3),
        Some(&quiet.status),
        &seen(Some(3), 0, Some(warned)),
    );
    let c = saturated(&p.status).expect("the condition");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "DriverCouldNotKeepUp")
    );
    assert!(
        c.message.contains("lt-drivers-1") && c.message.contains("not the target"),
        "{c:?}"
    );
}

#[test]
fn the_thresholds_verdict_is_the_thresholds_passed_condition() {
    use crate::crd::{ThresholdResult, ThresholdsStatus};
    let result = |threshold: &str, state: &str, measured: Option<f64>| ThresholdResult {
        threshold: threshold.into(),
        state: state.into(),
        measured,
        unit: "ms".into(),
    };
    // (test state, verdict, results, condition status, reason, words of the message, phase)
    let cases = [
        (
            "completed",
            "passed",
            vec![result("p99 < 1s", "passed", Some(3.5))],
            "True",
            "ThresholdsPassed",
            "all 1",
            Phase::Succeeded,
        ),
        (
            "completed",
            "failed",
            vec![
                result("p99 < 1s", "passed", Some(3.5)),
                result("p50 < 1ms", "failed", Some(2.25)),
            ],
            "False",
            "ThresholdsFailed",
            "p50 < 1ms (measured 2.25 ms)",
            Phase::Succeeded,
        ),
        (
            "completed",
            "not_evaluated",
            vec![result("home: p99 < 1s", "no_data", None)],
            "Unknown",
            "NoData",
            "home: p99 < 1s",
            Phase::Succeeded,
        ),
        (
            "running",
            "pending",
            vec![result("p99 < 1s", "passed", Some(3.5))],
            "Unknown",
            "Pending",
            "when the test ends",
            Phase::Running,
        ),
    ];
    for (state, verdict, results, status_, reason, words, phase) in cases {
        let mut t = test(state);
        let th = ThresholdsStatus {
            verdict: verdict.into(),
            aborted_by: None,
            results,
        };
        t.thresholds = Some(th.clone());
        let p = plan(
            &spec(1),
            Some(&status(Phase::Running)),
            &seen(Some(1), 0, Some(t)),
        );
        let st = p.status;
        assert_eq!(st.thresholds.as_ref(), Some(&th), "{verdict}");
        assert_eq!(
            st.phase, phase,
            "{verdict}: the phase is the run's, the verdict a condition"
        );
        let c = st
            .conditions
            .iter()
            .find(|c| c.type_ == "ThresholdsPassed")
            .expect("condition");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            (status_, reason),
            "{verdict}"
        );
        assert!(c.message.contains(words), "{verdict}: {}", c.message);
    }
    // A test that a threshold stopped: Failed, naming it.
    let mut t = test("stopped");
    t.reason = Some("aborted by threshold \"p99 < 1ms\"".into());
    t.thresholds = Some(ThresholdsStatus {
        verdict: "failed".into(),
        aborted_by: Some("p99 < 1ms".into()),
        results: vec![result("p99 < 1ms", "failed", Some(3.0))],
    });
    let st = plan(
        &spec(1),
        Some(&status(Phase::Running)),
        &seen(Some(1), 0, Some(t)),
    )
    .status;
    assert_eq!(st.phase, Phase::Failed);
    assert!(st.message.as_deref().unwrap_or("").contains("p99 < 1ms"));
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == "ThresholdsPassed")
        .expect("condition");
    assert!(
        c.status == "False" && c.message.contains("stopped the test"),
        "{c:?}"
    );
}

#[test]
fn an_unparsable_threshold_fails_the_loadtest_before_any_driver_starts() {
    use crate::crd::ThresholdSpec;
    let with = |threshold: &str, delay: Option<&str>| {
        let mut s = spec(2);
        s.thresholds = vec![
            ThresholdSpec {
                threshold: "p99 < 1s".into(),
                abort_on_fail: None,
                delay: None,
            },
            ThresholdSpec {
                threshold: threshold.into(),
                abort_on_fail: Some(true),
                delay: delay.map(String::from),
            },
        ];
        s
    };
    let cases = [
        (
            "p999x < 1s",
            None,
            "spec.thresholds[1].threshold: unknown metric \"p999x\"",
        ),
        ("p99 < 1s", Some("soon"), "spec.thresholds[1].delay"),
        ("home: p99 < 1s", None, "spec.thresholds[1]: is scoped"),
    ];
    for (threshold, delay, words) in cases {
        let p = plan(&with(threshold, delay), None, &seen(None, 0, None));
        assert_eq!(p.status.phase, Phase::Failed, "{threshold}");
        assert!(
            p.actions.is_empty(),
            "no driver is started: {:?}",
            p.actions
        );
        let msg = p.status.message.unwrap_or_default();
        assert!(msg.contains(words), "{msg}");
    }
    let p = plan(&with("p99 < 1s", Some("10s")), None, &seen(None, 0, None));
    assert_eq!(p.status.phase, Phase::Scaling);
}
