//! The served OpenAPI document against the code: its maxima are the limits of
//! `protocol::limits`, so the two cannot drift apart.

use super::OPENAPI;
use crate::protocol::limits::{self, Caps};
use serde_json::Value;

fn input_field(doc: &Value, field: &str) -> Value {
    doc["components"]["schemas"]["TestSpecInput"]["properties"][field].clone()
}

#[test]
fn the_document_s_bounds_are_the_limits() {
    let doc: Value = serde_json::from_str(OPENAPI).expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.0.3");
    let bounds = |field: &str| {
        let f = input_field(&doc, field);
        (f["minimum"].as_f64(), f["maximum"].as_f64())
    };
    let table: [(&str, f64, f64); 9] = [
        ("delay_ms", 0.0, limits::MAX_DELAY_MS),
        ("fail_safe_ms", 0.0, limits::MAX_FAIL_SAFE_MS as f64),
        ("total_requests", 1.0, limits::MAX_TOTAL_REQUESTS as f64),
        ("total_rate", limits::MIN_RATE, limits::MAX_RATE),
        ("requests_per_driver", 1.0, Caps::HARD.requests as f64),
        ("throughput_per_driver", limits::MIN_RATE, Caps::HARD.rate),
        ("concurrency", 1.0, Caps::HARD.concurrency as f64),
        ("timeout_ms", 1.0, limits::MAX_TIMEOUT_MS as f64),
        (
            "drivers",
            limits::MIN_DRIVERS as f64,
            limits::MAX_DRIVERS as f64,
        ),
    ];
    for (field, min, max) in table {
        assert_eq!(bounds(field), (Some(min), Some(max)), "{field}");
    }
    let ids = input_field(&doc, "driver_ids");
    assert_eq!(
        (ids["minItems"].as_u64(), ids["maxItems"].as_u64()),
        (
            Some(limits::MIN_DRIVERS as u64),
            Some(limits::MAX_DRIVERS as u64)
        )
    );
    assert_eq!(
        input_field(&doc, "concurrency")["default"].as_u64(),
        Some(limits::DEFAULT_CONCURRENCY)
    );
    assert_eq!(
        input_field(&doc, "timeout_ms")["default"].as_u64(),
        Some(limits::DEFAULT_TIMEOUT_MS)
    );
    assert_eq!(
        input_field(&doc, "fail_safe_ms")["default"].as_u64(),
        Some(limits::DEFAULT_FAIL_SAFE_MS)
    );
}

#[test]
fn the_tsunami_needs_a_delay_rule_is_in_the_document() {
    let doc: Value = serde_json::from_str(OPENAPI).expect("the document is JSON");
    let rules = doc["components"]["schemas"]["TestSpecInput"]["oneOf"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let tsunami = rules
        .iter()
        .find(|r| r["properties"]["test_type"]["enum"][0] == "tsunami")
        .expect("a Tsunami rule");
    assert_eq!(tsunami["required"][0], "delay_ms");
    assert_eq!(
        tsunami["properties"]["delay_ms"]["exclusiveMinimum"],
        Value::Bool(true)
    );
    let avalanche = rules
        .iter()
        .find(|r| r["properties"]["test_type"]["enum"][0] == "avalanche")
        .expect("an Avalanche rule");
    assert_eq!(avalanche["properties"]["delay_ms"]["maximum"], 0.0);
}

#[test]
fn the_time_bound_fields_carry_the_limits() {
    let doc: Value = serde_json::from_str(OPENAPI).expect("the document is JSON");
    let d = input_field(&doc, "duration_ms");
    assert_eq!(
        (d["minimum"].as_u64(), d["maximum"].as_u64()),
        (Some(1), Some(limits::MAX_DURATION_MS))
    );
    let stages = input_field(&doc, "stages");
    assert_eq!(stages["maxItems"].as_u64(), Some(limits::MAX_STAGES as u64));
    let stage = &stages["items"]["properties"];
    assert_eq!(
        stage["duration_ms"]["maximum"].as_u64(),
        Some(limits::MAX_DURATION_MS)
    );
    assert_eq!(stage["rate"]["maximum"].as_f64(), Some(Caps::HARD.rate));
    assert_eq!(
        input_field(&doc, "start_rate")["maximum"].as_f64(),
        Some(Caps::HARD.rate)
    );
    // A count is one way to bound a test, no longer required on its own.
    let required = &doc["components"]["schemas"]["TestSpecInput"]["required"];
    assert!(!required
        .as_array()
        .is_some_and(|r| r.iter().any(|f| f == "requests_per_driver")));
}

#[test]
fn the_thresholds_bounds_are_the_parser_s() {
    let doc: Value = serde_json::from_str(OPENAPI).expect("the document is JSON");
    let t = input_field(&doc, "thresholds");
    assert_eq!(
        t["maxItems"].as_u64(),
        Some(crate::thresholds::MAX_THRESHOLDS as u64)
    );
    assert_eq!(
        t["items"]["oneOf"][0]["maxLength"].as_u64(),
        Some(crate::thresholds::MAX_TEXT as u64)
    );
}

#[test]
fn the_transport_fields_bounds_are_the_limits() {
    let doc: Value = serde_json::from_str(OPENAPI).expect("the document is JSON");
    let streams = input_field(&doc, "streams_per_connection");
    assert_eq!(
        (streams["minimum"].as_u64(), streams["maximum"].as_u64()),
        (Some(1), Some(limits::MAX_STREAMS_PER_CONNECTION))
    );
    let tls = &doc["components"]["schemas"]["TlsSettings"]["properties"];
    assert_eq!(
        tls["ca_pem"]["maxLength"].as_u64(),
        Some(limits::MAX_CA_PEM_BYTES as u64)
    );
    assert_eq!(
        tls["server_name"]["maxLength"].as_u64(),
        Some(limits::MAX_SERVER_NAME_LEN as u64)
    );
    assert_eq!(
        input_field(&doc, "http_version")["enum"],
        serde_json::json!(["1.1", "2"])
    );
}

#[test]
fn a_rate_change_s_bounds_are_the_limits() {
    let doc: Value = serde_json::from_str(OPENAPI).expect("the document is JSON");
    let input = &doc["components"]["schemas"]["RateInput"]["properties"];
    let bounds = |field: &str| {
        let f = &input[field];
        (f["minimum"].as_f64(), f["maximum"].as_f64())
    };
    assert_eq!(bounds("delay_ms"), (Some(0.0), Some(limits::MAX_DELAY_MS)));
    for field in ["total_rate", "throughput_per_driver"] {
        assert_eq!(
            bounds(field),
            (Some(limits::MIN_RATE), Some(limits::MAX_RATE)),
            "{field}"
        );
    }
    // The document's fields are the input type's, no more.
    let names: Vec<&str> = input
        .as_object()
        .expect("fields")
        .keys()
        .map(String::as_str)
        .collect();
    let typed = serde_json::to_value(crate::orchestrator::rate_change::RateInput {
        delay_ms: Some(1.0),
        throughput_per_driver: Some(1.0),
        total_rate: Some(1.0),
    })
    .expect("serializes");
    let mut want: Vec<&str> = typed
        .as_object()
        .expect("fields")
        .keys()
        .map(String::as_str)
        .collect();
    let mut names = names;
    names.sort_unstable();
    want.sort_unstable();
    assert_eq!(names, want);
    assert!(doc["paths"]["/api/v1/tests/{id}"]["patch"].is_object());
}
