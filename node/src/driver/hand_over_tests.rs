//! The driver's side of a hand-over (issue 13), on the in-memory bus: a receiver adds the
//! requests and takes the pace once, the lost driver stops saying why, an idle driver joins.

use super::tests::{avalanche, rig};
use crate::protocol::{self, RunState};
use serde_json::json;

fn hand_over(test: &str, seq: u64, from: &str, parts: serde_json::Value) -> String {
    let at = protocol::now_unix_ms() + 200;
    json!({"type": "hand_over", "test_id": test, "seq": seq, "at_ms": at, "from": from,
           "parts": parts})
    .to_string()
}

#[tokio::test]
async fn a_receiver_adds_the_requests_and_takes_the_pace_once() {
    let mut r = rig(None);
    r.run_long().await;
    let count = |r: &super::tests::Rig| {
        let a = r.control.active.as_ref().expect("running");
        let s = a.running.snapshot();
        (
            s.requests,
            s.retimes.iter().map(|t| t.tag).collect::<Vec<_>>(),
        )
    };
    let parts = json!({"me": {"requests": 500, "rate": 200}, "other": {"requests": 1}});
    r.control_msg(&hand_over("long", 3, "lost", parts.clone()))
        .await;
    assert_eq!(count(&r), (100_500, vec![3]));
    // Read twice, another test's, for other drivers: nothing more.
    r.control_msg(&hand_over("long", 3, "lost", parts.clone()))
        .await;
    r.control_msg(&hand_over("elsewhere", 4, "lost", parts))
        .await;
    r.control_msg(&hand_over(
        "long",
        5,
        "lost",
        json!({"other": {"requests": 9}}),
    ))
    .await;
    assert_eq!(count(&r), (100_500, vec![3]));
    assert_eq!(r.malformed(), 0);
    // Out of range, or naming the lost driver as a receiver: counted and skipped.
    r.control_msg(&hand_over(
        "long",
        6,
        "lost",
        json!({"me": {"requests": 0}}),
    ))
    .await;
    r.control_msg(&hand_over("long", 7, "me", json!({"me": {"requests": 5}})))
        .await;
    assert_eq!(r.malformed(), 2);
    // An unpaced part (no rate) adds requests only.
    r.control_msg(&hand_over(
        "long",
        8,
        "gone",
        json!({"me": {"requests": "20"}}),
    ))
    .await;
    assert_eq!(count(&r), (100_520, vec![3]));
    r.control_msg(r#"{"type":"stop","test_id":"long"}"#).await;
    let f = r.finals().await;
    let took: Vec<(u64, &str, u64)> = (f[0].hand_overs.iter())
        .map(|t| (t.seq, t.from.as_str(), t.requests))
        .collect();
    assert_eq!(took, [(3, "lost", 500), (8, "gone", 20)]);
    assert_eq!(f[0].requests, 100_520);
}

#[tokio::test]
async fn the_lost_driver_stops_and_says_its_share_was_handed_over() {
    let mut r = rig(None);
    r.run_long().await;
    r.control_msg(&hand_over("long", 1, "me", json!({"d2": {"requests": 5}})))
        .await;
    let f = r.finals().await;
    assert_eq!(f[0].test_status, Some(RunState::Stopped));
    let why = f[0].reason.as_deref().unwrap_or("");
    assert!(
        why.starts_with("handed over:") && why.contains("d2"),
        "{why}"
    );
}

#[tokio::test]
async fn an_idle_driver_joins_with_the_config_given_and_reports_what_it_took() {
    let mut r = rig(None);
    let mut config = avalanche("t9", 10);
    config["drivers"] = json!(["a", "me"]);
    config["shares"] = json!({"me": {"request_count": 3, "rate_scale": 1.0}});
    let msg = json!({"type": "hand_over", "test_id": "t9", "seq": 2,
        "at_ms": protocol::now_unix_ms(), "from": "lost",
        "parts": {"me": {"requests": 3}}, "config": config});
    r.control_msg(&msg.to_string()).await;
    let f = r.finals().await;
    assert_eq!((f.len(), f[0].test_id.as_str()), (1, "t9"));
    assert_eq!((f[0].requests, f[0].requests_sent), (3, 3));
    assert_eq!(f[0].hand_overs[0].requests, 3);
    // A config for another test, or not naming this driver, is not joined.
    let mut other = avalanche("t10", 10);
    other["drivers"] = json!(["a"]);
    let msg = json!({"type": "hand_over", "test_id": "t10", "seq": 1,
        "at_ms": protocol::now_unix_ms(), "from": "lost",
        "parts": {"me": {"requests": 3}}, "config": other});
    r.control_msg(&msg.to_string()).await;
    assert!(r.control.active.is_none());
}
