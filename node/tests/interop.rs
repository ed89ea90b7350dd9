//! Interoperability with other implementations of the spec, over a real Kafka broker: seed-style
//! drivers under Floodgate's orchestrator, Floodgate's drivers under a seed-style orchestrator,
//! and a mixed fleet. The seed-style nodes (tests/seed/seed_node.py, on kafka-python) reproduce
//! what the public implementations are known to do (docs/protocol.md, "Other implementations").
//! Counts are checked at the target; every test must end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

fn driver<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["per_driver"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["driver_id"] == id)
        .unwrap_or_else(|| panic!("no driver {id} in {v}"))
}

fn assert_no_panic(p: &mut Proc) {
    assert!(
        p.running() && p.lines_starting("PANIC").is_empty(),
        "{} crashed:\n{}",
        p.name,
        p.output()
    );
}

/// Item 3 and 8: float summaries with an empty report_id and no count, a fixed request count,
/// heartbeats every 5 s without a timestamp; the test outlasts three of Floodgate's heartbeat
/// intervals, and the drivers are never called lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_drivers_with_float_summaries_and_5s_heartbeats_complete_and_are_never_lost() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(0).await;
    let quirks = [
        "--requests",
        "40",
        "--heartbeat-s",
        "5",
        "--strict-trigger",
        "--panic-on-unknown",
        "--metrics",
        "float",
        "--report-id",
        "empty",
    ];
    let mut seeds = vec![
        seed_driver(&c.prefix, "seed-a1", &target.url(), &quirks).await,
        seed_driver(&c.prefix, "seed-a2", &target.url(), &quirks).await,
    ];
    c.wait_alive(2).await;
    // 40 requests 250 ms apart: ten seconds, over three 5 s heartbeats.
    let spec = json!({"test_type": "tsunami", "delay_ms": 250, "requests_per_driver": 100, "target_url": target.url()});
    let id = c.start_test(spec).await;
    let v = eventually("the test to end", MIN, async || {
        assert_eq!(c.alive().await.len(), 2, "a seed driver was called lost");
        let v = c.test(&id).await;
        (v["settled"] == true).then_some(v)
    })
    .await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(
        target.metrics().await,
        (80, 80),
        "each seed driver sends its fixed 40"
    );
    for id in ["seed-a1", "seed-a2"] {
        let d = driver(&v, id);
        assert_eq!(
            (d["state"].as_str(), d["ended_by"].as_str()),
            (Some("done"), Some("quiet")),
            "{d}"
        );
        assert_eq!(d["report_format"], "seed");
        assert_eq!(d["counted"], false);
        assert!(
            d["latency"]["median_ms"].as_f64().unwrap() > 0.0,
            "shown as it gave it: {d}"
        );
        assert_eq!(d["latency"]["source"], "summary");
    }
    let l = &v["aggregate"]["latency"];
    assert!(l["median_ms"].is_null(), "medians are not averaged: {l}");
    assert!(
        l["min_ms"].as_f64().unwrap() > 0.0
            && l["max_ms"].as_f64().unwrap() >= l["min_ms"].as_f64().unwrap()
    );
    assert!(
        l["not_mergeable"]["reason"]
            .as_str()
            .unwrap()
            .contains("summary"),
        "{l}"
    );
    let drivers = get(&c.url("/api/v1/drivers")).await;
    for d in drivers["drivers"].as_array().unwrap() {
        let interval = d["heartbeat_interval_ms"].as_u64().unwrap();
        assert!(
            (4_900..6_000).contains(&interval),
            "judged by its own 5 s interval: {d}"
        );
    }
    for s in &mut seeds {
        assert_no_panic(s);
    }
}

/// Item 7: a peer that decodes JSON integers and reads the delay in seconds gets both from the
/// default seed style: its 1 s gap is kept (not 1 ms, not 1000 s), and it ends by its count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_driver_that_needs_integers_and_seconds_gets_them() {
    let target = Target::start(&["--record-arrivals", "100"]).await;
    let c = Cluster::start(0).await;
    let quirks = [
        "--needs-int",
        "--delay-unit",
        "s",
        "--counts",
        "num_requests",
        "--report-id",
        "uuid",
        "--heartbeat-bool",
        "--timestamp",
        "seed",
    ];
    let mut seeds = vec![
        seed_driver(&c.prefix, "seed-b1", &target.url(), &quirks).await,
        seed_driver(&c.prefix, "seed-b2", &target.url(), &quirks).await,
    ];
    c.wait_alive(2).await;
    let spec = json!({"test_type": "tsunami", "delay_ms": 1000, "requests_per_driver": 3, "target_url": target.url()});
    let v = c.run_test(spec, MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await, (6, 6));
    for id in ["seed-b1", "seed-b2"] {
        let d = driver(&v, id);
        assert_eq!(d["ended_by"], "count", "{d}");
        assert_eq!(
            (d["sent"].as_u64(), d["counted"].as_bool()),
            (Some(3), Some(true))
        );
    }
    let arrivals = target.arrivals_us().await;
    let span = arrivals[arrivals.len() - 1] - arrivals[0];
    assert!(
        (1_900_000..10_000_000).contains(&span),
        "3 requests 1 s apart took {span} µs: the delay was not read in seconds"
    );
    for s in &mut seeds {
        assert_no_panic(s);
        assert!(
            s.output().contains("\"test_message_delay\": 1,"),
            "a JSON integer: {}",
            s.output()
        );
    }
}

/// Item 8, the other half: a peer that heartbeats only once its test runs (every 10 s, the first
/// 10 s after its trigger) but reports all along is alive while it reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_driver_that_reports_but_heartbeats_late_is_not_lost() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(0).await;
    let quirks = [
        "--heartbeat-after-trigger",
        "--heartbeat-s",
        "30",
        "--report-s",
        "0.5",
        "--metrics",
        "duration",
    ];
    let _seeds = [
        seed_driver(&c.prefix, "seed-h1", &target.url(), &quirks).await,
        seed_driver(&c.prefix, "seed-h2", &target.url(), &quirks).await,
    ];
    c.wait_alive(2).await;
    // 60 requests 300 ms apart: 18 s, past the 15 s a registration alone keeps a driver alive.
    let spec = json!({"test_type": "tsunami", "delay_ms": 300, "requests_per_driver": 60, "target_url": target.url()});
    let v = c.run_test(spec, MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await, (120, 120));
}

/// Item 3: string (and Go duration) summaries sent once, at the end; registrations with
/// `node_ip` and no message_type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_drivers_that_report_strings_once_at_the_end_complete() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(0).await;
    let common = [
        "--report",
        "end",
        "--report-id",
        "int",
        "--ip-field",
        "node_ip",
        "--no-message-type",
        "--timestamp",
        "rfc3339",
    ];
    let mut strings = common.to_vec();
    strings.extend(["--metrics", "string"]);
    let mut durations = common.to_vec();
    durations.extend(["--metrics", "duration"]);
    let mut seeds = vec![
        seed_driver(&c.prefix, "seed-c1", &target.url(), &strings).await,
        seed_driver(&c.prefix, "seed-c2", &target.url(), &durations).await,
    ];
    c.wait_alive(2).await;
    let v = c
        .run_test(json!({"test_type": "avalanche", "requests_per_driver": 50, "target_url": target.url()}), MIN)
        .await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await, (100, 100));
    for id in ["seed-c1", "seed-c2"] {
        let d = driver(&v, id);
        assert_eq!(d["ended_by"], "quiet", "{d}");
        let mean = d["latency"]["mean_ms"].as_f64().unwrap();
        assert!(mean > 0.0 && mean < 10_000.0, "a latency in ms: {d}");
    }
    for s in &mut seeds {
        assert_no_panic(s);
    }
}

/// Items 1 and 2, the other way round: a seed orchestrator that sends only test_id, test_type
/// and test_message_delay (in seconds) drives Floodgate's drivers to exact counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floodgate_drivers_complete_tests_of_a_seed_orchestrator_that_names_no_count_or_target() {
    let target = Target::start(&["--record-arrivals", "1000"]).await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("t{}.", uuid::Uuid::new_v4().simple());
    let url = target.url();
    let opts = ["--target", url.as_str(), "--default-count", "30"];
    let _drivers = [
        floodgate_driver(dir.path(), &prefix, "fg-1", &opts).await,
        floodgate_driver(dir.path(), &prefix, "fg-2", &opts).await,
    ];
    let mut o = seed_orchestrator(
        &prefix,
        &["--drivers", "2", "--test-type", "AVALANCHE", "--delay", "0"],
    )
    .await;
    assert_eq!(o.exit_code(MIN).await, Some(0), "{}", o.output());
    assert_eq!(target.metrics().await.0, 60, "--default-count per driver");
    let finals: Vec<Value> = o
        .lines_starting("METRICS ")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|m: &Value| m["final"] == true)
        .collect();
    assert_eq!(finals.len(), 2, "{}", o.output());
    for m in &finals {
        assert_eq!(m["requests_sent"], 30);
        assert_eq!(
            m["test_status"], "complete",
            "the word the peer that reads it waits for"
        );
        assert_eq!(
            m["defaults"]["message_count_per_driver"], 30,
            "the report says a default was used: {m}"
        );
        assert!(
            m["metrics"]["mean_latency"].is_number(),
            "seed latencies as numbers by default: {m}"
        );
    }

    // A Tsunami whose delay a seed orchestrator gives in seconds, as a float.
    let mut o = seed_orchestrator(
        &prefix,
        &[
            "--drivers",
            "2",
            "--test-type",
            "TSUNAMI",
            "--delay",
            "0.05",
        ],
    )
    .await;
    assert_eq!(o.exit_code(MIN).await, Some(0), "{}", o.output());
    assert_eq!(target.metrics().await.0, 120);
    let arrivals = target.arrivals_us().await;
    let tsunami = &arrivals[60..];
    let span = tsunami[tsunami.len() - 1] - tsunami[0];
    assert!(
        (1_400_000..5_000_000).contains(&span),
        "30 requests 50 ms apart took {span} µs"
    );
}

/// Item 1: a target named flat (`test_server`, `target_url`) wins over the driver's --target; a
/// config with no target anywhere is refused with a report saying why, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_named_flat_is_followed_and_a_config_without_one_is_refused() {
    let default = Target::start(&[]).await;
    let named = Target::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("t{}.", uuid::Uuid::new_v4().simple());
    let fallback = default.url();
    let _drivers = [
        floodgate_driver(dir.path(), &prefix, "fg-1", &["--target", &fallback]).await,
        floodgate_driver(dir.path(), &prefix, "fg-2", &["--target", &fallback]).await,
    ];
    let url = named.url();
    for (field, count, total) in [("test_server", "20", 40), ("target_url", "10", 60)] {
        let mut o = seed_orchestrator(
            &prefix,
            &[
                "--drivers",
                "2",
                "--count",
                count,
                "--target-field",
                field,
                "--target-url",
                &url,
            ],
        )
        .await;
        assert_eq!(o.exit_code(MIN).await, Some(0), "{field}: {}", o.output());
        assert_eq!(named.metrics().await.0, total, "{field} was followed");
        assert_eq!(default.metrics().await.0, 0, "{field} wins over --target");
    }

    let prefix = format!("t{}.", uuid::Uuid::new_v4().simple());
    let drivers = [
        floodgate_driver(dir.path(), &prefix, "fg-3", &[]).await,
        floodgate_driver(dir.path(), &prefix, "fg-4", &[]).await,
    ];
    let mut o = seed_orchestrator(&prefix, &["--drivers", "2", "--count", "5"]).await;
    assert_eq!(
        o.exit_code(MIN).await,
        Some(0),
        "a refusal ends the driver's part: {}",
        o.output()
    );
    let reports: Vec<Value> = o
        .lines_starting("METRICS ")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        reports.len(),
        2,
        "one report each, no stream of fake errors: {reports:?}"
    );
    for r in &reports {
        assert_eq!(
            (r["test_status"].as_str(), r["final"].as_bool()),
            (Some("refused"), Some(true)),
            "{r}"
        );
        assert!(
            r["reason"].as_str().unwrap().contains("no target URL"),
            "{r}"
        );
        assert_eq!(
            (r["requests_sent"].as_u64(), r["errors"]["connect"].as_u64()),
            (Some(0), Some(0))
        );
    }
    assert_eq!(
        default.metrics().await.0 + named.metrics().await.0,
        60,
        "nothing more was sent"
    );
    for d in &drivers {
        assert_eq!(
            d.output().matches("refusing the test").count(),
            1,
            "one clear line: {}",
            d.output()
        );
    }
}

/// A mixed fleet: one Floodgate driver and one seed-style driver in one test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_fleet_of_a_floodgate_and_a_seed_driver_completes() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(1).await;
    let mut seed = seed_driver(
        &c.prefix,
        "seed-m",
        &target.url(),
        &["--requests", "40", "--strict-trigger"],
    )
    .await;
    c.wait_alive(2).await;
    let v = c
        .run_test(json!({"test_type": "avalanche", "requests_per_driver": 100, "target_url": target.url()}), MIN)
        .await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await, (140, 140));
    let ours = driver(&v, &Cluster::driver_id(0));
    assert_eq!(
        (ours["ended_by"].as_str(), ours["sent"].as_u64()),
        (Some("final"), Some(100))
    );
    assert_eq!(ours["latency"]["source"], "histogram");
    assert_eq!(driver(&v, "seed-m")["ended_by"], "quiet");
    let l = &v["aggregate"]["latency"];
    assert_eq!(l["source"], "mixed", "{l}");
    assert!(l["median_ms"].is_null() && l["p99_ms"].is_null(), "{l}");
    assert!(l["min_ms"].is_number() && l["max_ms"].is_number(), "{l}");
    assert_eq!(v["aggregate"]["sent"], 100, "what is counted is exact");
    assert_no_panic(&mut seed);
}

/// Items 4, 5 and 6: a stop ends a test at once, whatever the drivers do; it never reaches the
/// seed's trigger topic (a seed driver there would crash or re-run); the trigger topic carries
/// only "YES", each at least 500 ms after its config; and a new test can start right away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_the_test_at_once_and_never_reaches_seed_drivers() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(1).await;
    let mut seed = seed_driver(
        &c.prefix,
        "seed-s",
        &target.url(),
        &[
            "--strict-trigger",
            "--panic-on-unknown",
            "--delay-unit",
            "s",
        ],
    )
    .await;
    c.wait_alive(2).await;
    // 50 requests 100 ms apart.
    let spec = json!({"test_type": "tsunami", "delay_ms": 100, "requests_per_driver": 50, "target_url": target.url()});
    let id = c.start_test(spec.clone()).await;
    eventually("both drivers to report", MIN, async || {
        let v = c.test(&id).await;
        v["per_driver"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["report_seq"].as_u64().unwrap_or(0) > 0)
            .then_some(())
    })
    .await;
    let (status, v) = post(&c.url(&format!("/api/v1/tests/{id}/stop")), None).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("stopped")),
        "stopped at once: {v}"
    );
    assert_eq!(c.test(&id).await["status"], "stopped");

    // The next test is accepted at once, though the seed driver is still busy with its share.
    let second = c.start_test(spec).await;
    let v = c.wait_finished(&second, MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_no_panic(&mut seed);
    let first = c.wait_finished(&id, MIN).await;
    assert_eq!(first["status"], "stopped");

    let topics = floodgate::protocol::Topics::with_prefix(&c.prefix);
    let triggers = read_topic(&topics.trigger);
    let configs = read_topic(&topics.test_config);
    assert_eq!(triggers.len(), 2);
    for (at, payload) in &triggers {
        let t: Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(
            t["trigger"], "YES",
            "only the seed's value on its topic: {t}"
        );
        let config_at = configs
            .iter()
            .filter(|(_, p)| serde_json::from_slice::<Value>(p).unwrap()["test_id"] == t["test_id"])
            .map(|(ts, _)| *ts)
            .filter(|ts| ts <= at)
            .max()
            .unwrap();
        assert!(
            at - config_at >= 500,
            "config then trigger {} ms apart",
            at - config_at
        );
    }
    let control = read_topic(&topics.control);
    assert_eq!(
        control.len(),
        1,
        "the stop went on Floodgate's control topic"
    );
}

/// Item 4 across a restart: a test whose drivers never send `final` still ends after the
/// orchestrator is restarted in the middle of it, and a new test can run after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_of_seed_drivers_ends_across_an_orchestrator_restart() {
    let target = Target::start(&[]).await;
    let mut c = Cluster::start(0).await;
    let _seeds = [
        seed_driver(&c.prefix, "seed-r1", &target.url(), &[]).await,
        seed_driver(&c.prefix, "seed-r2", &target.url(), &[]).await,
    ];
    c.wait_alive(2).await;
    let spec = json!({"test_type": "tsunami", "delay_ms": 100, "requests_per_driver": 30, "target_url": target.url()});
    let id = c.start_test(spec.clone()).await;
    eventually("reports", MIN, async || {
        (c.test(&id).await["per_driver"][0]["report_seq"]
            .as_u64()
            .unwrap_or(0)
            > 0)
        .then_some(())
    })
    .await;
    c.restart_orchestrator().await;
    let v = c.wait_finished(&id, MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await.0, 60);
    c.wait_alive(2).await;
    let v = c.run_test(spec, MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await.0, 120);
}
