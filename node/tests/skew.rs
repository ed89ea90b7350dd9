//! How far apart the drivers really started (issue 13), end to end: a real Kafka broker, eight
//! real drivers, the real target recording when each request arrived.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

/// Eight drivers of a Tsunami start at the trigger's instant: the view's start skew is the
/// spread of their reported first sends, under 10 ms; the clocks (one machine's) are found to
/// agree within each estimate's bound, so none is corrected; and the target saw the same: its
/// first eight arrivals (one per driver, the skew being under one gap) came after the earliest
/// first send and within 10 ms of each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_drivers_start_within_ten_ms_and_the_view_says_by_how_much() {
    let (n, per, gap_ms) = (8usize, 40u64, 25u64);
    let target = Target::start(&["--record-arrivals", "320"]).await;
    let c = Cluster::start(n).await;
    // Every driver's clock is estimated from its echoes before the test starts.
    eventually(
        "a clock offset for every driver",
        Duration::from_secs(30),
        async || {
            let drivers = c.get("/api/v1/drivers").await;
            let drivers = drivers["drivers"].as_array()?.clone();
            let estimated = drivers
                .iter()
                .filter(|d| d["clock_offset_ms"].is_number() && d["clock_bound_ms"].is_number())
                .count();
            (estimated == n).then_some(())
        },
    )
    .await;

    let spec = json!({"test_type": "tsunami", "delay_ms": gap_ms, "requests_per_driver": per,
        "target_url": target.url()});
    let v = c.run_test(spec, Duration::from_secs(60)).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await.0, n as u64 * per);

    let skew = &v["start_skew"];
    assert_eq!(skew["drivers"], n, "{skew}");
    let skew_ms = skew["skew_ms"].as_f64().unwrap();
    let bound_ms = skew["bound_ms"]
        .as_f64()
        .expect("every offset was measured");
    let started_at_ms = v["started_at_ms"].as_f64().unwrap();
    let starts: Vec<f64> = v["per_driver"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let s = &d["start"];
            // One machine: the clocks agree, so each estimate allows zero and none is moved.
            assert_eq!(s["clock_applied_ms"], 0.0, "{d}");
            assert!(s["clock_bound_ms"].as_f64().unwrap() >= 0.0, "{d}");
            let first = s["first_send_ms"].as_f64().unwrap();
            // Nothing leaves before the agreed instant (1 µs for the ms rounding of the trigger).
            assert!(
                first >= started_at_ms - 0.001,
                "{first} before {started_at_ms}: {d}"
            );
            first
        })
        .collect();
    let (min, max) = starts
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &s| (lo.min(s), hi.max(s)));
    assert!(
        (skew["first_ms"].as_f64().unwrap() - min).abs() < 1e-6,
        "{skew}"
    );
    assert!((max - min - skew_ms).abs() < 1e-6, "{skew} from {starts:?}");

    // The target's record: one clock with the drivers', so arrivals follow sends.
    let arrivals = get(&format!("http://{}/arrivals", target.addr)).await;
    let first_arrival_ms = arrivals["first_unix_us"].as_f64().unwrap() / 1000.0;
    let at: Vec<u64> = arrivals["arrivals_us"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_u64().unwrap())
        .collect();
    assert_eq!(at.len(), n * per as usize);
    let target_span_ms = (at[n - 1] - at[0]) as f64 / 1000.0;
    eprintln!(
        "start skew {skew_ms:.3} ms (bound ±{bound_ms:.3} ms), first send {:.3} ms after the \
         agreed instant; at the target the first {n} arrivals span {target_span_ms:.3} ms, the \
         first {:.3} ms after the earliest send",
        min - started_at_ms,
        first_arrival_ms - min
    );
    assert!(
        first_arrival_ms >= min - 0.05,
        "the target saw a request at {first_arrival_ms} before any was sent ({min})"
    );
    assert!(skew_ms < 10.0, "start skew {skew_ms} ms over {n} drivers");
    assert!(
        target_span_ms < 10.0,
        "the target's first {n} arrivals span {target_span_ms} ms"
    );

    // The CLI says the same.
    let id = v["id"].as_str().unwrap();
    let (code, stdout, stderr) =
        floodgate(["test", "show", id, "--orchestrator", c.api.as_str()]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("start skew "))
        .unwrap_or_else(|| panic!("no start line in:\n{stdout}"));
    assert!(
        line.starts_with(&format!(
            "start skew {skew_ms:.3} ms over {n} drivers (clock bound ±"
        )),
        "{line}"
    );
    // Each driver's lag percentiles, as the view has them.
    let lags: Vec<String> = v["per_driver"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let l = &d["schedule_lag"];
            let ms = |k: &str| l[k].as_f64().unwrap();
            format!(
                "{} {:.3}/{:.3}/{:.3}",
                d["driver_id"].as_str().unwrap(),
                ms("median_ms"),
                ms("p99_ms"),
                ms("max_ms")
            )
        })
        .collect();
    assert!(
        line.ends_with(&format!(
            "; schedule lag p50/p99/max (ms): {}",
            lags.join(" · ")
        )),
        "{line}"
    );
}
