//! Pacing at sub-millisecond gaps, end to end: a real Kafka broker, two real drivers, the real
//! target. In a test binary of its own, so that it runs alone: cargo runs test binaries one after
//! another, and the drivers' schedule lag it asserts is then not the other e2e tests' CPU load
//! (two of those beside it pushed the median lag to 0.66 ms in a fresh-clone run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

/// Sub-millisecond gaps stay gaps: each request leaves at its own due instant, not in a burst
/// per millisecond tick of a timer. The drivers' own record (their schedule lag, reported over
/// Kafka) is asserted tightly; the target's arrivals, which also carry the target's and the
/// kernel's scheduling on a shared machine, loosely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tsunami_leaves_on_its_due_instants_even_at_sub_millisecond_gaps() {
    let n: u64 = 2_000;
    let gap_us: u64 = 500;
    let target = Target::start(&["--record-arrivals", "4000"]).await;
    let c = Cluster::start(2).await;
    let spec = json!({"test_type": "tsunami", "delay_ms": gap_us as f64 / 1000.0, "requests_per_driver": n, "target_url": target.url()});
    let v = c.run_test(spec, MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await.0, 2 * n);

    // What each driver recorded: every request's lateness, in its own histogram. A timer on
    // millisecond ticks is 500 µs late or more at the median here; the goal on an idle machine
    // is under 50 µs, and 250 µs leaves room for a busy one (these drivers are debug builds,
    // sharing two cores with Kafka, the target and other tests).
    for d in v["per_driver"].as_array().unwrap() {
        let lag = &d["schedule_lag"];
        assert_eq!(lag["count"].as_u64(), Some(n), "one lag per request: {d}");
        let p50 = lag["median_ms"].as_f64().unwrap();
        assert!(
            p50 < 0.25,
            "median schedule lag {p50} ms on {}",
            d["driver_id"]
        );
        // The latency from the due instant includes the lag; the service time does not.
        let (lat, svc) = (&d["latency"], &d["service_time"]);
        assert_eq!(lat["count"].as_u64(), Some(n));
        assert!(lat["mean_ms"].as_f64().unwrap() >= svc["mean_ms"].as_f64().unwrap());
    }
    assert_eq!(
        v["aggregate"]["schedule_lag"]["count"].as_u64(),
        Some(2 * n)
    );

    // At the target: both drivers run the same absolute schedule, so arrivals two apart are one
    // gap apart. Requests sent in bursts per tick (four arrivals per millisecond) would put
    // half of these near 0 µs and half near 1 ms; kept as gaps, the median lies around 500 µs.
    // The lower quartile is not asserted, and the median only loosely (200-800 µs): a target
    // thread descheduled on a busy machine reads several requests at once, which shortens some
    // gaps whatever the drivers did (a fresh-clone run saw 82/330/634). Bursts per tick are
    // what the upper quartile rules out: they would put it near 1 ms. The drivers' own send
    // times are asserted above, exactly.
    let arrivals = target.arrivals_us().await;
    assert_eq!(arrivals.len() as u64, 2 * n);
    let mut gaps: Vec<u64> = arrivals.windows(3).map(|w| w[2] - w[0]).collect();
    gaps.sort_unstable();
    let q = |p: usize| gaps[gaps.len() * p / 100];
    assert!(
        (200..=800).contains(&q(50)) && q(75) <= 850,
        "gaps p25/p50/p75 {}/{}/{} µs, want about {gap_us}",
        q(25),
        q(50),
        q(75)
    );
}
