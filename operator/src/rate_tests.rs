//! Table tests of the live-rate decision (issue 13).

use super::*;
use crate::crd::{Condition, Phase, Stats};

fn spec(extra: serde_json::Value) -> LoadTestSpec {
    let mut v = serde_json::json!({
        "targetUrl": "http://t/", "testType": "Avalanche", "drivers": 2,
        "totalRequests": 3000, "totalRate": 300.0,
    });
    if let (Some(o), Some(x)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in x {
            if val.is_null() {
                o.remove(k);
            } else {
                o.insert(k.clone(), val.clone());
            }
        }
    }
    serde_json::from_value(v).expect("a spec")
}

fn change(seq: u64, total_rate: f64) -> RateChangeStatus {
    RateChangeStatus {
        seq,
        at_ms: 1_700_000_000_000 + seq,
        total_rate,
        drivers: 2,
        switched: 0,
        switch_skew_ms: None,
    }
}

fn test(status: TestStatus, changes: usize) -> TestObservation {
    TestObservation {
        status,
        reason: None,
        aggregate: Stats::default(),
        drivers: vec![],
        started_at: None,
        finished_at: None,
        settled: status != TestStatus::Running,
        generator_warnings: vec![],
        thresholds: None,
        by_request: vec![],
        start_skew: None,
        rate_changes: (1..=changes as u64).map(|s| change(s, 100.0)).collect(),
        start_pace: Some(Pace::TotalRate(300.0)),
        last_asked: None,
    }
}

fn set(pace: Pace, refused: Option<Pace>) -> Option<RateStatus> {
    let mut r = RateStatus::default();
    r.set(pace);
    r.refused = refused.map(Pace::value_fields);
    Some(r)
}

fn condition(st: &LoadTestStatus) -> Option<(String, String)> {
    st.conditions
        .iter()
        .find(|c: &&Condition| c.type_ == RATE_CHANGED)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[test]
fn the_pace_is_the_field_the_test_gives_it_with() {
    let cases = [
        (
            "in totals",
            spec(serde_json::json!({})),
            Some(Pace::TotalRate(300.0)),
        ),
        (
            "a Tsunami",
            spec(
                serde_json::json!({"testType": "Tsunami", "totalRequests": null, "totalRate": null,
                "requestsPerDriver": 10, "delayMs": 5.0, "throughputPerDriver": 50.0}),
            ),
            Some(Pace::DelayMs(5.0)),
        ),
        (
            "a capped Avalanche",
            spec(serde_json::json!({"totalRequests": null, "totalRate": null,
                "requestsPerDriver": 10, "throughputPerDriver": 50.0})),
            Some(Pace::ThroughputPerDriver(50.0)),
        ),
        (
            "an uncapped Avalanche",
            spec(serde_json::json!({"totalRate": null})),
            None,
        ),
        (
            "stages",
            spec(serde_json::json!({"totalRequests": null, "totalRate": null,
                "stages": [{"durationMs": 1000, "rate": 5.0}]})),
            None,
        ),
    ];
    for (name, s, want) in cases {
        assert_eq!(Pace::of(&s), want, "{name}");
        if let Some(p) = want {
            assert_eq!(Pace::of_input(&p.input()), Some(p), "{name}: round trip");
        }
    }
    let two = RateInput {
        delay_ms: Some(1.0),
        total_rate: Some(2.0),
        ..Default::default()
    };
    assert_eq!(Pace::of_input(&two), None, "a change of two fields is none");
    assert_eq!(Pace::TotalRate(600.0).field(), "spec.totalRate");
}

#[test]
fn the_decision_table() {
    struct Case {
        name: &'static str,
        spec: LoadTestSpec,
        rate: Option<RateStatus>,
        test: TestObservation,
        ask: Option<Pace>,
        /// The pace `status.rate` holds after.
        set: Option<Pace>,
        condition: Option<(&'static str, &'static str)>,
    }
    let running = || test(TestStatus::Running, 0);
    let at_600 = spec(serde_json::json!({"totalRate": 600.0}));
    let cases = vec![
        Case {
            name: "unchanged: nothing",
            spec: spec(serde_json::json!({})),
            rate: set(Pace::TotalRate(300.0), None),
            test: running(),
            ask: None,
            set: Some(Pace::TotalRate(300.0)),
            condition: None,
        },
        Case {
            name: "changed while running: asked once",
            spec: at_600.clone(),
            rate: set(Pace::TotalRate(300.0), None),
            test: running(),
            ask: Some(Pace::TotalRate(600.0)),
            set: Some(Pace::TotalRate(300.0)),
            condition: None,
        },
        Case {
            name: "already applied by an earlier reconcile: nothing",
            spec: at_600.clone(),
            rate: set(Pace::TotalRate(600.0), None),
            test: test(TestStatus::Running, 1),
            ask: None,
            set: Some(Pace::TotalRate(600.0)),
            condition: None,
        },
        Case {
            name: "asked, but the status write was lost: recorded, not asked again",
            spec: at_600.clone(),
            rate: set(Pace::TotalRate(300.0), None),
            test: TestObservation {
                last_asked: Some(Pace::TotalRate(600.0)),
                ..test(TestStatus::Running, 1)
            },
            ask: None,
            set: Some(Pace::TotalRate(600.0)),
            condition: Some(("True", "Applied")),
        },
        Case {
            name: "refused before: not asked again",
            spec: at_600.clone(),
            rate: set(Pace::TotalRate(300.0), Some(Pace::TotalRate(600.0))),
            test: running(),
            ask: None,
            set: Some(Pace::TotalRate(300.0)),
            condition: None,
        },
        Case {
            name: "refused before, changed again: asked for the new value",
            spec: spec(serde_json::json!({"totalRate": 450.0})),
            rate: set(Pace::TotalRate(300.0), Some(Pace::TotalRate(600.0))),
            test: running(),
            ask: Some(Pace::TotalRate(450.0)),
            set: Some(Pace::TotalRate(300.0)),
            condition: None,
        },
        Case {
            name: "refused, then back at the pace set: the refusal is over",
            spec: spec(serde_json::json!({})),
            rate: set(Pace::TotalRate(300.0), Some(Pace::TotalRate(600.0))),
            test: running(),
            ask: None,
            set: Some(Pace::TotalRate(300.0)),
            condition: Some(("True", "Applied")),
        },
        Case {
            name: "a change through the REST API is not fought",
            spec: spec(serde_json::json!({})),
            rate: set(Pace::TotalRate(300.0), None),
            test: TestObservation {
                last_asked: Some(Pace::TotalRate(900.0)),
                ..test(TestStatus::Running, 1)
            },
            ask: None,
            set: Some(Pace::TotalRate(300.0)),
            condition: None,
        },
        Case {
            name: "no record (an older operator): the test's own start pace is the one set",
            spec: at_600.clone(),
            rate: None,
            test: running(),
            ask: Some(Pace::TotalRate(600.0)),
            set: Some(Pace::TotalRate(300.0)),
            condition: None,
        },
        Case {
            name: "no record, unchanged: nothing",
            spec: spec(serde_json::json!({})),
            rate: None,
            test: running(),
            ask: None,
            set: Some(Pace::TotalRate(300.0)),
            condition: None,
        },
        Case {
            name: "created, not running yet: asked once it runs",
            spec: at_600.clone(),
            rate: set(Pace::TotalRate(300.0), None),
            test: test(TestStatus::Created, 0),
            ask: None,
            set: Some(Pace::TotalRate(300.0)),
            condition: None,
        },
        Case {
            name: "the test ended: ignored, said so",
            spec: at_600.clone(),
            rate: set(Pace::TotalRate(300.0), None),
            test: test(TestStatus::Completed, 0),
            ask: None,
            set: Some(Pace::TotalRate(300.0)),
            condition: Some(("False", "TestEnded")),
        },
        Case {
            name: "a test without a pace: nothing to ask",
            spec: spec(serde_json::json!({"totalRate": null})),
            rate: None,
            test: TestObservation {
                start_pace: None,
                ..running()
            },
            ask: None,
            set: None,
            condition: None,
        },
        Case {
            name: "a Tsunami's delay",
            spec: spec(
                serde_json::json!({"testType": "Tsunami", "totalRequests": null,
                "totalRate": null, "requestsPerDriver": 10, "delayMs": 2.5}),
            ),
            rate: set(Pace::DelayMs(5.0), None),
            test: running(),
            ask: Some(Pace::DelayMs(2.5)),
            set: Some(Pace::DelayMs(5.0)),
            condition: None,
        },
    ];
    for c in cases {
        let mut st = LoadTestStatus {
            phase: Phase::Running,
            rate: c.rate.clone(),
            ..Default::default()
        };
        let ask = decide(&c.spec, &mut st, &c.test, "now");
        assert_eq!(ask, c.ask, "{}", c.name);
        assert_eq!(
            st.rate.as_ref().and_then(RateStatus::pace),
            c.set,
            "{}",
            c.name
        );
        let want = c.condition.map(|(s, r)| (s.to_string(), r.to_string()));
        assert_eq!(condition(&st), want, "{}", c.name);
        if let Some(r) = &st.rate {
            assert_eq!(r.changes as usize, c.test.rate_changes.len(), "{}", c.name);
        }
        // Deciding again on what it wrote asks for nothing new (no hot loop).
        if ask.is_none() {
            assert_eq!(decide(&c.spec, &mut st, &c.test, "now"), None, "{}", c.name);
        }
    }
}

#[test]
fn an_applied_change_is_recorded_and_then_asks_for_nothing() {
    let s = spec(serde_json::json!({"totalRate": 600.0}));
    let mut st = LoadTestStatus {
        phase: Phase::Running,
        rate: set(Pace::TotalRate(300.0), Some(Pace::TotalRate(5e7))),
        ..Default::default()
    };
    let t = test(TestStatus::Running, 0);
    let pace = decide(&s, &mut st, &t, "t1").expect("asked");
    let msg = applied(&mut st, pace, vec![change(1, 600.0)], "t1");
    assert!(
        msg.starts_with("spec.totalRate 600 applied (change 1): 600 requests/s over 2 drivers"),
        "{msg}"
    );
    let r = st.rate.clone().expect("recorded");
    assert_eq!(
        (r.pace(), r.changes, r.refused),
        (Some(Pace::TotalRate(600.0)), 1, None)
    );
    assert_eq!(st.rate_changes, [change(1, 600.0)]);
    assert_eq!(condition(&st), Some(("True".into(), "Applied".into())));
    // The next reconcile sees the change in the view, and the status: nothing to do.
    let t = TestObservation {
        last_asked: Some(Pace::TotalRate(600.0)),
        ..test(TestStatus::Running, 1)
    };
    assert_eq!(decide(&s, &mut st, &t, "t2"), None);
    // Serialized, the cleared refusal is a null, which the status's merge patch removes.
    let json = serde_json::to_value(&st).expect("json");
    assert_eq!(json["rate"]["refused"], serde_json::Value::Null);
    assert_eq!(json["rate"]["totalRate"], 600.0);
    assert!(json["rate"]
        .as_object()
        .is_some_and(|o| o.contains_key("refused")));
}

#[test]
fn a_refusal_is_a_condition_naming_the_field_and_is_not_asked_again() {
    let s = spec(serde_json::json!({"totalRate": 5e7}));
    for (conflict, reason) in [(false, "InvalidRate"), (true, "CannotChangePace")] {
        let mut st = LoadTestStatus {
            phase: Phase::Running,
            rate: set(Pace::TotalRate(300.0), None),
            ..Default::default()
        };
        let t = test(TestStatus::Running, 0);
        let pace = decide(&s, &mut st, &t, "t1").expect("asked");
        let msg = refused(
            &mut st,
            pace,
            "comes to 2.5e7 requests/s on a driver",
            conflict,
            "t1",
        );
        assert!(
            msg.starts_with("spec.totalRate 50000000 was refused: comes to"),
            "{msg}"
        );
        let c = st
            .conditions
            .iter()
            .find(|c| c.type_ == RATE_CHANGED)
            .expect("a condition");
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", reason));
        assert_eq!(c.message, msg);
        let r = st.rate.clone().expect("kept");
        assert_eq!(r.pace(), Some(Pace::TotalRate(300.0)), "the pace set stays");
        assert_eq!(r.refused_pace(), Some(Pace::TotalRate(5e7)));
        assert_eq!(decide(&s, &mut st, &t, "t2"), None, "not asked again");
    }
}

#[test]
fn a_change_after_the_end_is_ignored_with_a_condition() {
    let mut st = LoadTestStatus {
        phase: Phase::Succeeded,
        rate: set(Pace::TotalRate(300.0), None),
        ..Default::default()
    };
    after_end(&spec(serde_json::json!({})), &mut st, "t");
    assert_eq!(condition(&st), None, "unchanged: nothing to say");
    after_end(&spec(serde_json::json!({"totalRate": 600.0})), &mut st, "t");
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == RATE_CHANGED)
        .expect("a condition");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "TestEnded")
    );
    assert_eq!(
        c.message,
        "spec.totalRate 600 is not applied: the test had ended (it ran at spec.totalRate 300)"
    );
}

#[test]
fn the_history_is_mapped_from_the_view_and_bounded() {
    use floodgate::orchestrator::rate_change::{RateChange, Switched};
    let view = |seq: u64| RateChangeView {
        change: RateChange {
            seq,
            requested_at_ms: 10,
            at_ms: 1_010,
            input: RateInput {
                total_rate: Some(600.0),
                ..Default::default()
            },
            rates: [("a".to_string(), 300.0), ("b".to_string(), 300.0)].into(),
        },
        total_rate: 600.0,
        applied: vec![
            Switched {
                driver_id: "a".into(),
                at_ms: 1_010.0,
                late_ms: 0.0,
                first: 100,
            },
            Switched {
                driver_id: "b".into(),
                at_ms: 1_010.4,
                late_ms: 0.4,
                first: 99,
            },
        ],
        switch_skew_ms: Some(0.4),
    };
    assert_eq!(
        history(&[view(1)]),
        [RateChangeStatus {
            seq: 1,
            at_ms: 1_010,
            total_rate: 600.0,
            drivers: 2,
            switched: 2,
            switch_skew_ms: Some(0.4),
        }]
    );
    let many: Vec<RateChangeView> = (1..=70).map(view).collect();
    assert_eq!(history(&many).len(), limits::MAX_RATE_CHANGES);
}
