//! Thresholds end to end: a real Kafka broker, two real drivers, the real target. Thresholds
//! pass and fail on purpose (the REST view, the reports, the CLI's exit code), an
//! `abort_on_fail` threshold stops every driver, and `floodgate load` judges its own run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The outcome of the threshold `text` in a test's view.
fn outcome<'a>(v: &'a Value, text: &str) -> &'a Value {
    v["thresholds"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["threshold"] == text)
        .unwrap_or_else(|| panic!("{text} not in {v}"))
}

async fn get_text(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_pass_and_fail_on_merged_data_in_the_view_the_reports_and_the_exit_code() {
    // Every response takes at least 2 ms: `p50 >= 2ms` passes, `p50 < 1ms` fails.
    let target = Target::start(&["--latency-ms", "2"]).await;
    let c = Cluster::start(2).await;
    let passing = [
        "p50 >= 2ms",
        "p(99.9) < 10s",
        "error_rate < 0.1%",
        "rps > 0",
        "errors == 0",
    ];
    let spec = json!({"test_type": "avalanche", "requests_per_driver": 100,
        "target_url": target.url(), "concurrency": 4, "thresholds": passing});
    let v = c.run_test(spec, MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await.0, 200);
    assert_eq!(v["thresholds"]["verdict"], "passed", "{v}");
    for t in passing {
        assert_eq!(outcome(&v, t)["state"], "passed", "{t}: {v}");
    }
    // The measured values are the view's own merged figures, not averages of drivers'.
    let a = &v["aggregate"];
    assert_eq!(
        outcome(&v, "p50 >= 2ms")["measured"],
        a["latency"]["median_ms"]
    );
    assert_eq!(outcome(&v, "rps > 0")["measured"], a["achieved_rps"]);
    assert_eq!(outcome(&v, "error_rate < 0.1%")["measured"], 0.0);
    assert_eq!(outcome(&v, "p50 >= 2ms")["unit"], "ms");
    assert_eq!(v["spec"]["thresholds"][0]["threshold"], "p50 >= 2ms");

    // Through the CLI: a failing threshold exits 3 and prints the measured value.
    let base = strings(&[
        "test",
        "run",
        "--orchestrator",
        &c.api,
        "--type",
        "avalanche",
        "--url",
        &target.url(),
        "-n",
        "50",
        "-c",
        "4",
    ]);
    let mut args = base.clone();
    args.extend(strings(&[
        "--threshold",
        "p50 < 1ms",
        "--threshold",
        "max < 60s",
    ]));
    let (code, out, err) = floodgate(args).await;
    assert_eq!(code, 3, "thresholds failed: {out}\n{err}");
    assert!(out.contains("thresholds: FAILED"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("FAIL") && l.contains("p50 < 1ms") && l.contains("ms")),
        "{out}"
    );
    assert!(err.contains("thresholds failed"), "{err}");
    assert_eq!(target.metrics().await.0, 300);
    let failed = c.get("/api/v1/tests").await["tests"][0].clone();
    assert_eq!(
        failed["status"], "completed",
        "the test itself completed: {failed}"
    );
    assert_eq!(failed["thresholds"]["verdict"], "failed", "{failed}");
    let p50 = outcome(&failed, "p50 < 1ms");
    assert_eq!(p50["state"], "failed");
    assert!(p50["measured"].as_f64().unwrap() >= 2.0, "{p50}");
    assert_eq!(outcome(&failed, "max < 60s")["state"], "passed");

    // The reports carry the verdict and each value.
    let id = failed["id"].as_str().unwrap();
    let report = c.get(&format!("/api/v1/tests/{id}/report.json")).await;
    assert_eq!(report["thresholds"], failed["thresholds"]);
    let csv = get_text(&c.url(&format!("/api/v1/tests/{id}/report.csv"))).await;
    assert!(
        csv.lines().any(|l| l.starts_with("threshold,")
            && l.contains("p50 < 1ms")
            && l.contains("failed")),
        "{csv}"
    );
    let html = get_text(&c.url(&format!("/api/v1/tests/{id}/report.html"))).await;
    assert!(
        html.contains("Thresholds") && html.contains("p50 &lt; 1ms"),
        "html"
    );

    // Prometheus: each threshold's state and value, and the verdict.
    let metrics = get_text(&c.url("/metrics")).await;
    let test_label = format!("test_id=\"{id}\"");
    let line = |name: &str, label: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!("{name}{{")) && l.contains(&test_label) && l.contains(label)
            })
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no {name} with {label} in\n{metrics}"))
            .parse::<f64>()
            .unwrap()
    };
    assert_eq!(
        line("floodgate_test_threshold_passed", "threshold=\"p50 < 1ms\""),
        0.0
    );
    assert_eq!(
        line("floodgate_test_threshold_passed", "threshold=\"max < 60s\""),
        1.0
    );
    let seconds = line("floodgate_test_threshold_value", "threshold=\"p50 < 1ms\"");
    let ms = p50["measured"].as_f64().unwrap();
    assert!(
        (seconds * 1000.0 - ms).abs() < 1e-9,
        "{seconds} s is {ms} ms"
    );
    assert_eq!(
        line("floodgate_test_thresholds_verdict", "state=\"failed\""),
        1.0
    );
    assert_eq!(
        line("floodgate_test_thresholds_verdict", "state=\"passed\""),
        0.0
    );

    // And a passing one exits 0.
    let mut args = base;
    args.extend(strings(&["--threshold", "p50 >= 2ms"]));
    let (code, out, err) = floodgate(args).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("thresholds: PASSED"), "{out}");
    assert_eq!(target.metrics().await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_on_fail_threshold_stops_every_driver_and_names_itself() {
    let target = Target::start(&["--latency-ms", "3"]).await;
    let c = Cluster::start(2).await;
    let total = 2 * 100_000;
    let spec = json!({"test_type": "tsunami", "delay_ms": 10, "requests_per_driver": 100_000,
    "target_url": target.url(), "thresholds": [
        "max < 60s",
        {"threshold": "p99 < 1ms", "abort_on_fail": true, "delay": "2s"},
    ]});
    let v = c.run_test(spec, MIN).await;
    assert_eq!(v["status"], "stopped", "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("\"p99 < 1ms\""), "{reason}");
    let t = &v["thresholds"];
    assert_eq!(t["verdict"], "failed", "{v}");
    assert_eq!(t["aborted_by"], "p99 < 1ms");
    let aborted = outcome(&v, "p99 < 1ms");
    assert_eq!(
        (aborted["aborted"].as_bool(), aborted["state"].as_str()),
        (Some(true), Some("failed"))
    );
    assert!(aborted["measured"].as_f64().unwrap() >= 3.0, "{aborted}");
    assert_eq!(outcome(&v, "max < 60s")["state"], "passed");
    // Not before its delay.
    let ran = v["finished_at_ms"].as_u64().unwrap() - v["started_at_ms"].as_u64().unwrap();
    assert!(ran >= 2_000, "stopped {ran} ms after the start");
    // Every driver stopped short, said so in its final report, and nothing was lost.
    let sent = v["aggregate"]["sent"].as_u64().unwrap();
    assert!(sent > 0 && sent < total, "{sent}");
    assert_eq!(
        target.metrics().await.0,
        sent,
        "every request sent was received"
    );
    let drivers = v["per_driver"].as_array().unwrap();
    assert_eq!(drivers.len(), 2);
    for d in drivers {
        assert_eq!(d["state"], "done", "its final report came: {d}");
        let reason = d["reason"].as_str().unwrap_or("");
        assert!(reason.starts_with("stopped after sending"), "{d}");
        assert!(d["sent"].as_u64().unwrap() < 100_000, "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparsable_threshold_is_refused_naming_its_place() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    let url = c.url("/api/v1/tests");
    let t = target.url();
    let cases = [
        (
            json!(["p99 < 1s", "p999x < 1s"]),
            "thresholds[1]",
            "unknown metric \"p999x\"",
        ),
        (
            json!([{"threshold": "p99 < 1s", "abort_on_fail": true, "delay": "soon"}]),
            "thresholds[0].delay",
            "duration",
        ),
        (json!(["p99 < 250"]), "thresholds[0]", "needs a unit"),
        (json!(["home: p99 < 1s"]), "thresholds[0]", "no mix"),
    ];
    for (thresholds, field, words) in cases {
        let body = json!({"test_type": "avalanche", "requests_per_driver": 5, "target_url": t,
            "thresholds": thresholds});
        let (status, v) = post(&url, Some(body)).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["field"], field, "{v}");
        assert!(v["error"].as_str().unwrap().contains(words), "{v}");
    }
    let (code, _, err) = floodgate(strings(&[
        "test",
        "run",
        "--orchestrator",
        &c.api,
        "--type",
        "avalanche",
        "--url",
        &t,
        "-n",
        "5",
        "--threshold",
        "p999x < 1s",
    ]))
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("unknown metric") && err.contains("--threshold"),
        "{err}"
    );
    assert_eq!(target.metrics().await.0, 0, "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floodgate_load_judges_its_own_run_with_the_same_evaluator() {
    let target = Target::start(&["--latency-ms", "2"]).await;
    let load = |extra: &[&str]| {
        let mut args = strings(&[
            "load",
            "--url",
            &target.url(),
            "-n",
            "50",
            "-c",
            "2",
            "--json",
        ]);
        args.extend(strings(extra));
        args
    };
    let (code, out, err) = floodgate(load(&[
        "--threshold",
        "p50 >= 2ms",
        "--threshold",
        "errors == 0",
    ]))
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["thresholds"]["verdict"], "passed", "{v}");
    assert_eq!(v["thresholds"]["results"][1]["measured"], 0.0);
    let (code, out, err) = floodgate(load(&["--threshold", "p50 < 1ms"])).await;
    assert_eq!(code, 3, "{out}\n{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["thresholds"]["results"][0]["state"], "failed", "{v}");
    let (code, _, err) = floodgate(load(&["--threshold", "rps >= fast"])).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--threshold \"rps >= fast\""), "{err}");
    assert_eq!(
        target.metrics().await.0,
        100,
        "the refused run sent nothing"
    );
}
