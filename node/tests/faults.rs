//! Faults a user's operations team meets (issue 10): a driver restarted under the same ID, a
//! Kafka outage longer than the heartbeat timeout, a start set far in the future. Real
//! processes, a real broker (the outage test starts one of its own to bounce), real HTTP.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MIN: Duration = Duration::from_secs(60);

fn tsunami(url: &str, delay_ms: u64, n: u64) -> Value {
    json!({"test_type": "tsunami", "delay_ms": delay_ms, "requests_per_driver": n, "target_url": url})
}

fn per_driver(v: &Value) -> Vec<Value> {
    v["per_driver"].as_array().cloned().unwrap_or_default()
}

async fn wait_progress(c: &Cluster, id: &str) {
    eventually("every driver to report progress", MIN, async || {
        let v = c.test(id).await;
        per_driver(&v)
            .iter()
            .all(|d| d["sent"].as_u64().unwrap_or(0) > 0)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_restarted_under_the_same_id_fails_the_test_instead_of_hanging_it() {
    let target = Target::start(&[]).await;
    let mut c = Cluster::start(2).await;
    // 3,000 requests 5 ms apart: 15 s, long enough to restart a driver in the middle.
    let id = c.start_test(tsunami(&target.url(), 5, 3000)).await;
    wait_progress(&c, &id).await;
    // A container restart in the same pod: killed, and back at once with its ID and store.
    c.drivers[1].kill();
    c.drivers[1] = c.spawn_driver(1).await;

    let v = c.wait_finished(&id, MIN).await;
    let restarted = Cluster::driver_id(1);
    assert_eq!(v["status"], "failed", "{v}");
    let reason = v["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&restarted) && reason.contains("no longer running the test"),
        "{reason}"
    );
    let per = per_driver(&v);
    assert_eq!(
        (per[0]["state"].as_str(), per[0]["sent"].as_u64()),
        (Some("done"), Some(3000))
    );
    assert_eq!(per[1]["state"], "lost");
    let partial = per[1]["sent"].as_u64().unwrap_or(0);
    assert!(
        partial > 0 && partial < 3000,
        "its results so far are kept: {partial}"
    );

    // The restarted driver takes part in the next test.
    let before = target.metrics().await.0;
    let v = c
        .run_test(json!({"test_type": "avalanche", "requests_per_driver": 100, "target_url": target.url()}), MIN)
        .await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await.0 - before, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_outage_longer_than_the_heartbeat_timeout_fails_nothing_and_loses_nothing() {
    let broker = Broker::start();
    let target = Target::start(&[]).await;
    let c = Cluster::start_on(&broker.bootstrap, 2).await;
    // 20 s per driver (2,000 requests 10 ms apart): the outage falls inside the test.
    let n = 2000;
    let id = c.start_test(tsunami(&target.url(), 10, n)).await;
    wait_progress(&c, &id).await;

    // Down for 5 s (plus the broker's own stop and start): far over the 3 s heartbeat timeout.
    let down_at = Instant::now();
    let bounce = broker.bounce(Duration::from_secs(5));
    let during = async {
        // While it is down, the orchestrator says so, and judges nobody lost.
        eventually("/healthz to say Kafka is unreachable", MIN, async || {
            let r = reqwest::get(c.url("/healthz")).await.ok()?;
            let status = r.status().as_u16();
            let v: Value = r.json().await.ok()?;
            (status == 503 && v["status"] == "kafka_unreachable").then_some(())
        })
        .await;
        let started = Instant::now();
        let (status, v) = post(
            &c.url("/api/v1/tests"),
            Some(tsunami(&target.url(), 10, 10)),
        )
        .await;
        assert_eq!(status, 503, "{v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap_or_default()
                .contains("Kafka is unreachable"),
            "{v}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a fast answer: {:?}",
            started.elapsed()
        );
        assert_eq!(
            c.alive().await.len(),
            2,
            "nobody is judged lost while the bus is down"
        );
    };
    tokio::join!(bounce, during);
    let back_at = Instant::now();
    let sent_then = c.test(&id).await["aggregate"]["sent"].as_u64().unwrap_or(0);

    // The count moves again once the clients have reconnected.
    let moving = eventually(
        "the count to move after the broker is back",
        MIN,
        async || {
            let v = c.test(&id).await;
            (v["aggregate"]["sent"].as_u64().unwrap_or(0) > sent_then || v["status"] != "running")
                .then_some(())
        },
    );
    moving.await;
    let stall = back_at.elapsed();

    let v = c.wait_finished(&id, 2 * MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["aggregate"]["sent"], 2 * n, "{v}");
    assert_eq!(v["aggregate"]["responses"], 2 * n, "{v}");
    assert_eq!(
        target.metrics().await.0,
        2 * n,
        "the target counted every request"
    );
    let list = get(&c.url("/api/v1/tests")).await;
    assert_eq!(
        list["tests"].as_array().map(Vec::len),
        Some(1),
        "the refused create left nothing behind"
    );
    eprintln!(
        "kafka outage: broker down to back {:.1} s; count moving again {:.1} s after the broker was back",
        (back_at - down_at).as_secs_f64(),
        stall.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_far_in_the_future_is_refused_and_leaves_the_driver_free() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    // A hand-made config and trigger for driver 0, starting in a day (a peer's bug, or worse).
    let topics = floodgate::protocol::Topics::with_prefix(&c.prefix);
    let d0 = Cluster::driver_id(0);
    let config = json!({"test_id": "far", "test_type": "AVALANCHE", "test_message_delay": 0,
        "message_count_per_driver": 5, "target_url": target.url(), "drivers": [d0]});
    produce_raw(&topics.test_config, config.to_string().as_bytes()).await;
    let day_ahead = floodgate::protocol::now_unix_ms() + 86_400_000;
    let trigger = json!({"test_id": "far", "trigger": "YES", "start_at_ms": day_ahead});
    produce_raw(&topics.trigger, trigger.to_string().as_bytes()).await;
    eventually("the driver to refuse the far start", MIN, async || {
        c.drivers[0]
            .output()
            .contains("at most 300 s ahead")
            .then_some(())
    })
    .await;

    let v = c
        .run_test(json!({"test_type": "avalanche", "requests_per_driver": 50, "target_url": target.url()}), MIN)
        .await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await.0, 100, "the far test never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_stopped_by_sigterm_mid_test_never_makes_it_completed() {
    let target = Target::start(&[]).await;
    let mut c = Cluster::start(2).await;
    let n = 2000;
    let id = c.start_test(tsunami(&target.url(), 5, n)).await;
    wait_progress(&c, &id).await;
    assert!(c.drivers[1].terminate().await.success(), "a clean exit");

    let v = c.wait_finished(&id, MIN).await;
    assert_eq!(v["status"], "failed", "{v}");
    let reason = v["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not every request was sent"), "{reason}");
    let per = per_driver(&v);
    let short = per[1]["sent"].as_u64().unwrap_or(0);
    assert!(short < n, "{short}");
    // What was sent is what the target counted.
    assert_eq!(target.metrics().await.0, n + short);
}
