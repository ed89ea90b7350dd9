//! A test given in totals (issue 13), end to end: a real Kafka broker, three real drivers that
//! declare unequal capacities, the real target counting what arrives; then shared by the
//! capacities measured in an earlier test; and a total rate over a duration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

/// 30,000 requests at 3,000 req/s over drivers of capacity 1, 2 and 3: the shares follow the
/// capacities and add up to the total, the target counts exactly the total, and the rate the
/// target saw is the total rate within 1 %.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_total_is_shared_by_declared_then_by_measured_capacity() {
    let (total, rate) = (30_000u64, 3_000.0);
    let target = Target::start(&["--record-arrivals", "30000"]).await;
    let mut c = Cluster::start(0).await;
    for capacity in ["1", "2", "3"] {
        c.add_driver_with(&["--capacity", capacity]).await;
    }
    c.wait_alive(3).await;
    let declared: Vec<f64> = c.get("/api/v1/drivers").await["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["capacity"].as_f64().unwrap())
        .collect();
    assert_eq!(
        declared,
        [1.0, 2.0, 3.0],
        "each driver's declared capacity is listed"
    );

    let spec = json!({"test_type": "tsunami", "total_requests": total, "total_rate": rate,
        "target_url": target.url()});
    let v = c.run_test(spec, Duration::from_secs(120)).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["spec"]["totals"]["requests"], total);
    // The broadcast figures are the means (what another implementation's driver would run).
    assert_eq!(v["spec"]["requests_per_driver"], total / 3);

    // The shares follow the capacities, exactly, and each driver sent its own.
    let shares = v["split"]["shares"]
        .as_array()
        .expect("the split is in the view");
    let want = [(5_000u64, 0.5), (10_000, 1.0), (15_000, 1.5)];
    for (i, (s, (requests, scale))) in shares.iter().zip(want).enumerate() {
        assert_eq!(s["driver_id"], Cluster::driver_id(i));
        assert_eq!(s["requests"], requests, "{s}");
        assert!(
            (s["rate_scale"].as_f64().unwrap() - scale).abs() < 1e-9,
            "{s}"
        );
        let d = &v["per_driver"][i];
        assert_eq!(d["driver_id"], Cluster::driver_id(i));
        assert_eq!(d["sent"], requests, "{d}");
        assert_eq!(d["requests_total"], requests, "{d}");
    }
    assert_eq!(v["aggregate"]["sent"], total);
    assert_eq!(v["aggregate"]["requests_total"], total);

    // At the target: exactly the total, at the total rate. The schedule is absolute and
    // every driver's share takes the same 10 s, so the arrivals span the test.
    assert_eq!(target.metrics().await.0, total);
    let arrivals = target.arrivals_us().await;
    assert_eq!(arrivals.len() as u64, total);
    let span_s = (arrivals[arrivals.len() - 1] - arrivals[0]) as f64 / 1e6;
    let achieved = (total - 1) as f64 / span_s;
    eprintln!("total rate at the target: {achieved:.1} req/s over {span_s:.3} s");
    assert!(
        (achieved - rate).abs() <= rate * 0.01,
        "{achieved:.1} req/s at the target over {span_s:.3} s, want {rate} within 1 %"
    );

    // The CLI, on the same drivers: 301 requests shared equally (101, 100, 100), unpaced.
    let before = target.metrics().await.0;
    let (code, stdout, stderr) = floodgate([
        "test",
        "run",
        "--orchestrator",
        &c.api,
        "--type",
        "avalanche",
        "--total-requests",
        "301",
        "--split",
        "equal",
        "-c",
        "4",
        "--url",
        &target.url(),
    ])
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("shared equally: "))
        .unwrap_or_else(|| panic!("no split line in:\n{stdout}"));
    assert!(
        line.contains("driver-0 101 ")
            && line.contains("driver-1 100 ")
            && line.contains("driver-2 100 "),
        "{line}"
    );
    assert_eq!(target.metrics().await.0 - before, 301);

    // Measured capacity: each driver weighs the rate it achieved in that last, unpaced run
    // against the same target (the paced run before it measured its pace, not its capacity).
    let tests = c.get("/api/v1/tests").await;
    let last = (tests["tests"].as_array().unwrap().iter())
        .find(|t| t["spec"]["totals"]["requests"] == 301)
        .unwrap()
        .clone();
    let measured: Vec<f64> = (0..3)
        .map(|i| {
            let d = &last["per_driver"][i];
            assert_eq!(d["driver_id"], Cluster::driver_id(i));
            d["achieved_rps"].as_f64().unwrap()
        })
        .collect();
    let spec = json!({"test_type": "avalanche", "total_requests": 3_000, "split": "measured",
        "concurrency": 4, "target_url": target.url()});
    let v = c.run_test(spec, Duration::from_secs(60)).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["split"]["by"], "measured", "{}", v["split"]);
    let shares = v["split"]["shares"].as_array().unwrap();
    let sum: f64 = measured.iter().sum();
    let mut total = 0;
    for (i, s) in shares.iter().enumerate() {
        assert_eq!(s["weight"].as_f64(), Some(measured[i]), "{s}");
        assert_eq!(s["declared"], true, "{s}");
        let n = s["requests"].as_u64().unwrap();
        let exact = 3_000.0 * measured[i] / sum;
        assert!((n as f64 - exact).abs() < 1.0, "{s}: {exact}");
        assert_eq!(v["per_driver"][i]["sent"], n);
        total += n;
    }
    assert_eq!(total, 3_000);
    eprintln!("measured {measured:?}: shares {shares:?}");

    // A total rate over a duration, from the CLI: 600 req/s for 3 s shared by the declared
    // capacities 1, 2 and 3 is 100, 200 and 300 req/s, so about 300, 600 and 900 requests
    // (each driver's count is what its own pace has due within the 3 s: 1/300 s rounds to
    // whole nanoseconds, so 901 of them are due).
    let before = target.metrics().await.0;
    let (code, stdout, stderr) = floodgate([
        "test",
        "run",
        "--orchestrator",
        &c.api,
        "--type",
        "avalanche",
        "--total-rate",
        "600",
        "--duration",
        "3s",
        "-c",
        "4",
        "--url",
        &target.url(),
    ])
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("shared by capacity: "), "{stdout}");
    let tests = c.get("/api/v1/tests").await;
    let v = tests["tests"][0].clone();
    assert_eq!(
        v["spec"]["duration_ms"], 3_000,
        "the newest test first: {v}"
    );
    let mut sent = 0;
    for (i, rate) in [100.0, 200.0, 300.0].iter().enumerate() {
        let share = v["split"]["shares"][i]["requests"].as_u64().unwrap();
        assert!((share as f64 - rate * 3.0).abs() <= 1.0, "{}", v["split"]);
        assert_eq!(v["per_driver"][i]["sent"], share, "{}", v["per_driver"][i]);
        assert_eq!(v["per_driver"][i]["requests_total"], share);
        sent += share;
    }
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await.0 - before, sent);
}
