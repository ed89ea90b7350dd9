//! The time-bound fields of a spec: what they become, and every bad one named.

use super::super::spec::{parse_input, TestSpec};
use crate::protocol::limits::Caps;
use crate::protocol::{SeedStyle, TestConfig};
use serde_json::{json, Value};

fn check(extra: Value) -> Result<TestSpec, super::FieldError> {
    let mut body = json!({"test_type": "avalanche", "target_url": "http://h/"});
    for (k, v) in extra.as_object().expect("an object") {
        body[k] = v.clone();
    }
    parse_input(body.to_string().as_bytes())?.validate()
}

#[test]
fn a_duration_at_a_pace_sends_what_is_due_in_it() {
    let s = check(json!({"duration": "30s", "throughput_per_driver": 100})).expect("valid");
    assert_eq!(
        (s.duration_ms, s.requests_per_driver),
        (Some(30_000), 3_000)
    );
    let c = s.to_config("t", &["a".into(), "b".into()], "o");
    let wire = c.to_json(&SeedStyle::default());
    assert_eq!(wire["duration_ms"], 30_000);
    assert_eq!(wire["message_count_per_driver"], 3_000, "for seed drivers");
    assert!(wire.get("request_count").is_none(), "{wire}");
    assert!(wire.get("stages").is_none(), "{wire}");
    let back = TestConfig::parse(wire.to_string().as_bytes(), Default::default()).expect("parses");
    assert_eq!(back.time_bound, c.time_bound);

    // Unpaced: as many as fit, so no count at all.
    let s = check(json!({"duration_ms": 1500})).expect("valid");
    assert_eq!((s.duration_ms, s.requests_per_driver), (Some(1_500), 0));
    assert_eq!(s.to_config("t", &[], "o").requests, None);

    // A Tsunami's delay is its pace: 2.5 s at 10 ms.
    let s =
        check(json!({"test_type": "tsunami", "delay_ms": 10, "duration": "2.5s"})).expect("valid");
    assert_eq!(s.requests_per_driver, 250);
}

#[test]
fn stages_imply_the_duration_and_the_count() {
    let s = check(
        json!({"stages": [{"duration": "2s", "rate": 100}, {"duration_ms": 2000, "rate": 100}]}),
    )
    .expect("valid");
    assert_eq!((s.duration_ms, s.requests_per_driver), (Some(4_000), 300));
    assert_eq!(s.start_rate, Some(0.0));
    let c = s.to_config("t", &[], "o");
    let wire = c.to_json(&SeedStyle::default());
    assert_eq!(
        wire["stages"],
        json!([{"duration_ms": 2000, "rate": 100.0}, {"duration_ms": 2000, "rate": 100.0}])
    );
    assert_eq!(
        (wire["duration_ms"].clone(), wire["start_rate"].clone()),
        (json!(4000), json!(0.0))
    );
    // A Tsunami takes stages without a delay: they are its pace.
    let s = check(json!({"test_type": "tsunami", "start_rate": 50, "stages": [{"duration": "1s", "rate": 50}]}))
        .expect("valid");
    assert_eq!(s.requests_per_driver, 50);
    // Stored specs from before issue 12 read back as count-bound.
    let old: TestSpec = serde_json::from_value(json!({"test_type": "AVALANCHE", "delay_ms": 0.0,
        "requests_per_driver": 5, "throughput_per_driver": null, "target_url": "http://h/",
        "method": "GET", "headers": {}, "body": null, "concurrency": 1, "timeout_ms": 1,
        "drivers": null, "driver_ids": null}))
    .expect("old rows parse");
    assert_eq!((old.duration_ms, old.time_bound()), (None, None));
}

#[test]
fn every_bad_time_field_is_named() {
    let caps = Caps::new(Some(1_000), None, Some(200.0)).expect("caps");
    let cases = [
        (json!({"stages": [{"rate": 100}]}), "stages[0].duration"),
        (json!({"stages": [{"duration": "1s"}]}), "stages[0].rate"),
        (
            json!({"stages": [{"duration": "1s", "rate": 1}, {"duration": "0s", "rate": 1}]}),
            "stages[1].duration",
        ),
        (
            json!({"stages": [{"duration": "soon", "rate": 1}]}),
            "stages[0].duration",
        ),
        (
            json!({"stages": [{"duration_ms": 0, "rate": 1}]}),
            "stages[0].duration_ms",
        ),
        (
            json!({"stages": [{"duration": "1s", "duration_ms": 1000, "rate": 1}]}),
            "stages[0].duration",
        ),
        (
            json!({"stages": [{"duration": "1s", "rate": -1}]}),
            "stages[0].rate",
        ),
        (
            json!({"stages": [{"duration": "1s", "rate": 1, "ramp": "linear"}]}),
            "ramp",
        ),
        (json!({"stages": []}), "stages"),
        (json!({"stages": [{"duration": "1s", "rate": 0}]}), "stages"),
        (
            json!({"stages": [{"duration": "1s", "rate": 1}], "duration": "1s"}),
            "duration",
        ),
        (
            json!({"stages": [{"duration": "1s", "rate": 1}], "throughput_per_driver": 5}),
            "throughput_per_driver",
        ),
        (
            json!({"test_type": "tsunami", "delay_ms": 5, "stages": [{"duration": "1s", "rate": 1}]}),
            "delay_ms",
        ),
        (
            json!({"duration": "10s", "requests_per_driver": 5}),
            "requests_per_driver",
        ),
        (json!({"duration": "10s", "duration_ms": 10}), "duration"),
        (json!({"duration": "forever"}), "duration"),
        (json!({"duration_ms": 0}), "duration_ms"),
        (json!({"duration": "2d"}), "duration"),
        (json!({"start_rate": 5, "duration": "1s"}), "start_rate"),
        (json!({"duration": "1s", "stages": "fast"}), "stages"),
    ];
    for (extra, field) in cases {
        let e = check(extra.clone()).expect_err(&extra.to_string());
        assert_eq!(e.field, field, "{extra}: {e}");
    }
    // A deployment's caps bound the stages' rates and the count they imply.
    let with_caps = |extra: Value| {
        let mut body = json!({"test_type": "avalanche", "target_url": "http://h/"});
        for (k, v) in extra.as_object().expect("an object") {
            body[k] = v.clone();
        }
        parse_input(body.to_string().as_bytes())
            .expect("json")
            .validate_with(&caps)
    };
    for (extra, field) in [
        (
            json!({"stages": [{"duration": "1s", "rate": 201}]}),
            "stages[0].rate",
        ),
        (
            json!({"start_rate": 300, "stages": [{"duration": "1s", "rate": 1}]}),
            "start_rate",
        ),
        (
            json!({"stages": [{"duration": "20s", "rate": 200}]}),
            "stages",
        ),
        (json!({"duration": "10s"}), "duration"),
    ] {
        let e = with_caps(extra.clone()).expect_err(&extra.to_string());
        assert_eq!(e.field, field, "{extra}: {e}");
    }
    // Under the caps: a duration at the deployment's rate cap.
    let s = with_caps(json!({"duration": "2s"})).expect("valid");
    assert_eq!(
        (s.throughput_per_driver, s.requests_per_driver),
        (Some(200.0), 400)
    );
}
