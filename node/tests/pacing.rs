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

    // What each driver recorded: every request's lateness, in its own histogram. On an idle
    // machine the median is about 45 µs (three runs: 43-49 µs). The bound is one gap: at the
    // median a request leaves before the next one is due, so the schedule holds as gaps. It
    // is loose because it must hold on a busy 2-core machine, where the drivers (debug builds,
    // beside Kafka, the orchestrator and the target) wait for the kernel's time slices: a CI
    // run saw 0.287 ms, a run beside two other e2e tests 0.657 ms, and runs beside three
    // CPU-bound processes 0.14-0.46 ms. A thread that only sleeps and wakes still woke within
    // 35 µs then, so the lag is the drivers' share of the CPU, not the timer. The clock's own
    // precision is asserted in-process (`engine::wait`), and bursts per tick are ruled out at
    // the target below.
    let bound_ms = gap_us as f64 / 1000.0;
    for d in v["per_driver"].as_array().unwrap() {
        let lag = &d["schedule_lag"];
        assert_eq!(lag["count"].as_u64(), Some(n), "one lag per request: {d}");
        let p50 = lag["median_ms"].as_f64().unwrap();
        assert!(
            p50 < bound_ms,
            "median schedule lag {p50} ms on {} (p90 {} ms), not under one gap ({bound_ms} ms)",
            d["driver_id"],
            lag["p90_ms"]
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
    // half of these near 0 µs and half near 1 ms, so the upper quartile near 1 ms: that is
    // what `q(75) <= 850` rules out. The quartiles below it are not asserted: a target thread
    // descheduled on a busy machine reads several requests at once, which shortens gaps
    // whatever the drivers did (a fresh-clone run saw 82/330/634 µs, a run beside three
    // CPU-bound processes 54/112/511). That the load was paced at all, not sent at once, is
    // the arrivals' span: the schedule's n - 1 gaps, which no descheduling shortens.
    let arrivals = target.arrivals_us().await;
    assert_eq!(arrivals.len() as u64, 2 * n);
    let span_us = arrivals[arrivals.len() - 1] - arrivals[0];
    let schedule_us = (n - 1) * gap_us;
    assert!(
        span_us * 100 >= schedule_us * 95,
        "arrivals span {span_us} µs, the schedule {schedule_us} µs"
    );
    let mut gaps: Vec<u64> = arrivals.windows(3).map(|w| w[2] - w[0]).collect();
    gaps.sort_unstable();
    let q = |p: usize| gaps[gaps.len() * p / 100];
    assert!(
        (300..=850).contains(&q(75)),
        "gaps p25/p50/p75 {}/{}/{} µs, want about {gap_us}",
        q(25),
        q(50),
        q(75)
    );
}
