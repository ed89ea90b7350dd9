//! The fail-safe (issue 13), end to end: a real Kafka broker, three real drivers, the real
//! target counting what arrives. One driver is frozen (SIGSTOP) for longer than the test's
//! `fail_safe_ms` while the others go on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// Driver 1 is cut off (frozen) for 4 s with a 2 s fail-safe. Resumed, it hears what it missed,
/// but its lease has lapsed: it sends nothing more (no catch-up burst of the 800 requests that
/// fell due meanwhile), reports why, and the others send their whole share. The target counts
/// exactly what the drivers say they sent, and the test is not called completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_cut_off_past_its_fail_safe_sends_nothing_more_and_says_why() {
    let (per, gap_ms, rate) = (2_000u64, 5u64, 200.0);
    let target = Target::start(&[]).await;
    // A loss judged only after 10 s: the frozen driver is not lost, it stops by itself.
    let mut c = Cluster::start_with_args(3, &["--heartbeat-timeout-ms", "10000"]).await;
    let spec = json!({"test_type": "tsunami", "delay_ms": gap_ms, "requests_per_driver": per,
        "target_url": target.url(), "fail_safe_ms": 2000});
    let id = c.start_test(spec).await;
    assert_eq!(c.test(&id).await["spec"]["fail_safe_ms"], 2000);
    let before = eventually(
        "driver-1 to report 200 sent",
        Duration::from_secs(30),
        async || {
            let v = c.test(&id).await;
            let d = v["per_driver"][1].clone();
            (d["sent"].as_u64()? >= 200).then_some(d)
        },
    )
    .await;
    let asked_at = Instant::now();
    c.drivers[1].pause_for(Duration::from_secs(4)).await;
    let paused_after = asked_at.elapsed();

    let v = c.wait_finished(&id, Duration::from_secs(60)).await;
    let d1 = &v["per_driver"][1];
    assert_eq!(d1["driver_id"], Cluster::driver_id(1));
    let reason = d1["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("fail-safe: heard neither the orchestrator nor 1 of the other 2 participant(s) for 2.0 s"), "{d1}");
    // What it sent by the time it froze: what it had reported, plus at most its rate over the
    // report's age and the moments before the signal (and a request of slack).
    let sent = d1["sent"].as_u64().unwrap();
    let age_s = before["report_age_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
    let bound = before["sent"].as_u64().unwrap() as f64
        + rate * (age_s + paused_after.as_secs_f64() - 4.0 + 0.5)
        + 5.0;
    eprintln!(
        "driver-1 sent {sent} (bound {bound:.0}; {} reported before the pause)",
        before["sent"]
    );
    assert!(
        (sent as f64) <= bound,
        "driver-1 sent {sent}, more than {bound:.0}: {d1}"
    );
    assert!(sent < per, "{d1}");
    for i in [0, 2] {
        assert_eq!(v["per_driver"][i]["sent"], per, "{}", v["per_driver"][i]);
    }
    assert_ne!(v["status"], "completed", "a driver stopped short: {v}");
    assert_eq!(
        target.metrics().await.0,
        v["aggregate"]["sent"].as_u64().unwrap()
    );
}
