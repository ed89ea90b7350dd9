//! A live rate change (issue 13, item 3), end to end: a real Kafka broker, three real drivers, the
//! real target counting what arrives, the change made with `floodgate test set-rate`. Rates per
//! interval come from the test's chart points (the drivers' own report intervals). One test in
//! this binary, so no sibling test's processes share its two cores while it is timed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const TOTAL: u64 = 3_000;
const BEFORE: f64 = 300.0;
const AFTER: f64 = 600.0;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// 3,000 requests over 3 drivers at 300 req/s, raised to 600 req/s mid-test: every driver
/// switches at the one agreed instant, the rate of each second before and after is the asked
/// rate within 2 % (none above the new one by 5 %: no catch-up burst), the target counts
/// exactly the total, and the change is in the view, the CLI's table and the charts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_change_mid_test_switches_every_driver_at_one_instant() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(3).await;
    let spec = json!({"test_type": "avalanche", "total_requests": TOTAL, "total_rate": BEFORE,
        "split": "equal", "concurrency": 8, "target_url": target.url()});
    let id = c.start_test(spec).await;
    let url = c.url(&format!("/api/v1/tests/{id}"));
    eventually("750 requests sent", Duration::from_secs(30), async || {
        (c.test(&id).await["aggregate"]["sent"].as_u64()? >= 750).then_some(())
    })
    .await;
    // Refused while it runs, each naming the field: a pace given another way, an unknown field,
    // a value that is no number. Nothing changes.
    for (body, field) in [
        (r#"{"delay_ms": 5}"#, "delay_ms"),
        (r#"{"rate": 5}"#, "rate"),
        (r#"{"total_rate": "fast"}"#, "total_rate"),
        (r#"{"total_rate": 0}"#, "total_rate"),
    ] {
        let (status, v) = patch(&url, body).await;
        assert_eq!(
            (status, v["field"].as_str()),
            (400, Some(field)),
            "{body}: {v}"
        );
    }
    let (code, out, err) = floodgate([
        "test",
        "set-rate",
        &id,
        "--total-rate",
        &AFTER.to_string(),
        "--orchestrator",
        &c.api,
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("rate change 1: 600.0 req/s over all drivers"),
        "{err}"
    );

    let v = c.wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await, (TOTAL, TOTAL), "the target's count");
    let changes = v["rate_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{v}");
    let ch = &changes[0];
    assert_eq!(
        (ch["seq"].as_u64(), f(&ch["total_rate"])),
        (Some(1), AFTER),
        "{ch}"
    );
    let applied = ch["applied"].as_array().unwrap();
    assert_eq!(applied.len(), 3, "every driver reported the switch: {ch}");
    // One machine, one clock: each switched at the agreed instant itself, not when the command
    // happened to arrive.
    assert_eq!(f(&ch["switch_skew_ms"]), 0.0, "{ch}");
    for a in applied {
        assert_eq!(f(&a["late_ms"]), 0.0, "{a}");
    }

    // The charts: 1 s windows of two consecutive points (each point is one 500 ms report
    // interval of every driver). Whether a window lies wholly before or after the switch is
    // told by what each driver had sent at its ends against the first request on its new pace;
    // a window that reaches a driver's last request (its final interval is partly idle) and the
    // first interval (which starts with the test) are left out. A window across the switch has
    // no one rate to match, but no more than the new one either.
    let share = TOTAL / 3;
    let first: Vec<(String, u64)> = applied
        .iter()
        .map(|a| {
            (
                a.get("driver_id").unwrap().as_str().unwrap().to_string(),
                a["first"].as_u64().unwrap(),
            )
        })
        .collect();
    let series = c.get(&format!("/api/v1/tests/{id}/series")).await;
    let points = series["points"].as_array().unwrap();
    let sent = |p: &Value, d: &str| p["drivers"][d]["sent"].as_u64().unwrap_or(0);
    let (mut before, mut after, mut across) = (Vec::new(), Vec::new(), Vec::new());
    for w in points.windows(3) {
        let (from, end) = (&w[0], &w[2]);
        if first.iter().any(|(d, _)| sent(end, d) >= share) {
            continue;
        }
        let rate = (f(&w[1]["rps"]) + f(&w[2]["rps"])) / 2.0;
        let at = from["t_ms"].as_u64().unwrap();
        if first.iter().all(|(d, n)| sent(end, d) <= *n) {
            before.push((at, rate));
        } else if first.iter().all(|(d, n)| sent(from, d) >= *n) {
            after.push((at, rate));
        } else {
            across.push((at, rate));
        }
    }
    let shown: Vec<(u64, f64)> = points
        .iter()
        .map(|p| (p["t_ms"].as_u64().unwrap(), f(&p["rps"])))
        .collect();
    eprintln!("before {before:?}; across {across:?}; after {after:?}; points {shown:?}");
    assert!(
        !before.is_empty() && !across.is_empty() && !after.is_empty(),
        "{shown:?}"
    );
    for (rates, want) in [(&before, BEFORE), (&after, AFTER)] {
        for (at, rate) in rates.iter() {
            assert!(
                (rate - want).abs() <= want * 0.02,
                "the second from {at} ms ran at {rate:.1} req/s, not {want}: {shown:?}"
            );
        }
    }
    // Where a catch-up burst would show: the seconds across the switch too.
    for (at, rate) in before.iter().chain(&across).chain(&after) {
        assert!(
            *rate <= AFTER * 1.05,
            "a burst from {at} ms: {rate:.1} req/s"
        );
    }

    // The CLI's table shows the change; a finished test's pace cannot change.
    let (_, out, _) = floodgate(["test", "show", &id, "--orchestrator", &c.api]).await;
    assert!(
        out.contains("rate change 1: 600.0 req/s over all drivers"),
        "{out}"
    );
    assert!(out.contains("3 drivers switched within 0.000 ms"), "{out}");
    let (status, v) = patch(&url, r#"{"total_rate": 900}"#).await;
    assert_eq!(status, 409, "{v}");
}
