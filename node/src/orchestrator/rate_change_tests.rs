use super::*;
use crate::orchestrator::spec::parse_input;
use crate::orchestrator::split::Member;

const NOW: u64 = 1_700_000_000_000;

fn spec(extra: &str) -> TestSpec {
    let body = format!(r#"{{"target_url":"http://127.0.0.1:1/ping",{extra}}}"#);
    let spec = parse_input(body.as_bytes())
        .and_then(|i| i.validate())
        .expect("valid");
    let members: Vec<Member> = [1.0, 2.0, 3.0]
        .iter()
        .enumerate()
        .map(|(i, c)| Member {
            id: format!("d{i}"),
            floodgate: true,
            capacity: Some(*c),
        })
        .collect();
    crate::orchestrator::spec_total::resolve(&spec, &members, &Caps::HARD).expect("resolves")
}

fn drivers() -> Vec<String> {
    (0..3).map(|i| format!("d{i}")).collect()
}

/// The test as a change sees it.
fn running<'a>(
    spec: &'a TestSpec,
    drivers: &'a [String],
    started_at_ms: u64,
    changes: &'a [RateChange],
    not_floodgate: &[&str],
) -> Running<'a> {
    Running {
        spec,
        drivers: drivers.to_vec(),
        weights: Default::default(),
        started_at_ms,
        changes,
        reported_seq: 0,
        not_floodgate: not_floodgate.iter().map(|d| d.to_string()).collect(),
    }
}

fn planned(
    spec: &TestSpec,
    changes: &[RateChange],
    input: RateInput,
) -> Result<RateChange, String> {
    let d = drivers();
    let t = running(spec, &d, NOW - 5_000, changes, &[]);
    plan(&t, input, NOW, &Caps::HARD).map_err(|e| match e {
        OrchestratorError::Invalid(f) => format!("{}: {}", f.field, f.message),
        other => other.to_string(),
    })
}

fn input(field: &str, v: f64) -> RateInput {
    let mut i = RateInput::default();
    match field {
        "delay_ms" => i.delay_ms = Some(v),
        "throughput_per_driver" => i.throughput_per_driver = Some(v),
        _ => i.total_rate = Some(v),
    }
    i
}

#[test]
fn each_way_of_giving_a_pace_comes_to_every_drivers_new_rate() {
    // (spec, field, value, each driver's new rate)
    let cases = [
        (
            r#""test_type":"tsunami","delay_ms":10,"requests_per_driver":100"#,
            "delay_ms",
            2.0,
            [500.0; 3],
        ),
        (
            r#""test_type":"avalanche","throughput_per_driver":100,"requests_per_driver":100"#,
            "throughput_per_driver",
            250.0,
            [250.0; 3],
        ),
        // A total shared by capacity 1:2:3, as at the start.
        (
            r#""test_type":"avalanche","total_requests":600,"total_rate":600"#,
            "total_rate",
            1200.0,
            [200.0, 400.0, 600.0],
        ),
        (
            r#""test_type":"tsunami","total_requests":600,"total_rate":600"#,
            "total_rate",
            60.0,
            [10.0, 20.0, 30.0],
        ),
    ];
    for (s, field, v, want) in cases {
        let c = planned(&spec(s), &[], input(field, v)).expect(s);
        let got: Vec<f64> = c.rates.values().copied().collect();
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-9, "{s}: {got:?}");
        }
        assert_eq!((c.seq, c.at_ms), (1, NOW + limits::RATE_CHANGE_LEAD_MS));
        assert!((c.total_rate() - want.iter().sum::<f64>()).abs() < 1e-9);
    }
}

#[test]
fn a_tsunamis_new_delay_still_respects_its_throughput_cap() {
    let s = spec(
        r#""test_type":"tsunami","delay_ms":10,"throughput_per_driver":50,"requests_per_driver":100"#,
    );
    let c = planned(&s, &[], input("delay_ms", 1.0)).expect("valid");
    assert_eq!(c.rates["d0"], 50.0);
}

#[test]
fn what_cannot_change_pace_is_refused_saying_why() {
    let tsunami = r#""test_type":"tsunami","delay_ms":10,"requests_per_driver":100"#;
    // (spec, input, the start of the error)
    let cases = [
        (
            r#""test_type":"avalanche","requests_per_driver":100"#,
            input("throughput_per_driver", 5.0),
            "an uncapped Avalanche",
        ),
        (
            r#""test_type":"avalanche","stages":[{"duration_ms":1000,"rate":5}]"#,
            input("throughput_per_driver", 5.0),
            "a staged test",
        ),
        (
            r#""test_type":"avalanche","throughput_per_driver":5,"duration_ms":1000"#,
            input("throughput_per_driver", 5.0),
            "a time-bound test",
        ),
        (
            tsunami,
            input("throughput_per_driver", 5.0),
            "throughput_per_driver: this test's pace is given as delay_ms",
        ),
        (tsunami, RateInput::default(), "delay_ms: give the new pace"),
        (
            tsunami,
            RateInput {
                delay_ms: Some(1.0),
                total_rate: Some(2.0),
                ..Default::default()
            },
            "total_rate: give one of",
        ),
        (tsunami, input("delay_ms", 0.0), "delay_ms: must be above 0"),
        (
            tsunami,
            input("delay_ms", f64::NAN),
            "delay_ms: must be above 0",
        ),
        (
            r#""test_type":"avalanche","throughput_per_driver":100,"requests_per_driver":100"#,
            input("throughput_per_driver", 1e12),
            "throughput_per_driver: must be between",
        ),
        (
            r#""test_type":"avalanche","total_requests":600,"total_rate":600"#,
            input("total_rate", -1.0),
            "total_rate: must be between",
        ),
    ];
    for (s, i, want) in cases {
        let e = planned(&spec(s), &[], i).expect_err(s);
        assert!(e.starts_with(want), "{s}: {e}");
    }
}

#[test]
fn a_deployments_cap_holds_for_a_new_rate_too() {
    let s =
        spec(r#""test_type":"avalanche","throughput_per_driver":100,"requests_per_driver":100"#);
    let d = drivers();
    let t = running(&s, &d, NOW, &[], &[]);
    let caps = Caps {
        rate: 200.0,
        ..Caps::HARD
    };
    let e = plan(&t, input("throughput_per_driver", 300.0), NOW, &caps).expect_err("capped");
    assert!(matches!(e, OrchestratorError::Invalid(f) if f.field == "throughput_per_driver"));
}

#[test]
fn a_seed_driver_or_too_many_changes_refuse_and_numbers_follow_on() {
    let s = spec(r#""test_type":"tsunami","delay_ms":10,"requests_per_driver":100"#);
    let d = drivers();
    let t = running(&s, &d, NOW, &[], &["d2"]);
    let e = plan(&t, input("delay_ms", 5.0), NOW, &Caps::HARD).expect_err("seed");
    assert!(e.to_string().contains("d2"), "{e}");

    let first = planned(&s, &[], input("delay_ms", 5.0)).expect("first");
    let second = planned(&s, std::slice::from_ref(&first), input("delay_ms", 2.0)).expect("second");
    assert_eq!(second.seq, 2);
    let mut many = vec![first; limits::MAX_RATE_CHANGES];
    many.last_mut().expect("some").seq = limits::MAX_RATE_CHANGES as u64;
    let e = planned(&s, &many, input("delay_ms", 2.0)).expect_err("too many");
    assert!(e.contains("at most"), "{e}");

    // After a restart the plan is gone, but the drivers' reports say how far the numbers went.
    let d = drivers();
    let mut t = running(&s, &d, NOW, &[], &[]);
    t.reported_seq = 3;
    let next = plan(&t, input("delay_ms", 5.0), NOW, &Caps::HARD).expect("valid");
    assert_eq!(next.seq, 4);
    t.reported_seq = limits::MAX_RATE_CHANGES as u64;
    assert!(plan(&t, input("delay_ms", 5.0), NOW, &Caps::HARD).is_err());
}

#[test]
fn a_change_before_the_start_takes_effect_at_the_start() {
    let s = spec(r#""test_type":"tsunami","delay_ms":10,"requests_per_driver":100"#);
    let d = drivers();
    let t = running(&s, &d, NOW + 3_000, &[], &[]);
    let c = plan(&t, input("delay_ms", 5.0), NOW, &Caps::HARD).expect("valid");
    assert_eq!(c.at_ms, NOW + 3_000);
}

#[test]
fn the_slowest_gap_a_driver_has_had_is_kept() {
    let ms = Duration::from_millis;
    let change = |seq, rate| RateChange {
        seq,
        requested_at_ms: 0,
        at_ms: 0,
        input: RateInput::default(),
        rates: BTreeMap::from([("d0".to_string(), rate)]),
    };
    let changes = [change(1, 50.0), change(2, 500.0)];
    assert_eq!(slowest_gap(ms(10), &changes, "d0"), ms(20));
    assert_eq!(slowest_gap(ms(30), &changes, "d0"), ms(30));
    assert_eq!(slowest_gap(ms(10), &changes, "d9"), ms(10));
}

#[test]
fn the_history_puts_each_drivers_switch_on_the_orchestrators_clock() {
    let plan = RateChange {
        seq: 1,
        requested_at_ms: NOW - 1_000,
        at_ms: NOW,
        input: input("total_rate", 300.0),
        rates: BTreeMap::from([("d0".to_string(), 100.0), ("d1".to_string(), 200.0)]),
    };
    let at = |us: u64, first| AppliedRate {
        seq: 1,
        at_us: us,
        first,
        rate: 100.0,
    };
    let d0 = [at(NOW * 1000, 40)];
    // d1's clock runs 3 ms ahead; it switched 0.5 ms after the agreed instant by its own.
    let d1 = [at(NOW * 1000 + 3_500, 80)];
    let ahead = Offset {
        offset_us: 3_000,
        bound_us: 0,
    };
    let h = history(
        std::slice::from_ref(&plan),
        [("d0", &d0[..], None), ("d1", &d1[..], Some(ahead))],
    );
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].total_rate, 300.0);
    let skew = h[0].switch_skew_ms.expect("two switched");
    assert!((skew - 0.5).abs() < 1e-9, "{skew}");
    assert!((h[0].applied[1].late_ms - 0.5).abs() < 1e-9);

    // Without the plan (a restarted orchestrator), the reports rebuild the change.
    let h = history(&[], [("d0", &d0[..], None)]);
    assert_eq!((h[0].change.seq, h[0].change.rates["d0"]), (1, 100.0));
    assert_eq!(h[0].switch_skew_ms, None);
}
