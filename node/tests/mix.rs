//! Request mixes and checks end to end (issue 12, items 3 and 4): a real Kafka broker, two real
//! drivers and the real target. Each request name's count is exact at the target's own
//! per-path counters and in the merged view; failed checks are counted by kind and name, never
//! as successes; thresholds can be scoped to a name; bad mixes get a 400 naming the field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

async fn paths(target: &Target) -> Value {
    get(&format!("http://{}/metrics", target.addr)).await["paths"].clone()
}

/// Weights 3:2:1:1:1 (a cycle of 8) and 401 requests per driver: 50 cycles plus the cycle's
/// first slot, which is `home`'s. So each driver sends home 151, echo 100 and 50 of each other.
fn mix(base: &str) -> Value {
    json!([
        {"name": "home", "url": format!("{base}/ping"), "weight": 3},
        {"name": "echo", "method": "POST", "url": format!("{base}/echo"), "weight": 2,
         "body": "{\"q\":\"floodgate\"}",
         "checks": {"body_contains": "floodgate", "json": [{"pointer": "/method", "equals": "POST"}]}},
        {"name": "missing", "url": format!("{base}/status/404"), "checks": {"status": [404]}},
        {"name": "bad", "url": format!("{base}/status/503")},
        {"name": "wrongbody", "url": format!("{base}/echo?x=1"),
         "checks": {"body_contains": "not in the echo"}},
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_name_s_count_is_exact_and_failed_checks_are_counted_by_kind_and_name() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    let base = format!("http://{}", target.addr);
    let spec = json!({"test_type": "avalanche", "requests_per_driver": 401, "concurrency": 4,
        "mix": mix(&base),
        "thresholds": ["home: errors == 0", "bad: error_rate < 1%", "echo: p99 < 60s"]});
    let v = c.run_test(spec, MIN).await;
    // Errors are outcomes of a test that sent everything: it completed.
    assert_eq!(v["status"], "completed", "{v}");

    // The target's own counts, by path (the query is not part of the path).
    let p = paths(&target).await;
    assert_eq!(p["/ping"], 302, "{p}");
    assert_eq!(p["/echo"], 300, "{p}");
    assert_eq!(p["/status/404"], 100, "{p}");
    assert_eq!(p["/status/503"], 100, "{p}");

    let a = &v["aggregate"];
    let by = &a["by_request"];
    let expect = [
        // (name, sent, ok, errors.http, errors.check)
        ("home", 302, 302, 0, 0),
        ("echo", 200, 200, 0, 0),
        ("missing", 100, 100, 0, 0),
        ("bad", 100, 0, 100, 0),
        ("wrongbody", 100, 0, 0, 100),
    ];
    for (name, sent, ok, http, check) in expect {
        let n = &by[name];
        assert_eq!(n["sent"], sent, "{name}: {n}");
        assert_eq!(n["responses"], sent, "{name}: {n}");
        assert_eq!(n["ok"], ok, "{name}: {n}");
        assert_eq!(n["errors"]["http"], http, "{name}: {n}");
        assert_eq!(n["errors"]["check"], check, "{name}: {n}");
        // Its latency is merged from the drivers' histograms: one sample per response.
        assert_eq!(n["latency"]["count"], sent, "{name}: {n}");
    }
    assert_eq!(by["bad"]["checks_failed"]["status"], 100);
    assert_eq!(by["bad"]["status"]["5xx"], 100);
    assert_eq!(by["wrongbody"]["checks_failed"]["body"], 100);
    assert_eq!(by["missing"]["status"]["4xx"], 100);
    // The totals agree with the names.
    assert_eq!(a["sent"], 802);
    assert_eq!(a["ok"], 602);
    assert_eq!(a["errors"]["http"], 100);
    assert_eq!(a["errors"]["check"], 100);
    assert_eq!(
        a["checks_failed"],
        json!({"status": 100, "body": 100, "json": 0})
    );
    // Each driver sent its exact share of each name.
    for d in v["per_driver"].as_array().unwrap() {
        let b = &d["by_request"];
        assert_eq!(
            [&b["home"]["sent"], &b["echo"]["sent"], &b["bad"]["sent"]],
            [151, 100, 50],
            "{d}"
        );
    }
    // Thresholds scoped to a name are judged on that name's merged figures.
    let results = v["thresholds"]["results"].as_array().unwrap();
    let state = |t: &str| {
        results
            .iter()
            .find(|o| o["threshold"] == t)
            .unwrap_or_else(|| panic!("{t}: {v}"))
            .clone()
    };
    assert_eq!(state("home: errors == 0")["state"], "passed");
    assert_eq!(state("echo: p99 < 60s")["state"], "passed");
    let bad = state("bad: error_rate < 1%");
    assert_eq!(
        (&bad["state"], &bad["measured"]),
        (&json!("failed"), &json!(1.0))
    );
    assert_eq!(v["thresholds"]["verdict"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_mix_is_refused_with_the_field_named() {
    let c = Cluster::start(2).await;
    let entry =
        |name: &str, url: &str, weight: u64| json!({"name": name, "url": url, "weight": weight});
    let cases = [
        (
            json!([entry("a", "http://127.0.0.1:9/", 0)]),
            "mix[0].weight",
        ),
        (
            json!([
                entry("a", "http://127.0.0.1:9/", 1),
                entry("b", "http://127.0.0.2:9/", 1)
            ]),
            "mix[1].url",
        ),
        (
            json!([
                entry("a", "http://127.0.0.1:9/", 1),
                entry("a", "http://127.0.0.1:9/x", 1)
            ]),
            "mix[1].name",
        ),
        (json!([]), "mix"),
    ];
    for (mix, field) in cases {
        let spec = json!({"test_type": "avalanche", "requests_per_driver": 10, "mix": mix});
        let (code, body) = post(&c.url("/api/v1/tests"), Some(spec)).await;
        assert_eq!((code, body["field"].as_str()), (400, Some(field)), "{body}");
    }
    let spec = json!({"test_type": "avalanche", "requests_per_driver": 10,
        "mix": [entry("a", "http://127.0.0.1:9/", 1)], "thresholds": ["b: p99 < 1s"]});
    let (code, body) = post(&c.url("/api/v1/tests"), Some(spec)).await;
    assert_eq!(
        (code, body["field"].as_str()),
        (400, Some("thresholds[0]")),
        "{body}"
    );
    let spec = json!({"test_type": "avalanche", "requests_per_driver": 10,
        "target_url": "http://127.0.0.1:9/", "checks": {"status": ["6xx"]}});
    let (code, body) = post(&c.url("/api/v1/tests"), Some(spec)).await;
    assert_eq!(
        (code, body["field"].as_str()),
        (400, Some("checks.status")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_runs_a_mix_file_with_bodies_from_files_and_checks() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("order.json"), r#"{"item":"fg-7"}"#).unwrap();
    let file = dir.path().join("mix.yaml");
    std::fs::write(
        &file,
        format!(
            "- name: home\n  url: http://{a}/ping\n  weight: 3\n\
             - name: order\n  method: POST\n  url: http://{a}/echo\n  body_file: order.json\n  \
             checks:\n    body_contains: fg-7\n",
            a = target.addr
        ),
    )
    .unwrap();
    let args = |mix: &str| -> Vec<String> {
        [
            "test",
            "run",
            "--orchestrator",
            &c.api,
            "--type",
            "avalanche",
            "--mix",
            mix,
            "-n",
            "40",
            "--check-status",
            "2xx",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let (code, out, err) = floodgate(args(file.to_str().unwrap())).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let p = paths(&target).await;
    // 40 per driver at 3:1: 30 and 10.
    assert_eq!((&p["/ping"], &p["/echo"]), (&json!(60), &json!(20)), "{p}");
    assert!(
        out.contains("home") && out.contains("order"),
        "per-name rows: {out}"
    );

    std::fs::write(
        &file,
        format!(
            "- name: a\n  url: http://{}/ping\n  body_file: nope.json\n",
            target.addr
        ),
    )
    .unwrap();
    let (code, _, err) = floodgate(args(file.to_str().unwrap())).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("mix[0].body_file") && err.contains("nope.json"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floodgate_load_runs_a_mix_on_one_machine_with_checks_and_scoped_thresholds() {
    let target = Target::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mix.json");
    let a = &target.addr;
    std::fs::write(
        &file,
        json!([
            {"name": "home", "url": format!("http://{a}/ping"), "weight": 3},
            {"name": "gone", "url": format!("http://{a}/status/410"),
             "checks": {"status": ["4xx"]}},
            {"name": "json", "method": "post", "url": format!("http://{a}/echo"), "body": "x",
             "checks": {"json": [{"pointer": "/method", "equals": "GET"}]}},
        ])
        .to_string(),
    )
    .unwrap();
    let (code, out, err) = floodgate([
        "load",
        "--mix",
        file.to_str().unwrap(),
        "-n",
        "500",
        "-c",
        "4",
        "--json",
        "--threshold",
        "home: errors == 0",
        "--threshold",
        "json: checks_failed == 0",
    ])
    .await;
    // The JSON check fails on purpose (the echo says POST): thresholds failed, exit code 3.
    assert_eq!(code, 3, "{out}\n{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    // 500 at 3:1:1: 300, 100, 100.
    let by = &v["by_request"];
    assert_eq!(
        [
            &by["home"]["sent"],
            &by["gone"]["sent"],
            &by["json"]["sent"]
        ],
        [300, 100, 100],
        "{v}"
    );
    assert_eq!(by["gone"]["ok"], 100, "410 is expected: {v}");
    assert_eq!(by["json"]["errors"]["check"], 100, "{v}");
    assert_eq!(v["checks_failed"]["json"], 100, "{v}");
    let p = paths(&target).await;
    assert_eq!(
        (&p["/ping"], &p["/status/410"], &p["/echo"]),
        (&json!(300), &json!(100), &json!(100))
    );
    let results = v["thresholds"]["results"].as_array().unwrap();
    assert_eq!(results[0]["state"], "passed", "{v}");
    assert_eq!(
        (&results[1]["state"], &results[1]["measured"]),
        (&json!("failed"), &json!(100.0))
    );
}
