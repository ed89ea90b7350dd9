//! Tests of the wire protocol: the seed's exact emitted shape and the liberal parser.

use super::*;
use serde_json::{json, Value};

fn emitted(v: &impl Serialize) -> Value {
    serde_json::from_slice(&emit(v)).expect("emitted JSON parses")
}

#[test]
fn register_emits_seed_field_names() {
    let r = Register {
        node_id: "d1".into(),
        node_ip: "127.0.0.1:9000".into(),
        message_type: DRIVER_REGISTER.into(),
        role: Role::Driver,
        orchestrator: None,
        version: None,
    };
    let v = emitted(&r);
    assert_eq!(v["node_id"], "d1");
    assert_eq!(v["node_IP"], "127.0.0.1:9000");
    assert_eq!(v["message_type"], "DRIVER_NODE_REGISTER");
}

#[test]
fn register_accepts_older_spellings() {
    for raw in [
        json!({"node_ID": "a", "node_ip": "h:1"}),
        json!({"node_id": "a", "node_IP": "h:1", "message_type": "DRIVER_NODE_REGISTER", "x": 1}),
    ] {
        let r: Register = parse(raw.to_string().as_bytes()).expect("parses");
        assert_eq!(r.node_id, "a");
        assert_eq!(r.node_ip, "h:1");
        assert!(r.is_driver());
    }
    let o: Register =
        parse(br#"{"node_id":"o","message_type":"ORCHESTRATOR_NODE_REGISTER"}"#).expect("parses");
    assert!(!o.is_driver());
    // Other messages that happen to carry a node_id are not registrations.
    assert!(parse::<Register>(br#"{"node_id":"ghost","test_id":"t","metrics":{}}"#).is_err());
    assert!(parse::<Register>(br#"{"node_id":"","node_IP":"h:1"}"#).is_err());
}

#[test]
fn test_config_emits_quoted_seed_values() {
    let c = TestConfig {
        test_id: "t1".into(),
        test_type: TestType::Tsunami,
        test_message_delay: 10.0,
        message_count_per_driver: 1000,
        target: None,
        throughput_per_driver: Some(500.0),
        concurrency: Some(8),
        timeout_ms: None,
        drivers: vec!["a".into()],
        orchestrator_id: None,
    };
    let v = emitted(&c);
    assert_eq!(v["test_type"], "TSUNAMI");
    assert_eq!(v["test_message_delay"], "10");
    assert_eq!(v["message_count_per_driver"], "1000");
    assert_eq!(v["throughput_per_driver"], 500.0);
    let back: TestConfig = parse(&emit(&c)).expect("round trip");
    assert_eq!(back, c);
}

#[test]
fn test_config_parses_numbers_strings_and_any_case() {
    for (ty, delay, count) in [
        (json!("avalanche"), json!(0), json!(5)),
        (json!("Tsunami"), json!("2.5"), json!("5")),
        (json!("TSUNAMI"), json!(2.5), json!(5.0)),
    ] {
        let raw = json!({"test_id": "t", "test_type": ty, "test_message_delay": delay, "message_count_per_driver": count});
        let c: TestConfig = parse(raw.to_string().as_bytes()).expect("parses");
        assert_eq!(c.message_count_per_driver, 5);
        assert!(c.drivers.is_empty());
    }
}

#[test]
fn test_config_rejections_name_the_field() {
    let err = parse::<TestConfig>(
        br#"{"test_id":"t","test_type":"BLIZZARD","message_count_per_driver":1}"#,
    )
    .expect_err("bad type");
    assert!(err.to_string().contains("test_type"), "{err}");
    let err = parse::<TestConfig>(
        br#"{"test_id":"t","test_type":"TSUNAMI","message_count_per_driver":"-3"}"#,
    )
    .expect_err("negative count");
    assert!(
        err.to_string().contains("message_count_per_driver"),
        "{err}"
    );
    let err = parse::<TestConfig>(
        br#"{"test_id":"t","test_type":"TSUNAMI","message_count_per_driver":1.5}"#,
    )
    .expect_err("fractional count");
    assert!(
        err.to_string().contains("message_count_per_driver"),
        "{err}"
    );
}

#[test]
fn trigger_accepts_yes_true_and_stop() {
    let t: Trigger = parse(br#"{"test_id":"t","trigger":"YES"}"#).expect("yes");
    assert_eq!(t.trigger, TriggerAction::Start);
    let t: Trigger = parse(br#"{"test_id":"t","trigger":true,"start_at_ms":"17"}"#).expect("true");
    assert_eq!((t.trigger, t.start_at_ms), (TriggerAction::Start, Some(17)));
    let t: Trigger = parse(br#"{"test_id":"t","trigger":"stop"}"#).expect("stop");
    assert_eq!(t.trigger, TriggerAction::Stop);
    assert!(parse::<Trigger>(br#"{"test_id":"t","trigger":"MAYBE"}"#).is_err());
    let v = emitted(&Trigger {
        test_id: "t".into(),
        trigger: TriggerAction::Start,
        start_at_ms: None,
    });
    assert_eq!(v, json!({"test_id": "t", "trigger": "YES"}));
}

#[test]
fn metrics_emit_latencies_as_ms_strings() {
    let m = MetricsReport {
        node_id: "d".into(),
        test_id: "t".into(),
        report_id: "r".into(),
        metrics: LatencyFields {
            mean_latency: 1.5,
            median_latency: 1.0,
            min_latency: 0.25,
            max_latency: 9.0,
            ..Default::default()
        },
        seq: 3,
        is_final: true,
        requests_sent: 10,
        responses_received: 10,
        errors: ErrorCounts::default(),
        status: StatusClasses {
            c2: 10,
            ..Default::default()
        },
        requests_total: 10,
        latency_sum_us: 15_000,
        service_sum_us: 9_000,
        elapsed_us: 1,
        histogram: None,
        service_histogram: None,
        timestamp_ms: None,
    };
    let v = emitted(&m);
    assert_eq!(v["metrics"]["mean_latency"], "1.500");
    assert_eq!(v["metrics"]["min_latency"], "0.250");
    assert_eq!(v["final"], true);
    assert_eq!(v["status"]["2xx"], 10);
    assert_eq!(parse::<MetricsReport>(&emit(&m)).expect("round trip"), m);
}

#[test]
fn metrics_from_older_implementations_parse() {
    let raw = br#"{"node_id":"n","test_id":"t","report_id":"","metrics":{"mean_latency":"1.2","median_latency":1,"min_latency":"","max_latency":"3"}}"#;
    let m: MetricsReport = parse(raw).expect("parses");
    assert_eq!(m.metrics.mean_latency, 1.2);
    assert_eq!(m.metrics.min_latency, 0.0);
    assert_eq!(m.seq, 0);
    assert!(!m.is_final);
}

#[test]
fn heartbeat_accepts_yes_true_and_any_timestamp() {
    for raw in [
        json!({"node_id": "n", "heartbeat": "YES", "timestamp": "2024-01-01 10:00:00"}),
        json!({"node_id": "n", "heartbeat": true, "timestamp": 1700000000}),
        json!({"node_id": "n", "heartbeat": "yes"}),
    ] {
        let h: Heartbeat = parse(raw.to_string().as_bytes()).expect("parses");
        assert_eq!(h.heartbeat, "YES");
    }
    assert!(parse::<Heartbeat>(br#"{"node_id":"n","heartbeat":"NO"}"#).is_err());
    assert!(
        parse::<Heartbeat>(br#"{"node_id":"n","test_id":"t","report_id":"r"}"#).is_err(),
        "not a heartbeat"
    );
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for raw in [
        &b"EOT"[..],
        b"EOFBREAK",
        b"",
        b"{",
        b"[]",
        b"null",
        b"{\"test_id\":5}",
        &[0xff, 0xfe],
    ] {
        assert!(parse::<TestConfig>(raw).is_err());
        assert!(parse::<Trigger>(raw).is_err());
        assert!(parse::<MetricsReport>(raw).is_err());
        assert!(parse::<Heartbeat>(raw).is_err());
        assert!(parse::<Register>(raw).is_err());
    }
    assert!(matches!(
        parse::<Trigger>(b"EOT"),
        Err(ParseError::NotJson(_))
    ));
}

#[test]
fn topic_prefix_applies_to_all_five() {
    let t = Topics::with_prefix("x.");
    assert_eq!(
        t.all(),
        [
            "x.register",
            "x.test_config",
            "x.trigger",
            "x.metrics",
            "x.heartbeat"
        ]
    );
}
