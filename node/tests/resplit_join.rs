//! Re-split on loss to a replacement (issue 13, item 2), end to end: a real Kafka broker, real
//! drivers and the real target. A fourth driver starts while three run a test (a replacement
//! pod of the same Deployment); one of the three is killed (SIGKILL), and the fourth joins the
//! test in its place with its unsent share at its pace. One test in this binary, so no sibling
//! test's processes share its two cores while its rates are measured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const TOTAL: u64 = 12_000;
const RATE: f64 = 1_200.0;

/// The replacement takes the whole unsent share at the lost driver's 400 req/s, the others keep
/// their pace: the drivers' counts add up to exactly the total, the target counts the total
/// plus at most the stated unknown, the total rate holds once the replacement runs, and the
/// test completes with the replacement among its drivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_that_joins_takes_a_killed_drivers_share() {
    let target = Target::start(&[]).await;
    let mut c = Cluster::start(3).await;
    let id = kill_mid_shared_test(&mut c, &target, 1, true).await;
    let (lost, replacement) = (Cluster::driver_id(1), Cluster::driver_id(3));
    let v = c.wait_finished(&id, Duration::from_secs(90)).await;
    assert_eq!(v["status"], "completed", "{v}");
    let h = &v["hand_overs"][0];
    eprintln!("hand-over: {h}");
    assert_eq!(v["hand_overs"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        (h["from"].as_str(), h["replacement"].as_str()),
        (Some(lost.as_str()), Some(replacement.as_str()))
    );
    let unsent = h["unsent"].as_u64().unwrap();
    let part = &h["parts"][&replacement];
    assert_eq!(
        (part["requests"].as_u64(), num(&part["rate"])),
        (Some(unsent), 400.0),
        "{h}"
    );
    assert_eq!(
        h["parts"].as_object().unwrap().len(),
        1,
        "the others keep their own: {h}"
    );
    assert!(
        v["drivers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == replacement.as_str()),
        "{v}"
    );

    let per = driver_counts(&v);
    eprintln!("per driver (id, sent, planned): {per:?}");
    assert_eq!(v["aggregate"]["sent"].as_u64(), Some(TOTAL), "{per:?}");
    for (d, sent, planned) in &per {
        assert_eq!(sent, planned, "{d}: {per:?}");
    }
    assert!(
        per.iter()
            .any(|(d, sent, _)| *d == replacement && *sent == unsent),
        "{per:?}"
    );
    let unknown = h["unknown"].as_u64().unwrap();
    let (arrived, _) = target.metrics().await;
    eprintln!("the target counted {arrived} for a total of {TOTAL}, unknown at most {unknown}");
    assert!(
        (TOTAL..=TOTAL + unknown).contains(&arrived),
        "the target counted {arrived}: {h}"
    );

    // The total rate holds while the replacement runs beside the others (it started late, by
    // the time the loss took to judge, so it ends alone): each chart interval from its first
    // report until another driver reaches its last request. The points are a second apart
    // here (the chart waits out the silent lost driver).
    let series = c.get(&format!("/api/v1/tests/{id}/series")).await;
    let points = series["points"].as_array().unwrap();
    let sent = |p: &Value, d: &str| p["drivers"][d]["sent"].as_u64().unwrap_or(0);
    let mut after = Vec::new();
    for w in points.windows(2) {
        let joined = sent(&w[0], &replacement) > 0;
        let ending = per
            .iter()
            .any(|(d, _, planned)| *d != replacement && *d != lost && sent(&w[1], d) >= *planned);
        if joined && !ending {
            after.push((w[0]["t_ms"].as_u64().unwrap(), num(&w[1]["rps"])));
        }
    }
    let shown: Vec<(u64, f64)> = (points.iter())
        .map(|p| (p["t_ms"].as_u64().unwrap(), num(&p["rps"])))
        .collect();
    eprintln!("after the join {after:?}; points {shown:?}");
    assert!(!after.is_empty(), "{shown:?}");
    for (at, rate) in &after {
        assert!(
            (rate - RATE).abs() <= RATE * 0.02,
            "the second from {at} ms ran at {rate:.1} req/s, not {RATE}: {shown:?}"
        );
    }
    let (_, out, _) = floodgate(["test", "show", &id, "--orchestrator", &c.api]).await;
    assert!(
        out.contains(&format!(
            "unsent went to {replacement}, which joined in its place"
        )),
        "{out}"
    );
}
