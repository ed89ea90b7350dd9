//! The fail-safe (issue 13), end to end: a real Kafka broker, three real drivers, the real
//! target counting what arrives. One driver is frozen (SIGSTOP) for longer than the test's
//! `fail_safe_ms` while the others go on; another is cut off Kafka alone (a proxy in front of a
//! broker of the test's own stops carrying its connections) while it runs on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::cut::broker_with_cut;
use common::*;
use serde_json::{json, Value};
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
    // What it sent by the time it froze: what it had reported, plus at most its rate over the
    // report's age and the moments before the signal.
    let since = paused_after.as_secs_f64() - 4.0 + 0.5;
    stopped_by_its_fail_safe(&v, &before, rate * since, per, "the pause");
    for i in [0, 2] {
        assert_eq!(v["per_driver"][i]["sent"], per, "{}", v["per_driver"][i]);
    }
    assert_ne!(v["status"], "completed", "a driver stopped short: {v}");
    assert_eq!(
        target.metrics().await.0,
        v["aggregate"]["sent"].as_u64().unwrap()
    );
}

/// Driver 1 of the finished test `v` stopped for its fail-safe, and says so; it sent at most
/// what it had reported (`before`), plus its rate over that report's age, plus `more` (and a
/// request of slack); fewer than its share `per`. Returns what it sent.
fn stopped_by_its_fail_safe(v: &Value, before: &Value, more: f64, per: u64, what: &str) -> u64 {
    let d1 = &v["per_driver"][1];
    assert_eq!(d1["driver_id"], Cluster::driver_id(1));
    let reason = d1["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("fail-safe: heard neither the orchestrator nor 1 of the other 2 participant(s) for 2.0 s"), "{d1}");
    let sent = d1["sent"].as_u64().unwrap();
    let age_s = before["report_age_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
    let rate = 1000.0 / v["spec"]["delay_ms"].as_f64().unwrap();
    let bound = before["sent"].as_u64().unwrap() as f64 + rate * age_s + more + 5.0;
    eprintln!(
        "driver-1 sent {sent} (bound {bound:.0}; {} reported before {what})",
        before["sent"]
    );
    assert!(
        (sent as f64) <= bound,
        "driver-1 sent {sent}, more than {bound:.0}: {d1}"
    );
    assert!(sent < per, "{d1}");
    sent
}

/// Arrivals in the target's own log within [from, to) seconds of its first, per second.
fn rate_between(arrivals_us: &[u64], from: f64, to: f64) -> f64 {
    let (a, b) = ((from * 1e6) as u64, (to * 1e6) as u64);
    arrivals_us.iter().filter(|&&t| t >= a && t < b).count() as f64 / (to - from)
}

/// Driver 1 is cut off Kafka, not frozen: from the cut its connections to the broker carry
/// nothing, while it goes on running and reaching the target. Within its 2 s fail-safe it
/// stops sending: in the target's own arrival log, from then on only the other two drivers'
/// 400 req/s arrive, where all three sent 600 before. The partition heals only once the others
/// sent their whole share (the test ended elsewhere): it then reports why it stopped and sends
/// nothing more, so the target's count stays what it was, and is what the drivers say they sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_cut_off_kafka_stops_within_its_fail_safe_and_resumes_nothing() {
    let (per, gap_ms, rate, fail_safe_s) = (2_000u64, 5u64, 200.0, 2.0);
    let target = Target::start(&["--record-arrivals", "10000"]).await;
    let (broker, kafka_cut) = broker_with_cut().await;
    // Not judged lost while cut off: it is to stop by itself, and report once healed.
    let mut c =
        Cluster::start_on_with_args(&broker.bootstrap, 0, &["--heartbeat-timeout-ms", "60000"])
            .await;
    c.add_driver().await;
    let cut_off = c.spawn_driver_on(1, &kafka_cut.addr, &[]).await;
    c.drivers.push(cut_off);
    c.add_driver().await;
    c.wait_alive(3).await;
    let spec = json!({"test_type": "tsunami", "delay_ms": gap_ms, "requests_per_driver": per,
        "target_url": target.url(), "fail_safe_ms": 2000});
    let id = c.start_test(spec).await;
    let before = eventually(
        "driver-1 to report 400 sent",
        Duration::from_secs(30),
        async || {
            let d = c.test(&id).await["per_driver"][1].clone();
            (d["sent"].as_u64()? >= 400).then_some((d, Instant::now()))
        },
    )
    .await;
    let cut_at_ms = floodgate::protocol::now_unix_ms() as f64;
    kafka_cut.cut();
    let polled_to_cut = before.1.elapsed().as_secs_f64();
    let (before, _) = before;

    let others_done = eventually(
        "drivers 0 and 2 to report their whole share",
        Duration::from_secs(60),
        async || {
            let v = c.test(&id).await;
            [0, 2]
                .iter()
                .all(|&i| v["per_driver"][i]["sent"].as_u64() == Some(per))
                .then_some(v)
        },
    )
    .await;
    assert_eq!(
        others_done["status"], "running",
        "driver-1 has not reported its end yet"
    );
    let at_end = target.metrics().await.0;
    kafka_cut.heal();

    let v = c.wait_finished(&id, Duration::from_secs(90)).await;
    // What it reported, plus at most its rate over the moments to the cut, the fail-safe, and
    // half a second of the checks' granularity.
    let since = polled_to_cut + fail_safe_s + 0.5;
    let sent = stopped_by_its_fail_safe(&v, &before, rate * since, per, "the cut");
    // Nothing more after the heal: the target's count is what it was when the others ended.
    assert_eq!(target.metrics().await.0, at_end);
    assert_eq!(at_end, 2 * per + sent);
    assert_eq!(v["aggregate"]["sent"].as_u64(), Some(at_end));
    assert_ne!(v["status"], "completed", "a driver stopped short: {v}");
    // The CLI says why, naming the driver.
    let (_, out, err) = floodgate(["test", "show", &id, "--orchestrator", &c.api]).await;
    assert!(
        out.lines()
            .any(|l| l.contains("driver-1") && l.contains("fail-safe: heard neither")),
        "{out}{err}"
    );

    // The target's arrival log, from the first send: three drivers' rate before the cut, two
    // drivers' after the fail-safe ran out, until the others' last requests.
    let arrivals = target.arrivals_us().await;
    assert_eq!(arrivals.len() as u64, at_end);
    let first_ms = num(&v["start_skew"]["first_ms"]);
    let cut_s = (cut_at_ms - first_ms) / 1000.0;
    let stopped_by = cut_s + fail_safe_s + 0.5;
    let last = *arrivals.last().unwrap() as f64 / 1e6;
    let (three, two) = (
        rate_between(&arrivals, 0.3, cut_s - 0.2),
        rate_between(&arrivals, stopped_by, last - 0.2),
    );
    eprintln!(
        "cut at {cut_s:.2} s: {three:.0} req/s before, {two:.0} req/s from {stopped_by:.2} s to {last:.2} s"
    );
    assert!(
        (three / (3.0 * rate) - 1.0).abs() < 0.05,
        "{three} req/s before the cut"
    );
    assert!(
        (two / (2.0 * rate) - 1.0).abs() < 0.03,
        "{two} req/s after the fail-safe"
    );
}
