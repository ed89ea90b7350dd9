//! Hostile input on the wire (issue 10, items 7 and 8), with real parts: a real Kafka broker,
//! the real target, orchestrator and drivers as processes, and messages made by hand on the
//! topics as a peer implementation or an attacker with access to the broker would send them.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

/// The body of a request smuggled inside another: with a user's `Content-Length: 0` the target
/// reads each of these as a request of its own.
const PIPELINED: &str = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /ping HTTP/1.1\r\nHost: x\r\n\r\n";

/// The refused final reports the drivers sent for `test_id`, from the metrics topic.
fn refusals(prefix: &str, test_id: &str) -> Vec<Value> {
    read_topic(&format!("{prefix}metrics"))
        .into_iter()
        .filter_map(|(_, p)| serde_json::from_slice::<Value>(&p).ok())
        .filter(|r| r["test_id"] == test_id && r["test_status"] == "refused")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_headers_are_refused_everywhere_and_the_target_counts_what_is_reported() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;

    // REST: a 400 naming the field, and nothing is created.
    let smuggling = json!({"test_type": "avalanche", "requests_per_driver": 10, "target_url": target.url(),
        "headers": {"Content-Length": "0"}, "body": PIPELINED, "trigger": true});
    let (status, v) = post(&c.url("/api/v1/tests"), Some(smuggling)).await;
    assert_eq!((status, v["field"].as_str()), (400, Some("headers")), "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("Content-Length"),
        "{v}"
    );
    for (name, value) in [
        ("Transfer-Encoding", "chunked"),
        ("Connection", "close"),
        ("Host", "other"),
    ] {
        let spec = json!({"test_type": "avalanche", "requests_per_driver": 1, "target_url": target.url(),
            "headers": {name: value}});
        let (status, v) = post(&c.url("/api/v1/tests"), Some(spec)).await;
        assert_eq!((status, v["field"].as_str()), (400, Some("headers")), "{v}");
    }
    let list = get(&c.url("/api/v1/tests")).await;
    assert_eq!(list["tests"].as_array().map(Vec::len), Some(0));

    // Kafka: the same config, hand-made as another orchestrator could send it, is refused by
    // both drivers, which send nothing.
    let topics = floodgate::protocol::Topics::with_prefix(&c.prefix);
    let config = json!({"test_id": "smuggle", "test_type": "AVALANCHE", "message_count_per_driver": 10,
        "target": {"url": target.url(), "headers": [["Content-Length", "0"]], "body": PIPELINED}});
    produce_raw(&topics.test_config, config.to_string().as_bytes()).await;
    produce_raw(&topics.trigger, br#"{"test_id":"smuggle","trigger":"YES"}"#).await;
    let refused = eventually("both drivers to refuse", MIN, async || {
        let r = refusals(&c.prefix, "smuggle");
        (r.len() >= 2).then_some(r)
    })
    .await;
    for r in &refused {
        assert_eq!(r["requests_sent"], 0, "{r}");
        assert!(
            r["reason"]
                .as_str()
                .unwrap_or("")
                .contains("Content-Length"),
            "{r}"
        );
    }
    assert_eq!(
        target.metrics().await,
        (0, 0),
        "the target received nothing"
    );

    // The same body, framed by the engine: the target reads it as a body, not as requests, and
    // counts exactly what was reported (before the fix it counted four requests for each one).
    let spec = json!({"test_type": "avalanche", "requests_per_driver": 20, "target_url": target.url(),
        "headers": {"X-Test": "1"}, "body": PIPELINED});
    let v = c.run_test(spec, MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    let reported = v["aggregate"]["sent"].as_u64().unwrap();
    assert_eq!(reported, 40);
    assert_eq!(v["aggregate"]["error_total"], 0, "{v}");
    assert_eq!(target.metrics().await.0, reported);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_without_a_registration_make_no_driver_and_ids_are_bounded() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    let topics = floodgate::protocol::Topics::with_prefix(&c.prefix);
    for i in 0..300 {
        let beat = json!({"node_id": format!("ghost-{i}"), "heartbeat": "YES", "node_IP": "10.0.0.1:1",
                          "role": "driver", "agent": "floodgate", "heartbeat_ms": 1000});
        produce_raw(&topics.heartbeat, beat.to_string().as_bytes()).await;
    }
    let huge = "x".repeat(900_000);
    let reg =
        json!({"node_id": huge, "node_IP": "10.0.0.1:1", "message_type": "DRIVER_NODE_REGISTER"});
    produce_raw(&topics.register, reg.to_string().as_bytes()).await;
    let beat = json!({"node_id": huge, "heartbeat": "YES"});
    produce_raw(&topics.heartbeat, beat.to_string().as_bytes()).await;
    eventually("the fakes to be counted as skipped", MIN, async || {
        let h = get(&c.url("/healthz")).await;
        (h["kafka"]["malformed"].as_u64().unwrap_or(0) >= 302).then_some(())
    })
    .await;

    let drivers = get(&c.url("/api/v1/drivers")).await;
    let ids: Vec<&str> = drivers["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["driver-0", "driver-1"], "only the registered drivers");
    // The real drivers, asked to register again by the fakes' heartbeats, keep working.
    let v = c
        .run_test(
            json!({"test_type": "avalanche", "requests_per_driver": 25, "target_url": target.url()}),
            MIN,
        )
        .await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await.0, 50);
}
