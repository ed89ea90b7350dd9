//! Re-split on loss (issue 13, item 2), end to end: a real Kafka broker, three real drivers, the
//! real target counting what arrives. One driver is killed (SIGKILL) mid-test; the other two
//! take its unsent share at its pace. One test in this binary, so no sibling test's processes
//! share its two cores while its rates are measured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const TOTAL: u64 = 12_000;
const RATE: f64 = 1_200.0;

/// 12,000 requests at 1,200 req/s over 3 drivers; driver-1 is killed about a third of the way.
/// Once it is judged lost, the other two take its unsent share and its pace: the drivers'
/// counts add up to exactly the total, the target counts the total plus at most the stated
/// unknown, every second after the switch runs at the total rate within 2 %, the test
/// completes, and the hand-over is in the view and the CLI's table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_drivers_share_is_sent_by_the_others_at_its_pace() {
    let target = Target::start(&[]).await;
    let mut c = Cluster::start(3).await;
    let id = kill_mid_shared_test(&mut c, &target, 1, false).await;
    let lost = Cluster::driver_id(1);

    let v = c.wait_finished(&id, Duration::from_secs(90)).await;
    assert_eq!(v["status"], "completed", "{v}");
    let hs = v["hand_overs"].as_array().unwrap();
    assert_eq!(hs.len(), 1, "{v}");
    let h = &hs[0];
    eprintln!("hand-over: {h}");
    assert_eq!(h["from"], lost.as_str());
    assert_eq!(h["replacement"], Value::Null);
    let share = TOTAL / 3;
    let reported = h["reported_sent"].as_u64().unwrap();
    let unsent = h["unsent"].as_u64().unwrap();
    assert_eq!(
        (h["share"].as_u64(), reported + unsent),
        (Some(share), share)
    );
    let parts = h["parts"].as_object().unwrap();
    assert_eq!(parts.len(), 2, "{h}");
    let mut handed = 0;
    for (d, p) in parts {
        handed += p["requests"].as_u64().unwrap();
        // Each took half the lost pace on top of its own 400 req/s.
        assert!((num(&p["rate"]) - 600.0).abs() < 1e-6, "{d}: {p}");
    }
    assert_eq!(handed, unsent, "{h}");
    assert_eq!(
        h["taken"].as_array().unwrap().len(),
        2,
        "both reported taking it: {h}"
    );

    // The drivers' counts: exactly the total, the lost one held to what it reported.
    let per = driver_counts(&v);
    assert_eq!(v["aggregate"]["sent"].as_u64(), Some(TOTAL), "{per:?}");
    assert_eq!(
        v["aggregate"]["requests_total"].as_u64(),
        Some(TOTAL),
        "{per:?}"
    );
    for (d, sent, planned) in &per {
        assert_eq!(sent, planned, "{d}: {per:?}");
    }
    // The target: the total, plus what the killed driver sent after its last report (it
    // could not say), never more than the unknown stated.
    let unknown = h["unknown"].as_u64().unwrap();
    assert_eq!(unknown, h["unknown_max"].as_u64().unwrap());
    assert!(unknown > 0 && unknown <= unsent, "{h}");
    let (arrived, _) = target.metrics().await;
    eprintln!("the target counted {arrived} for a total of {TOTAL}, unknown at most {unknown}");
    assert!(
        (TOTAL..=TOTAL + unknown).contains(&arrived),
        "the target counted {arrived}: {h}"
    );

    // The total rate holds after the switch: 1 s windows of two consecutive chart points, wholly
    // after both receivers reached the first request on their new pace and before either
    // reached its last (whose interval is partly idle).
    let switched = v["rate_changes"].as_array().unwrap();
    let ch = switched
        .iter()
        .find(|c| c["seq"] == h["seq"])
        .expect("the switch");
    assert!((num(&ch["total_rate"]) - RATE).abs() < 1e-6, "{ch}");
    let first: Vec<(String, u64, u64)> = (ch["applied"].as_array().unwrap().iter())
        .map(|a| {
            let d = a["driver_id"].as_str().unwrap().to_string();
            let planned = per.iter().find(|p| p.0 == d).unwrap().2;
            (d, a["first"].as_u64().unwrap(), planned)
        })
        .collect();
    assert_eq!(first.len(), 2, "{ch}");
    let series = c.get(&format!("/api/v1/tests/{id}/series")).await;
    let points = series["points"].as_array().unwrap();
    let sent = |p: &Value, d: &str| p["drivers"][d]["sent"].as_u64().unwrap_or(0);
    let mut after = Vec::new();
    for w in points.windows(3) {
        let (from, end) = (&w[0], &w[2]);
        let started = first.iter().all(|(d, n, _)| sent(from, d) >= *n);
        let ending = first.iter().any(|(d, _, planned)| sent(end, d) >= *planned);
        if started && !ending {
            let rate = (num(&w[1]["rps"]) + num(&w[2]["rps"])) / 2.0;
            after.push((from["t_ms"].as_u64().unwrap(), rate));
        }
    }
    let shown: Vec<(u64, f64)> = (points.iter())
        .map(|p| (p["t_ms"].as_u64().unwrap(), num(&p["rps"])))
        .collect();
    eprintln!("after the switch {after:?}; points {shown:?}");
    assert!(!after.is_empty(), "{shown:?}");
    for (at, rate) in &after {
        assert!(
            (rate - RATE).abs() <= RATE * 0.02,
            "the second from {at} ms ran at {rate:.1} req/s, not {RATE}: {shown:?}"
        );
    }

    // The CLI's table says what happened.
    let (_, out, _) = floodgate(["test", "show", &id, "--orchestrator", &c.api]).await;
    let line = format!("hand-over {}: {lost} was lost", h["seq"]);
    assert!(out.contains(&line), "{out}");
    assert!(
        out.contains(&format!("the {unsent} unsent were handed to the others")),
        "{out}"
    );
}
