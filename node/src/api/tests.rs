//! The REST API and the orchestrator's coordination on the in-memory bus: no broker, no
//! processes. What goes out on the bus is read back from it; what drivers would send is put on it.

use super::router;
use crate::bus::{Bus, MemoryBus};
use crate::orchestrator::{Orchestrator, OrchestratorConfig};
use crate::protocol::{self, Topics};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

struct Rig {
    o: Orchestrator,
    bus: MemoryBus,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let topics = Topics::with_prefix("");
    let bus = MemoryBus::new(topics.clone());
    let cfg = OrchestratorConfig {
        config_gap: Duration::ZERO,
        start_delay: Duration::ZERO,
        ..OrchestratorConfig::new(
            "orch",
            "",
            "127.0.0.1:0",
            topics,
            dir.path().join("o.sqlite"),
        )
    };
    let o = Orchestrator::start_on(cfg, Arc::new(bus.handle()))
        .await
        .expect("started");
    Rig { o, bus, _dir: dir }
}

impl Rig {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .expect("request");
        let resp = router(self.o.clone(), super::Access::open())
            .oneshot(req)
            .await
            .expect("answer");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// What a Floodgate driver sends: its registration (only a registration makes a driver;
    /// sending it again changes nothing), then a heartbeat.
    async fn beat(&self, id: &str) {
        let reg = json!({"node_id": id, "node_IP": "127.0.0.1:1", "message_type": "DRIVER_NODE_REGISTER",
                         "agent": "floodgate", "heartbeat_ms": 1000});
        self.bus
            .publish(&self.bus.topics().register, id, reg.to_string().as_bytes())
            .await
            .expect("publish");
        let beat =
            json!({"node_id": id, "heartbeat": "YES", "agent": "floodgate", "heartbeat_ms": 1000});
        self.bus
            .publish(
                &self.bus.topics().heartbeat,
                id,
                beat.to_string().as_bytes(),
            )
            .await
            .expect("publish");
    }

    async fn until(&self, what: &str, mut ok: impl FnMut(&Self) -> bool) {
        for _ in 0..200 {
            if ok(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    fn on(&self, topic: &str) -> Vec<Value> {
        self.bus
            .messages(topic)
            .iter()
            .filter_map(|m| serde_json::from_slice(m).ok())
            .collect()
    }
}

fn avalanche(trigger: bool) -> Value {
    json!({"test_type": "avalanche", "requests_per_driver": 4, "target_url": "http://127.0.0.1:1/", "trigger": trigger})
}

#[tokio::test]
async fn a_test_is_created_triggered_refused_stopped_and_ended_through_the_api() {
    let r = rig().await;
    let (status, v) = r
        .call("POST", "/api/v1/tests", Some(json!({"test_type": "x"})))
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("test_type"))
    );
    let (status, v) = r.call("POST", "/api/v1/tests", Some(avalanche(true))).await;
    assert_eq!(status, StatusCode::CONFLICT, "no drivers yet: {v}");

    r.beat("a").await;
    r.beat("b").await;
    r.until("two drivers", |r| {
        r.o.drivers().iter().filter(|d| d.alive).count() == 2
    })
    .await;
    let (status, v) = r.call("POST", "/api/v1/tests", Some(avalanche(true))).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::CREATED, Some("running")),
        "{v}"
    );
    let id = v["id"].as_str().expect("id").to_string();
    let triggers = r.on(&r.bus.topics().trigger);
    assert_eq!(triggers.len(), 1);
    assert_eq!(
        (
            triggers[0]["trigger"].as_str(),
            triggers[0]["test_id"].as_str()
        ),
        (Some("YES"), Some(id.as_str()))
    );
    let configs = r.on(&r.bus.topics().test_config);
    assert!(configs
        .iter()
        .all(|c| c["test_id"] == id.as_str() && c["request_count"] == 4));

    // A second create-and-trigger while it runs changes nothing.
    let (status, _) = r.call("POST", "/api/v1/tests", Some(avalanche(true))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, list) = r.call("GET", "/api/v1/tests", None).await;
    assert_eq!(list["tests"].as_array().map(Vec::len), Some(1));

    // Stop: at once, on the control topic, never on trigger.
    let (status, v) = r
        .call("POST", &format!("/api/v1/tests/{id}/stop"), None)
        .await;
    assert_eq!(
        (status, v["status"].as_str(), v["settled"].as_bool()),
        (StatusCode::OK, Some("stopped"), Some(false))
    );
    // The drivers are told in the background, once the stop has taken effect.
    let control = r.bus.topics().control.clone();
    let told = floodgate_testkit::eventually(
        "the stop on the control topic",
        std::time::Duration::from_secs(10),
        async || r.on(&control).first().cloned(),
    )
    .await;
    assert_eq!(told["type"], "stop");
    assert_eq!(r.on(&r.bus.topics().trigger).len(), 1);

    // The drivers' final reports settle it.
    for node in ["a", "b"] {
        let snap = crate::engine::Snapshot {
            requests: 4,
            sent: 2,
            ..Default::default()
        };
        let report = crate::driver::reporter_for_tests(node, &id, &snap, true);
        r.bus
            .publish(&r.bus.topics().metrics, node, &protocol::emit(&report))
            .await
            .expect("publish");
    }
    r.until("the stopped test to settle", |r| {
        r.o.get(&id).is_ok_and(|v| v.settled)
    })
    .await;
    let (_, v) = r.call("GET", &format!("/api/v1/tests/{id}"), None).await;
    assert_eq!(
        (v["status"].as_str(), v["aggregate"]["sent"].as_u64()),
        (Some("stopped"), Some(4))
    );
    let (status, _) = r
        .call("POST", &format!("/api/v1/tests/{id}/stop"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "already ended");
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_with_the_documented_json_error() {
    let r = rig().await;
    let big = format!(r#"{{"body":"{}"}}"#, "x".repeat(3 << 20));
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/tests")
        .header("content-type", "application/json")
        .body(Body::from(big))
        .expect("request");
    let resp = router(r.o.clone(), super::Access::open())
        .oneshot(req)
        .await
        .expect("answer");
    let status = resp.status();
    let json = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(json, "not JSON: {v}");
    assert_eq!(v["field"], "body", "{v}");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("limit")),
        "{v}"
    );
    assert!(r.o.list().is_empty());
}

#[tokio::test]
async fn a_path_id_that_is_not_utf8_is_a_json_400_naming_the_id() {
    let r = rig().await;
    let (status, v) = r.call("GET", "/api/v1/tests/%FF", None).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("id")),
        "{v}"
    );
}

/// Issue 10, item 5: figures that used to make every driver panic are a 400 naming the field.
#[tokio::test]
async fn a_rate_of_1e_300_or_a_delay_of_1e300_is_a_400_naming_the_field() {
    let r = rig().await;
    let cases = [
        (
            json!({"test_type": "avalanche", "requests_per_driver": 4, "target_url": "http://127.0.0.1:1/", "throughput_per_driver": 1e-300}),
            "throughput_per_driver",
        ),
        (
            json!({"test_type": "tsunami", "requests_per_driver": 4, "target_url": "http://127.0.0.1:1/", "delay_ms": 1e300}),
            "delay_ms",
        ),
    ];
    for (body, field) in cases {
        let (status, v) = r.call("POST", "/api/v1/tests", Some(body)).await;
        assert_eq!(
            (status, v["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{v}"
        );
    }
    assert!(r.on(&r.bus.topics().test_config).is_empty());
}

/// Issue 10, item 8: heartbeats with unknown IDs make no driver, and however many
/// registrations arrive (with IDs of any length), the drivers list and every dashboard event
/// stay bounded.
#[tokio::test]
async fn fake_drivers_cannot_grow_the_registry_or_the_dashboard_events() {
    let r = rig().await;
    let topics = r.bus.topics().clone();
    for i in 0..2000 {
        let id = format!("ghost-{i}");
        let beat = json!({"node_id": id, "heartbeat": "YES", "node_IP": "h:1", "role": "driver"});
        r.bus
            .publish(&topics.heartbeat, &id, beat.to_string().as_bytes())
            .await
            .expect("publish");
    }
    let huge = "x".repeat(1_000_000);
    let reg = json!({"node_id": huge, "node_IP": "h:1", "message_type": "DRIVER_NODE_REGISTER"});
    r.bus
        .publish(&topics.register, "huge", reg.to_string().as_bytes())
        .await
        .expect("publish");
    let skipped = |r: &Rig| {
        r.o.bus_stats()
            .malformed
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    r.until("every fake message to be skipped", |r| skipped(r) >= 2001)
        .await;
    assert!(r.o.drivers().is_empty(), "no heartbeat made a driver");
    assert!(
        r.on(&topics.control).is_empty(),
        "a heartbeat without Floodgate's agent asks nobody to register"
    );
    // One with it: the node may be a Floodgate driver that registered before this
    // orchestrator started, so every Floodgate driver is asked to register again.
    let beat = json!({"node_id": "earlier", "heartbeat": "YES", "agent": "floodgate"});
    r.bus
        .publish(&topics.heartbeat, "earlier", beat.to_string().as_bytes())
        .await
        .expect("publish");
    r.until("a request to register again", |r| {
        r.on(&topics.control)
            .iter()
            .any(|c| c["type"] == "register" && c.get("node_id").is_none())
    })
    .await;
    assert!(r.o.drivers().is_empty());

    for i in 0..1000 {
        let id = format!("fake-{i}-{}", "y".repeat(100));
        let reg = json!({"node_id": id, "node_IP": "a".repeat(500), "message_type": "DRIVER_NODE_REGISTER",
                         "agent": "floodgate", "version": "v".repeat(500)});
        r.bus
            .publish(&topics.register, &id, reg.to_string().as_bytes())
            .await
            .expect("publish");
    }
    r.until("the registry to fill", |r| {
        r.o.drivers().len() == crate::protocol::limits::MAX_KNOWN_DRIVERS
    })
    .await;

    let req = Request::builder()
        .uri("/api/v1/events")
        .body(Body::empty())
        .expect("request");
    let resp = router(r.o.clone(), super::Access::open())
        .oneshot(req)
        .await
        .expect("answer");
    let mut body = resp.into_body();
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("an event")
        .expect("a frame")
        .expect("no error");
    let event = frame.into_data().expect("data");
    assert!(
        event.len() < 100_000,
        "one dashboard event is {} bytes",
        event.len()
    );
    assert!(r.o.drivers().len() <= crate::protocol::limits::MAX_KNOWN_DRIVERS);
}

#[tokio::test]
async fn a_rate_change_goes_to_the_drivers_on_the_control_topic_and_into_the_view() {
    let r = rig().await;
    r.beat("a").await;
    r.beat("b").await;
    r.until("two drivers", |r| {
        r.o.drivers().iter().filter(|d| d.alive).count() == 2
    })
    .await;
    let (status, v) = r
        .call(
            "PATCH",
            "/api/v1/tests/none",
            Some(json!({"throughput_per_driver": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let spec = json!({"test_type": "avalanche", "requests_per_driver": 100, "throughput_per_driver": 10,
                      "target_url": "http://127.0.0.1:1/", "trigger": true});
    let (_, v) = r.call("POST", "/api/v1/tests", Some(spec)).await;
    let path = format!("/api/v1/tests/{}", v["id"].as_str().expect("id"));
    // (body, status, field named)
    let refused = [
        (
            json!({"total_rate": 20}),
            StatusCode::BAD_REQUEST,
            Some("total_rate"),
        ),
        (
            json!({"throughput_per_driver": 1e9}),
            StatusCode::BAD_REQUEST,
            Some("throughput_per_driver"),
        ),
        (
            json!({"throughput_per_driver": 5, "x": 1}),
            StatusCode::BAD_REQUEST,
            Some("x"),
        ),
        (json!([1]), StatusCode::BAD_REQUEST, Some("body")),
    ];
    for (body, status, field) in refused {
        let (got, v) = r.call("PATCH", &path, Some(body.clone())).await;
        assert_eq!((got, v["field"].as_str()), (status, field), "{body}: {v}");
    }
    assert!(r.on(&r.bus.topics().control).is_empty(), "nothing was sent");
    let before = protocol::now_unix_ms();
    let (status, v) = r
        .call("PATCH", &path, Some(json!({"throughput_per_driver": 40})))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let change = &v["rate_changes"][0];
    assert_eq!(
        (change["seq"].as_u64(), change["total_rate"].as_f64()),
        (Some(1), Some(80.0)),
        "{v}"
    );
    let sent = r.on(&r.bus.topics().control);
    assert_eq!(sent.len(), 1);
    let at = sent[0]["at_ms"].as_u64().expect("at_ms");
    assert!(
        at >= before + protocol::limits::RATE_CHANGE_LEAD_MS,
        "{}",
        sent[0]
    );
    assert_eq!(
        (
            sent[0]["type"].as_str(),
            sent[0]["seq"].as_u64(),
            &sent[0]["rates"]
        ),
        (Some("set_rate"), Some(1), &json!({"a": 40.0, "b": 40.0}))
    );
    assert_eq!(change["at_ms"].as_u64(), Some(at));
    // Stopped, it takes no more.
    r.call("POST", &format!("{path}/stop"), None).await;
    let (status, _) = r
        .call("PATCH", &path, Some(json!({"throughput_per_driver": 50})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}
