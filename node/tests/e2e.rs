//! End-to-end tests: a real Kafka broker, the real `floodgate` and `floodgate-target` binaries
//! as separate processes, real HTTP on loopback. Counts are checked at the target's /metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use floodgate::protocol::{self, MetricsReport};
use floodgate::stats::{self, Latency};
use serde_json::{json, Value};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

fn avalanche(url: &str, n: u64) -> Value {
    json!({"test_type": "avalanche", "requests_per_driver": n, "target_url": url, "concurrency": 8})
}

/// The drivers' own record of a test: the final report each kept in its metrics store.
fn final_reports_in_stores(c: &Cluster, test_id: &str, drivers: usize) -> Vec<MetricsReport> {
    (0..drivers)
        .map(|i| {
            let conn = rusqlite::Connection::open(c.driver_store(i)).unwrap();
            let payload: Vec<u8> = conn
                .query_row(
                    "SELECT payload FROM outbox WHERE test_id = ?1",
                    [test_id],
                    |r| r.get(0),
                )
                .unwrap();
            protocol::parse(&payload).unwrap()
        })
        .collect()
}

/// Asserts that the orchestrator's aggregate equals what the drivers measured, exactly.
fn assert_aggregate_matches_drivers(view: &Value, reports: &[MetricsReport]) {
    let mut merged = Latency::default();
    let (mut sent, mut ok) = (0, 0);
    for r in reports {
        let h = stats::decode(r.histogram.as_deref().unwrap()).unwrap();
        merged.merge(&Latency::from_parts(
            h,
            r.latency_sum_us,
            r.metrics.min_latency.unwrap(),
            r.metrics.max_latency.unwrap(),
        ));
        sent += r.requests_sent;
        ok += r.status.c2;
    }
    let agg = &view["aggregate"];
    assert_eq!(agg["sent"], sent);
    assert_eq!(agg["ok"], ok);
    let want = serde_json::to_value(stats::LatencyStats::exact(&merged)).unwrap();
    assert_eq!(
        agg["latency"], want,
        "aggregate latency must be the merge of the drivers' histograms"
    );
}

async fn both_types_exact(drivers: usize, n: u64) {
    let target = Target::start(&[]).await;
    let c = Cluster::start(drivers).await;
    let want = drivers as u64 * n;

    let v = c.run_test(avalanche(&target.url(), n), MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(
        target.metrics().await,
        (want, want),
        "the target saw exactly drivers × requests"
    );
    assert_eq!(v["aggregate"]["sent"], want);
    assert_eq!(v["aggregate"]["error_total"], 0);
    let per: Vec<&Value> = v["per_driver"].as_array().unwrap().iter().collect();
    assert_eq!(per.len(), drivers);
    for d in &per {
        assert_eq!(
            d["state"], "done",
            "every driver's final report arrived: {d}"
        );
        assert_eq!(d["sent"], n);
        assert_eq!(d["latency"]["count"], n);
    }
    assert_aggregate_matches_drivers(
        &v,
        &final_reports_in_stores(&c, v["id"].as_str().unwrap(), drivers),
    );

    let tsunami = json!({"test_type": "TSUNAMI", "delay_ms": 2, "requests_per_driver": n / 4, "target_url": target.url()});
    let v = c.run_test(tsunami, MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    let total = want + drivers as u64 * (n / 4);
    assert_eq!(target.metrics().await, (total, total));
    assert_eq!(v["aggregate"]["sent"], drivers as u64 * (n / 4));
    assert_aggregate_matches_drivers(
        &v,
        &final_reports_in_stores(&c, v["id"].as_str().unwrap(), drivers),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_drivers_run_both_test_types_with_exact_counts() {
    both_types_exact(2, 2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_drivers_run_both_test_types_with_exact_counts() {
    both_types_exact(8, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_count_can_change_between_tests() {
    let target = Target::start(&[]).await;
    let mut c = Cluster::start(2).await;
    let v = c.run_test(avalanche(&target.url(), 100), MIN).await;
    assert_eq!(
        (v["status"].as_str(), v["drivers"].as_array().unwrap().len()),
        (Some("completed"), 2)
    );

    c.add_driver().await;
    c.wait_alive(3).await;
    let v = c.run_test(avalanche(&target.url(), 100), MIN).await;
    assert_eq!(
        (v["status"].as_str(), v["drivers"].as_array().unwrap().len()),
        (Some("completed"), 3)
    );
    assert_eq!(target.metrics().await.0, 500);

    let mut spec = avalanche(&target.url(), 100);
    spec["drivers"] = json!(2);
    let v = c.run_test(spec, MIN).await;
    assert_eq!(v["drivers"].as_array().unwrap().len(), 2);
    assert_eq!(target.metrics().await.0, 700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_driver_is_shown_and_fails_the_test_with_partial_results() {
    let target = Target::start(&[]).await;
    let mut c = Cluster::start(2).await;
    // 2,000 requests 5 ms apart: ten seconds, long enough to lose a driver in the middle.
    let spec = json!({"test_type": "tsunami", "delay_ms": 5, "requests_per_driver": 2000, "target_url": target.url()});
    let id = c.start_test(spec).await;
    eventually("both drivers to report progress", MIN, async || {
        let v = c.test(&id).await;
        v["per_driver"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["sent"].as_u64().unwrap_or(0) > 0)
            .then_some(())
    })
    .await;
    c.drivers[1].kill();
    let killed_at = std::time::Instant::now();

    let lost = Cluster::driver_id(1);
    eventually(
        "the killed driver to be shown lost",
        Duration::from_secs(10),
        async || c.driver(&lost).await.filter(|d| d["alive"] == false),
    )
    .await;
    eprintln!(
        "lost driver: shown lost {:.2} s after kill -9",
        killed_at.elapsed().as_secs_f64()
    );
    let v = c.wait_finished(&id, MIN).await;
    assert_eq!(v["status"], "failed", "{v}");
    assert!(v["reason"].as_str().unwrap().contains(&lost), "{v}");
    let per = v["per_driver"].as_array().unwrap();
    assert_eq!(per[0]["state"], "done");
    assert_eq!(per[0]["sent"], 2000);
    assert_eq!(per[1]["state"], "lost");
    let partial = per[1]["sent"].as_u64().unwrap();
    assert!(
        partial > 0 && partial < 2000,
        "the lost driver's results so far are kept: {partial}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_topic_leaves_every_node_working() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    let topics = protocol::Topics::with_prefix(&c.prefix);
    let garbage: [&[u8]; 8] = [
        b"EOT",
        b"EOFBREAK",
        b"",
        b"{\"node_id\": 7}",
        b"{\"test_id\":\"nope\",\"trigger\":\"YES\"}",
        b"{\"test_id\":\"nope\",\"test_type\":\"BLIZZARD\",\"message_count_per_driver\":\"x\"}",
        b"{\"node_id\":\"ghost\",\"test_id\":\"nope\",\"metrics\":{\"mean_latency\":\"1\"}}",
        &[0xff, 0x00, 0xfe],
    ];
    for topic in topics.all() {
        for g in garbage {
            produce_raw(topic, g).await;
        }
    }
    // A trigger for an unknown test and a config meant for other drivers are ignored.
    produce_raw(
        &topics.trigger,
        br#"{"test_id":"unknown-test","trigger":"YES","start_at_ms":1}"#,
    )
    .await;
    produce_raw(
        &topics.test_config,
        br#"{"test_id":"other","test_type":"AVALANCHE","test_message_delay":"0","message_count_per_driver":"5","drivers":["someone-else"],"target":{"url":"http://127.0.0.1:1/"}}"#,
    )
    .await;

    // Everything still works, exactly.
    let v = c.run_test(avalanche(&target.url(), 300), MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await.0, 600);
    assert_eq!(c.alive().await.len(), 2);
    let health = get(&c.url("/healthz")).await;
    assert!(
        health["kafka"]["malformed"].as_u64().unwrap() >= 8,
        "the orchestrator counted the garbage: {health}"
    );
    for d in &c.drivers {
        let line = d.output();
        assert!(
            line.contains("malformed"),
            "{} logged the garbage it skipped",
            d.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_cap_holds() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    let spec = json!({"test_type": "avalanche", "requests_per_driver": 2000, "throughput_per_driver": 500, "target_url": target.url(), "concurrency": 16});
    let v = c.run_test(spec, MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await.0, 4000);
    for d in v["per_driver"].as_array().unwrap() {
        // What each driver recorded: from its scheduled start to its last response. The cap
        // is exact from below (2,000 requests at 500/s cannot end before 3.998 s); from above
        // only a slow machine delays it, so that bound is loose.
        let ms = d["elapsed_ms"].as_u64().unwrap();
        assert!(
            (3_998..=6_000).contains(&ms),
            "2,000 requests at 500/s took {ms} ms on {}",
            d["driver_id"]
        );
        let rps = d["achieved_rps"].as_f64().unwrap();
        assert!(rps <= 500.5, "never above the cap: {d}");
        assert!(rps >= 2000.0 / 6.0, "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsunami_keeps_its_gap_without_drift() {
    let n: usize = 200;
    let target = Target::start(&["--record-arrivals", "1000"]).await;
    let c = Cluster::start(2).await;
    let spec = json!({"test_type": "tsunami", "delay_ms": 10, "requests_per_driver": n, "target_url": target.url()});
    let v = c.run_test(spec, MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    let arrivals = target.arrivals_us().await;
    assert_eq!(arrivals.len(), 2 * n);
    // Both drivers run the same absolute schedule, so every request i of one driver lands
    // beside request i of the other: arrivals two apart are one gap apart.
    let mut gaps: Vec<u64> = arrivals.windows(3).map(|w| w[2] - w[0]).collect();
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    assert!(
        (9_500..=10_500).contains(&median),
        "median gap {median} µs, want 10 ms"
    );
    // No drift: on an absolute schedule a late request does not delay the next ones, so the
    // lateness of the last requests is that of the first, however busy the machine. (A schedule
    // of "sleep 10 ms after each" would add its overhead on every request: 200 × 0.1 ms and up.)
    let t0 = arrivals[0];
    let lateness: Vec<i64> = arrivals
        .iter()
        .enumerate()
        .map(|(i, a)| (a - t0) as i64 - (i as i64 / 2) * 10_000)
        .collect();
    let median = |v: &[i64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let first = median(&lateness[..40]);
    let last = median(&lateness[lateness.len() - 40..]);
    assert!(
        (last - first).abs() <= 5_000,
        "the schedule drifted: median lateness {first} µs at the start, {last} µs at the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_rest_request_gets_a_4xx_naming_the_field() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    let url = c.url("/api/v1/tests");
    let t = target.url();
    let cases = [
        (json!({}).to_string(), "test_type"),
        (json!({"test_type": "hurricane", "requests_per_driver": 1, "target_url": t}).to_string(), "test_type"),
        (json!({"test_type": "tsunami", "requests_per_driver": 1, "target_url": t}).to_string(), "delay_ms"),
        (json!({"test_type": "avalanche", "requests_per_driver": 0, "target_url": t}).to_string(), "requests_per_driver"),
        (json!({"test_type": "avalanche", "requests_per_driver": "many", "target_url": t}).to_string(), "requests_per_driver"),
        (json!({"test_type": "avalanche", "requests_per_driver": 5}).to_string(), "target_url"),
        (json!({"test_type": "avalanche", "requests_per_driver": 5, "target_url": "ftp://x"}).to_string(), "target_url"),
        (json!({"test_type": "avalanche", "requests_per_driver": 5, "target_url": t, "throughput_per_driver": -1}).to_string(), "throughput_per_driver"),
        (json!({"test_type": "avalanche", "requests_per_driver": 5, "target_url": t, "concurrency": 0}).to_string(), "concurrency"),
        (json!({"test_type": "avalanche", "requests_per_driver": 5, "target_url": t, "timeout_ms": 0}).to_string(), "timeout_ms"),
        (json!({"test_type": "avalanche", "requests_per_driver": 5, "target_url": t, "drivers": 12}).to_string(), "drivers"),
        (json!({"test_type": "avalanche", "requests_per_driver": 5, "target_url": t, "colour": "red"}).to_string(), "colour"),
        (json!({"test_type": "avalanche", "requests_per_driver": 5, "target_url": t, "thresholds": ["p99 < 1s", "p999x < 1s"]}).to_string(), "thresholds[1]"),
        ("{not json".to_string(), "body"),
    ];
    for (body, field) in cases {
        let (status, v) = post_raw(&url, &body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["field"], field, "{body}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // Conflicts and unknown tests are 4xx too, with a JSON error.
    let mut too_many = avalanche(&t, 5);
    too_many["drivers"] = json!(8);
    let (status, v) = post(&url, Some(too_many)).await;
    assert_eq!(status, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("alive"), "{v}");
    let (status, v) = post(&c.url("/api/v1/tests/no-such-test/trigger"), None).await;
    assert_eq!((status, v["error"].is_string()), (404, true));
    let (status, _) = post(&c.url("/api/v1/nothing"), None).await;
    assert_eq!(status, 404);

    // A test runs once: triggering it again is a conflict.
    let (status, created) = post(&url, Some(avalanche(&t, 5))).await;
    assert_eq!((status, created["status"].as_str()), (201, Some("created")));
    let id = created["id"].as_str().unwrap();
    let (status, _) = post(&c.url(&format!("/api/v1/tests/{id}/trigger")), None).await;
    assert_eq!(status, 200);
    c.wait_finished(id, MIN).await;
    let (status, v) = post(&c.url(&format!("/api/v1/tests/{id}/trigger")), None).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(target.metrics().await.0, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_driver_never_reruns_an_old_test() {
    let target = Target::start(&[]).await;
    let mut c = Cluster::start(2).await;
    let v = c.run_test(avalanche(&target.url(), 50), MIN).await;
    let old = v["id"].as_str().unwrap().to_string();
    assert_eq!(target.metrics().await.0, 100);

    // Restart driver 0 with the same ID and store, then replay the old test's messages at it.
    c.drivers[0].kill();
    let p = c.spawn_driver(0).await;
    c.drivers[0] = p;
    c.wait_alive(2).await;
    let topics = protocol::Topics::with_prefix(&c.prefix);
    let spec: floodgate::orchestrator::spec::TestSpec =
        serde_json::from_value(v["spec"].clone()).unwrap();
    let ids: Vec<String> = v["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    produce_raw(
        &topics.test_config,
        &spec
            .to_config(&old, &ids, "orch-1")
            .emit(&Default::default()),
    )
    .await;
    produce_raw(
        &topics.trigger,
        format!(r#"{{"test_id":"{old}","trigger":"YES"}}"#).as_bytes(),
    )
    .await;

    // A new test after the replay: once it is done, the replayed messages were handled too
    // (same partitions, in order), so the target's count proves the old test did not rerun.
    let v = c.run_test(avalanche(&target.url(), 50), MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await.0, 200);
    assert!(
        c.drivers[0].output().contains("already ran"),
        "the driver said why it ignored the replay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_orchestrator_finds_running_drivers_and_keeps_history() {
    let target = Target::start(&[]).await;
    let mut c = Cluster::start(2).await;
    let v = c.run_test(avalanche(&target.url(), 20), MIN).await;
    let old = v["id"].as_str().unwrap().to_string();

    c.restart_orchestrator().await;
    c.wait_alive(2).await; // from heartbeats alone: the drivers were not restarted
    let old_view = c.test(&old).await;
    assert_eq!(old_view["status"], "completed");
    assert_eq!(
        old_view["aggregate"], v["aggregate"],
        "history survives the restart unchanged"
    );
    let v = c.run_test(avalanche(&target.url(), 20), MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await.0, 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_test_ends_early_as_stopped() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    let spec = json!({"test_type": "tsunami", "delay_ms": 10, "requests_per_driver": 100000, "target_url": target.url()});
    let id = c.start_test(spec).await;
    eventually("progress", MIN, async || {
        (c.test(&id).await["aggregate"]["sent"].as_u64().unwrap_or(0) > 20).then_some(())
    })
    .await;
    // While it runs, the orchestrator keeps getting fresh counts from every driver.
    let seqs = |v: &Value| -> Vec<u64> {
        v["per_driver"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["report_seq"].as_u64().unwrap())
            .collect()
    };
    let before = seqs(&c.test(&id).await);
    eventually("newer reports from every driver", MIN, async || {
        let now = seqs(&c.test(&id).await);
        now.iter().zip(&before).all(|(n, b)| n > b).then_some(())
    })
    .await;
    let (status, _) = post(&c.url(&format!("/api/v1/tests/{id}/stop")), None).await;
    assert_eq!(status, 200);
    let v = c.wait_finished(&id, MIN).await;
    assert_eq!(v["status"], "stopped", "{v}");
    let sent = v["aggregate"]["sent"].as_u64().unwrap();
    assert_eq!(
        target.metrics().await.0,
        sent,
        "every request sent was received"
    );
    // Each driver reported at least every second, by its own clock (the progress rows of its
    // metrics store, served on its own HTTP port): so the orchestrator's count of its requests
    // was never more than about 1 s old.
    for i in 0..2 {
        let d = c.driver(&Cluster::driver_id(i)).await.unwrap();
        let rows = get(&format!(
            "http://{}/api/v1/tests/{id}",
            d["address"].as_str().unwrap()
        ))
        .await;
        let at: Vec<u64> = rows["reports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["at_ms"].as_u64().unwrap())
            .collect();
        assert!(at.len() >= 3, "{rows}");
        for w in at.windows(2) {
            assert!(
                w[1] - w[0] <= 1_000,
                "driver {i} reported {} ms apart",
                w[1] - w[0]
            );
        }
        let listed = get(&format!(
            "http://{}/api/v1/tests",
            d["address"].as_str().unwrap()
        ))
        .await;
        assert_eq!(listed["tests"][0]["test_id"], id.as_str(), "{listed}");
    }
    for d in v["per_driver"].as_array().unwrap() {
        assert_eq!(d["state"], "done", "its final report came: {d}");
        let reason = d["reason"].as_str().unwrap_or("");
        assert!(
            reason.starts_with("stopped after sending"),
            "the driver says it stopped short: {d}"
        );
    }
    // And nothing after the stop: the target's count stays put (watched for a second).
    let until = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < until {
        assert_eq!(target.metrics().await.0, sent, "a request after the stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_orchestrator_even_with_a_dashboard_stream_open() {
    let mut c = Cluster::start(2).await;
    let mut stream = reqwest::get(c.url("/api/v1/events")).await.unwrap();
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: state"));
    let started = std::time::Instant::now();
    let status = c.orchestrator.terminate().await;
    assert!(status.success(), "clean exit: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    for d in &mut c.drivers {
        assert!(
            d.terminate().await.success(),
            "{} exits cleanly on SIGTERM",
            d.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orchestrator_killed_mid_test_resumes_it_after_restart() {
    let target = Target::start(&[]).await;
    let mut c = Cluster::start(2).await;
    let spec = json!({"test_type": "tsunami", "delay_ms": 2, "requests_per_driver": 2000, "target_url": target.url()});
    let id = c.start_test(spec).await;
    eventually("progress", MIN, async || {
        (c.test(&id).await["aggregate"]["sent"].as_u64().unwrap_or(0) > 100).then_some(())
    })
    .await;
    // Killed without a goodbye; restarted before its drivers' next heartbeat is due, it must
    // not declare them lost, and it picks up their reports (final ones included) from Kafka.
    c.restart_orchestrator().await;
    let v = c.wait_finished(&id, MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["aggregate"]["sent"], 4000);
    assert_eq!(target.metrics().await.0, 4000);
}

/// Issue 7, item 9: a create-and-trigger refused because a test is running changes nothing: no
/// test is created and no test_config is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_create_and_trigger_changes_nothing() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    let long = json!({"test_type": "tsunami", "delay_ms": 10, "requests_per_driver": 100000, "target_url": target.url()});
    let running = c.start_test(long).await;
    let mut again = avalanche(&target.url(), 5);
    again["trigger"] = json!(true);
    let (status, v) = post(&c.url("/api/v1/tests"), Some(again)).await;
    assert_eq!(status, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains(&running), "{v}");
    let tests = get(&c.url("/api/v1/tests")).await;
    assert_eq!(
        tests["tests"].as_array().unwrap().len(),
        1,
        "no test was created: {tests}"
    );
    let topics = protocol::Topics::with_prefix(&c.prefix);
    let configs = read_topic(&topics.test_config);
    assert!(!configs.is_empty());
    for (_, payload) in configs {
        let config: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            config["test_id"], running,
            "only the running test's config was published"
        );
    }
    let (status, v) = post(&c.url(&format!("/api/v1/tests/{running}/stop")), None).await;
    assert_eq!((status, v["status"].as_str()), (200, Some("stopped")));
}
