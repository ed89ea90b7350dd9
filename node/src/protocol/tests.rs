//! Tests of the wire protocol: the emitted shape in each seed style, and the liberal parser fed
//! what the public implementations of the spec are known to send (docs/protocol.md).

use super::config::ConfigError;
use super::*;
use serde_json::{json, Value};

fn emitted(v: &impl Serialize) -> Value {
    serde_json::from_slice(&emit(v)).expect("emitted JSON parses")
}

fn config() -> TestConfig {
    TestConfig {
        test_id: "t1".into(),
        test_type: TestType::Tsunami,
        delay_us: 10_000,
        requests: Some(1000),
        target: Some(HttpTarget::get("http://127.0.0.1:8080/ping")),
        throughput_per_driver: Some(500.0),
        concurrency: Some(8),
        timeout_ms: None,
        drivers: vec!["a".into()],
        orchestrator_id: None,
        time_bound: None,
        transport: Default::default(),
        mix: Vec::new(),
        checks: None,
        shares: Default::default(),
        fail_safe_ms: None,
    }
}

fn parse_config(raw: Value) -> Result<TestConfig, ConfigError> {
    TestConfig::parse(raw.to_string().as_bytes(), DelayUnit::Seconds)
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
        agent: Some(AGENT.into()),
        heartbeat_ms: Some(1000),
        capacity: Some(2.5),
    };
    let v = emitted(&r);
    assert_eq!(v["capacity"], 2.5);
    assert_eq!(v["node_id"], "d1");
    assert_eq!(v["node_IP"], "127.0.0.1:9000");
    assert_eq!(v["message_type"], "DRIVER_NODE_REGISTER");
    assert_eq!(v["agent"], "floodgate");
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
        assert_eq!(r.agent, None);
    }
    let o: Register =
        parse(br#"{"node_id":"o","message_type":"ORCHESTRATOR_NODE_REGISTER"}"#).expect("parses");
    assert!(!o.is_driver());
    // Other messages that happen to carry a node_id are not registrations.
    assert!(parse::<Register>(br#"{"node_id":"ghost","test_id":"t","metrics":{}}"#).is_err());
    assert!(parse::<Register>(br#"{"node_id":"","node_IP":"h:1"}"#).is_err());
}

#[test]
fn test_config_emits_numbers_and_seconds_by_default_with_exact_extensions() {
    let v = config().to_json(&SeedStyle::default());
    assert_eq!(v["test_type"], "TSUNAMI");
    assert_eq!(v["test_message_delay"], json!(0.01), "10 ms in seconds");
    assert_eq!(v["message_count_per_driver"], json!(1000), "a JSON integer");
    assert_eq!(v["delay_us"], json!(10_000));
    assert_eq!(v["request_count"], json!(1000));
    assert_eq!(v["test_server"], "http://127.0.0.1:8080/ping");
    assert_eq!(v["throughput_per_driver"], 500.0);
    // Floodgate drivers read the exact fields, whatever unit they assume for the seed's.
    for unit in [DelayUnit::Seconds, DelayUnit::Millis] {
        let back = TestConfig::parse(&config().emit(&SeedStyle::default()), unit).expect("parses");
        assert_eq!(back, config());
    }
}

#[test]
fn test_config_follows_the_configured_seed_style() {
    let quoted_ms = SeedStyle {
        numbers: NumberStyle::String,
        delay_unit: DelayUnit::Millis,
        type_case: TypeCase::Title,
    };
    let v = config().to_json(&quoted_ms);
    assert_eq!(v["test_type"], "Tsunami");
    assert_eq!(v["test_message_delay"], "10");
    assert_eq!(v["message_count_per_driver"], "1000");
    assert_eq!(
        v["delay_us"],
        json!(10_000),
        "extensions stay exact numbers"
    );
    let whole_seconds = TestConfig {
        delay_us: 2_000_000,
        ..config()
    };
    assert_eq!(
        whole_seconds.to_json(&SeedStyle::default())["test_message_delay"],
        json!(2),
        "a whole number of seconds is a JSON integer, for peers that decode integers"
    );
}

#[test]
fn test_config_parses_what_other_orchestrators_send() {
    // (config, delay unit of the reader, delay µs, count, target)
    let cases = [
        // Only the three fields one peer sends: delay in whole seconds, no count, no target.
        (
            json!({"test_id": "XVlBzgbaiCMRAjWwhTHc", "test_type": "TSUNAMI", "test_message_delay": 1}),
            DelayUnit::Seconds,
            1_000_000,
            None,
            None,
        ),
        (
            json!({"test_id": "t", "test_type": "Avalanche", "test_message_delay": 0, "message_count_per_driver": 5}),
            DelayUnit::Millis,
            0,
            Some(5),
            None,
        ),
        (
            json!({"test_id": "t", "test_type": "tsunami", "test_message_delay": "2.5", "message_count_per_driver": "5"}),
            DelayUnit::Millis,
            2_500,
            Some(5),
            None,
        ),
        (
            json!({"test_id": 42, "test_type": "TSUNAMI", "test_message_delay": 0.1, "message_count_per_driver": 100}),
            DelayUnit::Seconds,
            100_000,
            Some(100),
            None,
        ),
        (
            json!({"test_id": "t", "test_type": "TSUNAMI", "test_message_delay": 3, "message_count_per_driver": 5,
                   "test_server": "http://localhost:8080/ping"}),
            DelayUnit::Millis,
            3_000,
            Some(5),
            Some("http://localhost:8080/ping"),
        ),
        (
            json!({"test_id": "t", "test_type": "AVALANCHE", "message_count_per_driver": 5, "target_url": "h:1/x",
                   "test_server": "http://other/"}),
            DelayUnit::Millis,
            0,
            Some(5),
            Some("http://h:1/x"),
        ),
        (
            json!({"test_id": "t", "test_type": "AVALANCHE", "message_count_per_driver": 5, "url": "http://u/"}),
            DelayUnit::Millis,
            0,
            Some(5),
            Some("http://u/"),
        ),
        (
            json!({"test_id": "t", "test_type": "AVALANCHE", "message_count_per_driver": 5, "target": "http://s/",
                   "target_url": "http://no/"}),
            DelayUnit::Millis,
            0,
            Some(5),
            Some("http://s/"),
        ),
    ];
    for (raw, unit, delay_us, count, url) in cases {
        let c = TestConfig::parse(raw.to_string().as_bytes(), unit).expect("parses");
        assert_eq!(c.delay_us, delay_us, "{raw}");
        assert_eq!(c.requests, count, "{raw}");
        assert_eq!(c.target.map(|t| t.url).as_deref(), url, "{raw}");
        assert!(c.drivers.is_empty());
    }
}

#[test]
fn a_config_that_cannot_run_is_unusable_with_a_reason_and_garbage_is_malformed() {
    let unusable = [
        (
            json!({"test_id": "t", "test_type": "BLIZZARD", "message_count_per_driver": 1}),
            "test_type",
        ),
        (
            json!({"test_id": "t", "test_type": "TSUNAMI", "message_count_per_driver": "-3"}),
            "message_count_per_driver",
        ),
        (
            json!({"test_id": "t", "test_type": "TSUNAMI", "message_count_per_driver": 1.5}),
            "message_count_per_driver",
        ),
        (
            json!({"test_id": "t", "test_type": "TSUNAMI", "message_count_per_driver": 0}),
            "message_count_per_driver",
        ),
        (
            json!({"test_id": "t", "test_type": "TSUNAMI", "test_message_delay": 1e300}),
            "test_message_delay",
        ),
        (
            json!({"test_id": "t", "test_type": "AVALANCHE", "throughput_per_driver": 1e-300}),
            "throughput_per_driver",
        ),
        (
            json!({"test_id": "t", "test_type": "AVALANCHE", "concurrency": 0, "drivers": ["me"]}),
            "concurrency",
        ),
        (
            json!({"test_id": "t", "test_type": "AVALANCHE", "fail_safe_ms": 10}),
            "fail_safe_ms",
        ),
    ];
    for (raw, field) in unusable {
        match parse_config(raw.clone()) {
            Err(ConfigError::Unusable {
                test_id, reason, ..
            }) => {
                assert_eq!(test_id, "t");
                assert!(reason.contains(field), "{raw}: {reason}");
            }
            other => panic!("{raw}: {other:?}"),
        }
    }
    for raw in [
        json!({"test_id": 5}),
        json!({"test_type": "TSUNAMI"}),
        json!({"test_id": "", "test_type": "TSUNAMI"}),
        json!([1, 2]),
    ] {
        assert!(
            matches!(parse_config(raw.clone()), Err(ConfigError::Malformed(_))),
            "{raw}"
        );
    }
}

#[test]
fn trigger_accepts_yes_true_and_stop_and_emits_only_yes() {
    let t: Trigger = parse(br#"{"test_id":"t","trigger":"YES"}"#).expect("yes");
    assert_eq!(t.trigger, TriggerAction::Start);
    let t: Trigger = parse(br#"{"test_id":"t","trigger":true,"start_at_ms":"17"}"#).expect("true");
    assert_eq!((t.trigger, t.start_at_ms), (TriggerAction::Start, Some(17)));
    let t: Trigger = parse(br#"{"test_id":"t","trigger":"stop"}"#).expect("stop");
    assert_eq!(t.trigger, TriggerAction::Stop);
    assert!(parse::<Trigger>(br#"{"test_id":"t","trigger":"MAYBE"}"#).is_err());
    assert_eq!(
        emitted(&Trigger::start("t", 5)),
        json!({"test_id": "t", "trigger": "YES", "start_at_ms": 5})
    );
}

#[test]
fn control_messages_round_trip_and_unknown_kinds_are_errors() {
    let stop = Control::Stop {
        test_id: "t".into(),
        orchestrator_id: Some("o".into()),
    };
    let v = emitted(&stop);
    assert_eq!(
        v,
        json!({"type": "stop", "test_id": "t", "orchestrator_id": "o"})
    );
    assert_eq!(parse::<Control>(&emit(&stop)).expect("parses"), stop);
    assert!(parse::<Control>(br#"{"type":"set_rate","test_id":"t","rate":5}"#).is_err());
}

fn report() -> MetricsReport {
    MetricsReport {
        node_id: "d".into(),
        test_id: "t".into(),
        report_id: "r".into(),
        metrics: LatencyFields {
            mean_latency: Some(1.5),
            median_latency: Some(1.0),
            min_latency: Some(0.25),
            max_latency: Some(9.0),
            ..Default::default()
        },
        seq: 3,
        is_final: true,
        test_status: Some(RunState::Completed),
        reason: None,
        defaults: Default::default(),
        requests_sent: 10,
        responses_received: 10,
        counted: true,
        count_delta: None,
        errors: ErrorCounts::default(),
        status: StatusClasses {
            c2: 10,
            ..Default::default()
        },
        requests: 10,
        latency_sum_us: 15_000,
        service_sum_us: 9_000,
        lag_sum_us: 0,
        elapsed_us: 1,
        histogram: None,
        service_histogram: None,
        lag_histogram: None,
        stages: Vec::new(),
        generator: None,
        handshakes: Default::default(),
        first_error: None,
        timestamp_ms: None,
        first_send_us: None,
        rate_changes: Vec::new(),
        hand_overs: Vec::new(),
        samples_ms: None,
        checks_failed: Default::default(),
        by_request: Default::default(),
    }
}

#[test]
fn metrics_emit_latencies_in_the_seed_style_and_round_trip() {
    let m = report();
    let v = m.to_json(&SeedStyle::default());
    assert_eq!(v["metrics"]["mean_latency"], json!(1.5));
    assert_eq!(v["test_status"], "complete");
    assert_eq!(v["final"], true);
    assert_eq!(v["status"]["2xx"], 10);
    assert!(
        v.get("counted").is_none(),
        "only a report without counts says so"
    );
    let quoted = SeedStyle {
        numbers: NumberStyle::String,
        ..Default::default()
    };
    let v = m.to_json(&quoted);
    assert_eq!(v["metrics"]["min_latency"], "0.250");
    for style in [SeedStyle::default(), quoted] {
        assert_eq!(
            parse::<MetricsReport>(&m.emit(&style)).expect("round trip"),
            m
        );
    }
}

#[test]
fn metrics_from_other_implementations_parse_with_what_they_carry() {
    // Floats in ms, report_id empty, nothing else.
    let m: MetricsReport = parse(
        br#"{"node_id":"n","test_id":"t","report_id":"","metrics":{"mean_latency":1.2,"median_latency":1,"min_latency":0.5,"max_latency":3}}"#,
    )
    .expect("floats");
    assert_eq!(
        (
            m.metrics.mean_latency,
            m.metrics.median_latency,
            m.metrics.p99_latency
        ),
        (Some(1.2), Some(1.0), None)
    );
    assert_eq!(
        (m.seq, m.is_final, m.counted, m.test_status),
        (0, false, false, None)
    );
    // Strings, Go durations and empty values.
    let m: MetricsReport = parse(
        "{\"node_id\":\"n\",\"test_id\":\"t\",\"report_id\":\"6b1f\",\"metrics\":{\"mean_latency\":\"1.002345s\",\"median_latency\":\"850.2ms\",\"min_latency\":\"523.4µs\",\"max_latency\":\"\"}}".as_bytes(),
    )
    .expect("durations");
    assert_eq!(m.metrics.mean_latency, Some(1002.345));
    assert_eq!(m.metrics.median_latency, Some(850.2));
    assert!((m.metrics.min_latency.unwrap_or(0.0) - 0.5234).abs() < 1e-12);
    assert_eq!(m.metrics.max_latency, None);
    // A status word, an integer report_id, a count inside `metrics`, raw latencies.
    let m: MetricsReport = parse(
        br#"{"node_id":"n","test_id":"t","report_id":7,"test_status":"complete","latencies":[1.5,2.5],
             "metrics":{"mean_latency":2.0,"median_latency":null,"num_requests":2}}"#,
    )
    .expect("status");
    assert_eq!(m.report_id, "7");
    assert_eq!(m.test_status, Some(RunState::Completed));
    assert_eq!(
        (m.requests_sent, m.responses_received, m.counted),
        (2, 2, true)
    );
    assert_eq!(m.samples_ms, Some(vec![1.5, 2.5]));
    // A per-report count, and a run state in `status`.
    let m: MetricsReport = parse(
        br#"{"node_id":"n","test_id":"t","report_id":"t","no_of_req":3,"status":"done","metrics":{"mean_latency":4}}"#,
    )
    .expect("delta");
    assert_eq!((m.count_delta, m.counted), (Some(3), false));
    assert_eq!(m.test_status, Some(RunState::Completed));
    // A stored report without counts keeps saying so.
    let back: MetricsReport = parse(&emit(&m)).expect("round trip");
    assert!(!back.counted);
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
        assert!(!h.is_floodgate());
    }
    assert!(parse::<Heartbeat>(br#"{"node_id":"n","heartbeat":"NO"}"#).is_err());
    assert!(
        parse::<Heartbeat>(br#"{"node_id":"n","test_id":"t","report_id":"r"}"#).is_err(),
        "not a heartbeat"
    );
    let h: Heartbeat =
        parse(br#"{"node_id":"n","heartbeat":"YES","agent":"floodgate","heartbeat_ms":1000}"#)
            .expect("ours");
    assert!(h.is_floodgate());
    assert_eq!(h.heartbeat_ms, Some(1000));
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
        assert!(TestConfig::parse(raw, DelayUnit::Millis).is_err());
        assert!(parse::<Trigger>(raw).is_err());
        assert!(parse::<MetricsReport>(raw).is_err());
        assert!(parse::<Heartbeat>(raw).is_err());
        assert!(parse::<Register>(raw).is_err());
        assert!(parse::<Control>(raw).is_err());
    }
    assert!(matches!(
        parse::<Trigger>(b"EOT"),
        Err(ParseError::NotJson(_))
    ));
}

#[test]
fn ids_and_strings_from_kafka_are_bounded() {
    // Issue 10, item 8: a 1 MB id was accepted and shown in every dashboard event.
    let long = "x".repeat(limits::MAX_ID_LEN + 1);
    let ok = "x".repeat(limits::MAX_ID_LEN);
    let text = "x".repeat(limits::MAX_TEXT_LEN + 1);
    let reg = |id: &str, ip: &str| {
        parse::<Register>(
            json!({"node_id": id, "node_IP": ip, "message_type": "DRIVER_NODE_REGISTER"})
                .to_string()
                .as_bytes(),
        )
    };
    assert!(reg(&ok, "h:1").is_ok());
    assert!(reg(&long, "h:1").is_err());
    assert!(reg("d", &text).is_err());
    let beat = |v: Value| parse::<Heartbeat>(v.to_string().as_bytes());
    assert!(beat(json!({"node_id": ok, "heartbeat": "YES", "test_id": ok})).is_ok());
    assert!(beat(json!({"node_id": long, "heartbeat": "YES"})).is_err());
    assert!(beat(json!({"node_id": "d", "heartbeat": "YES", "test_id": long})).is_err());
    assert!(beat(json!({"node_id": "d", "heartbeat": "YES", "timestamp": text})).is_err());
    assert!(beat(json!({"node_id": "d", "heartbeat": "YES", "agent": text})).is_err());
    let rep = |v: Value| parse::<MetricsReport>(v.to_string().as_bytes());
    assert!(rep(json!({"node_id": long, "test_id": "t"})).is_err());
    assert!(rep(json!({"node_id": "d", "test_id": long})).is_err());
    assert!(rep(json!({"node_id": "d", "test_id": "t", "report_id": text})).is_err());
    let r = rep(
        json!({"node_id": "d", "test_id": "t", "reason": "r".repeat(100_000),
                       "defaults": {"k": "v".repeat(100_000), "message_count_per_driver": 5}}),
    )
    .expect("kept, but cut");
    assert!(r.reason.as_deref().map_or(0, str::len) <= limits::MAX_REASON_LEN);
    assert_eq!(
        r.defaults.keys().collect::<Vec<_>>(),
        ["message_count_per_driver"]
    );
    assert!(parse::<Trigger>(
        json!({"test_id": long, "trigger": "YES"})
            .to_string()
            .as_bytes()
    )
    .is_err());
    assert!(parse::<Control>(
        json!({"type": "stop", "test_id": long})
            .to_string()
            .as_bytes()
    )
    .is_err());
    let cfg = |v: Value| TestConfig::parse(v.to_string().as_bytes(), DelayUnit::Millis);
    assert!(matches!(
        cfg(json!({"test_id": long, "test_type": "AVALANCHE"})),
        Err(ConfigError::Malformed(_))
    ));
    assert!(matches!(
        cfg(json!({"test_id": "t", "test_type": "AVALANCHE", "drivers": [long]})),
        Err(ConfigError::Malformed(_))
    ));
    let crowd: Vec<String> = (0..=limits::MAX_KNOWN_DRIVERS)
        .map(|i| format!("d{i}"))
        .collect();
    assert!(cfg(json!({"test_id": "t", "test_type": "AVALANCHE", "drivers": crowd})).is_err());
}

#[test]
fn a_register_again_request_round_trips_with_or_without_a_node() {
    let all = Control::Register {
        node_id: None,
        orchestrator_id: Some("o".into()),
    };
    assert_eq!(
        emitted(&all),
        json!({"type": "register", "orchestrator_id": "o"})
    );
    assert_eq!(parse::<Control>(&emit(&all)).expect("parses"), all);
    assert_eq!(
        parse::<Control>(br#"{"type":"register","node_id":"d1"}"#).expect("parses"),
        Control::Register {
            node_id: Some("d1".into()),
            orchestrator_id: None
        }
    );
}

#[test]
fn topic_prefix_applies_to_every_topic() {
    let t = Topics::with_prefix("x.");
    assert_eq!(
        t.all(),
        [
            "x.register",
            "x.test_config",
            "x.trigger",
            "x.metrics",
            "x.heartbeat",
            "x.floodgate.control"
        ]
    );
}

#[test]
fn a_declared_capacity_is_read_liberally_and_one_out_of_range_is_undeclared() {
    // (the capacity as sent, what is read)
    let cases = [
        (json!(4), Some(4.0)),
        (json!("0.5"), Some(0.5)),
        (json!(0.001), Some(0.001)),
        (json!(0), None),
        (json!(-2), None),
        (json!(1e9), None),
        (json!("many"), None),
        (json!(null), None),
        (json!([1]), None),
    ];
    for (sent, want) in cases {
        let raw = json!({"node_id": "d1", "node_IP": "h:1", "capacity": sent});
        let r: Register = serde_json::from_value(raw.clone()).expect("a registration");
        assert_eq!(r.capacity, want, "register {sent}");
        let raw = json!({"node_id": "d1", "heartbeat": "YES", "capacity": sent});
        let h: Heartbeat = serde_json::from_value(raw).expect("a heartbeat");
        assert_eq!(h.capacity, want, "heartbeat {sent}");
    }
    // Without it, as the seed sends them.
    let r: Register =
        serde_json::from_value(json!({"node_id": "d1", "node_IP": "h:1"})).expect("seed");
    assert_eq!(r.capacity, None);
}

#[test]
fn a_driver_runs_its_share_of_a_test_given_in_totals() {
    let raw = json!({"test_id": "t", "test_type": "TSUNAMI", "test_message_delay": 0.001,
        "message_count_per_driver": 1000, "delay_us": 1000, "request_count": 1000,
        "throughput_per_driver": 100.0,
        "shares": {"a": {"request_count": 500, "rate_scale": 0.5},
                   "b": {"request_count": 1500, "rate_scale": 1.5}}});
    let c = parse_config(raw.clone()).expect("a config");
    assert_eq!(c.shares.len(), 2);
    // (driver, its count, its gap, its cap)
    let cases = [
        ("a", Some(500), 2_000, Some(50.0)),
        ("b", Some(1_500), 667, Some(150.0)),
        // Not named: the broadcast figures, as another implementation's driver runs them.
        ("c", Some(1_000), 1_000, Some(100.0)),
    ];
    for (driver, count, gap, cap) in cases {
        let own = c.clone().for_driver(driver).expect("its share");
        assert_eq!(
            (own.requests, own.delay_us, own.throughput_per_driver),
            (count, gap, cap),
            "{driver}"
        );
    }
    // Emitted as it was read.
    assert_eq!(c.to_json(&SeedStyle::default())["shares"], raw["shares"]);

    // A share out of range refuses the test, naming it; so does one on a time-bound test.
    let bad = [
        (
            json!({"a": {"request_count": 0, "rate_scale": 1.0}}),
            "shares.a.request_count",
        ),
        (json!({"a": {"rate_scale": 0.0}}), "shares.a.rate_scale"),
        (json!({"a": {"rate_scale": 9.0}}), "shares.a.rate_scale"),
        (json!({"a": {"rate_scale": "x"}}), "shares.a"),
        (json!([1, 2]), "shares"),
    ];
    for (shares, named) in bad {
        let mut raw = raw.clone();
        raw["shares"] = shares.clone();
        match parse_config(raw) {
            Err(ConfigError::Unusable { reason, .. }) => {
                assert!(reason.starts_with(named), "{shares}: {reason}")
            }
            other => panic!("{shares}: {other:?}"),
        }
    }
    let mut timed = raw.clone();
    timed["duration_ms"] = json!(1000);
    timed.as_object_mut().unwrap().remove("request_count");
    assert!(matches!(
        parse_config(timed.clone()),
        Err(ConfigError::Unusable { reason, .. }) if reason.starts_with("shares")
    ));
    // A duration shares its rate alone: each driver's count is its own pace's; stages do not.
    timed["shares"] = json!({"a": {"rate_scale": 0.5}, "b": {"rate_scale": 1.5}});
    let c = parse_config(timed.clone()).expect("a duration shares its rate");
    assert_eq!(c.for_driver("a").expect("a").delay_us, 2_000);
    timed["stages"] = json!([{"duration_ms": 1000, "rate": 5}]);
    timed
        .as_object_mut()
        .unwrap()
        .remove("throughput_per_driver");
    timed["delay_us"] = json!(0);
    assert!(matches!(
        parse_config(timed),
        Err(ConfigError::Unusable { reason, .. }) if reason.starts_with("shares")
    ));
}

#[test]
fn the_fail_safe_travels_in_the_config_and_a_seed_config_has_none() {
    let raw = json!({"test_id": "t", "test_type": "AVALANCHE", "message_count_per_driver": 5,
        "fail_safe_ms": "2000"});
    let c = parse_config(raw).expect("config");
    assert_eq!(c.fail_safe_ms, Some(2000));
    assert_eq!(c.to_json(&SeedStyle::default())["fail_safe_ms"], 2000);
    let seed = parse_config(json!({"test_id": "t", "test_type": "AVALANCHE"})).expect("seed");
    assert_eq!(seed.fail_safe_ms, None);
    assert!(seed
        .to_json(&SeedStyle::default())
        .get("fail_safe_ms")
        .is_none());
}
