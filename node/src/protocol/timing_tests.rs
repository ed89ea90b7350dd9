//! The time-bound fields of `test_config`, and the pace fields of `metrics`, on the wire.

use super::super::config::ConfigError;
use super::super::{
    DelayUnit, GeneratorLoad, MetricsReport, RateStage, SeedStyle, StageProgress, TestConfig,
    TimeBound,
};
use serde_json::{json, Value};

fn parse(raw: Value) -> Result<TestConfig, ConfigError> {
    TestConfig::parse(raw.to_string().as_bytes(), DelayUnit::Seconds)
}

fn base() -> Value {
    json!({"test_id": "t", "test_type": "AVALANCHE", "target": "http://h:1/"})
}

fn with(extra: Value) -> Value {
    let mut v = base();
    for (k, x) in extra.as_object().expect("object") {
        v[k] = x.clone();
    }
    v
}

#[test]
fn stages_travel_exactly_and_a_seed_config_has_none() {
    assert_eq!(parse(base()).expect("seed").time_bound, None);
    let c = parse(with(
        json!({"stages": [{"duration_ms": "2000", "rate": 100}, {"duration_ms": 1000, "rate": "0"}],
        "start_rate": 10, "message_count_per_driver": 205}),
    ))
    .expect("staged");
    let t = c.time_bound.clone().expect("time-bound");
    assert_eq!(
        t,
        TimeBound::staged(
            10.0,
            vec![
                RateStage {
                    duration_ms: 2000,
                    rate: 100.0
                },
                RateStage {
                    duration_ms: 1000,
                    rate: 0.0
                }
            ]
        )
    );
    assert_eq!(t.duration_ms, 3000);
    let wire = c.to_json(&SeedStyle::default());
    assert_eq!(wire["duration_ms"], 3000);
    assert!(wire.get("request_count").is_none(), "{wire}");
    assert_eq!(
        wire["message_count_per_driver"], 205,
        "kept for seed drivers"
    );
    assert_eq!(parse(wire).expect("round trip"), c);
    let d = parse(with(json!({"duration_ms": 1500}))).expect("duration");
    assert_eq!(d.time_bound, Some(TimeBound::duration(1500)));
    assert!(d.to_json(&SeedStyle::default()).get("stages").is_none());
}

#[test]
fn an_unusable_time_bound_is_refused_naming_the_field() {
    let cases = [
        (json!({"stages": [{"rate": 1}]}), "stages[0].duration_ms"),
        (json!({"stages": [{"duration_ms": 1000}]}), "stages[0].rate"),
        (
            json!({"stages": [{"duration_ms": 0, "rate": 1}]}),
            "stages[0].duration_ms",
        ),
        (
            json!({"stages": [{"duration_ms": 1000, "rate": -3}]}),
            "stages[0].rate",
        ),
        (
            json!({"stages": [{"duration_ms": 1000, "rate": 1}], "duration_ms": 5}),
            "duration_ms",
        ),
        (
            json!({"stages": [{"duration_ms": 1000, "rate": 1}], "throughput_per_driver": 5}),
            "throughput_per_driver",
        ),
        (
            json!({"stages": [{"duration_ms": 1000, "rate": 1}], "delay_us": 5}),
            "delay_us",
        ),
        (
            json!({"duration_ms": 1000, "request_count": 5}),
            "request_count",
        ),
        (json!({"duration_ms": 0}), "duration_ms"),
        (json!({"start_rate": 3}), "start_rate"),
        (
            json!({"stages": (0..40).map(|_| json!({"duration_ms": 1, "rate": 1})).collect::<Vec<_>>()}),
            "stages",
        ),
    ];
    for (extra, field) in cases {
        match parse(with(extra.clone())) {
            Err(ConfigError::Unusable { reason, .. }) => {
                assert!(reason.starts_with(field), "{extra}: {reason}")
            }
            other => panic!("{extra}: {other:?}"),
        }
    }
}

#[test]
fn stage_progress_and_generator_load_travel_and_bad_ones_are_dropped() {
    let mut v = json!({"node_id": "d", "test_id": "t", "report_id": "r", "seq": 2,
        "stages": [{"sent": 99, "planned": 100}],
        "generator": {"cpu": 0.97, "cores": 2, "lag_p99_us": 12000, "gap_us": 1000, "warning": "could not keep up"}});
    let r: MetricsReport = serde_json::from_value(v.clone()).expect("parses");
    assert_eq!(
        r.stages,
        vec![StageProgress {
            sent: 99,
            planned: 100
        }]
    );
    let g = r.generator.clone().expect("generator");
    assert_eq!(
        (g.cores, g.lag_p99_us, g.warning.as_deref()),
        (2, Some(12000), Some("could not keep up"))
    );
    let back: MetricsReport =
        serde_json::from_slice(&r.emit(&SeedStyle::default())).expect("round trip");
    assert_eq!(back, r);
    v["stages"] = json!("many");
    v["generator"] = json!([1, 2]);
    let r: MetricsReport = serde_json::from_value(v).expect("still parses");
    assert_eq!((r.stages.len(), r.generator), (0, None::<GeneratorLoad>));
}
