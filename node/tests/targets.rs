//! What a deployment lets its tests aim at and ask for, through the REST API of a real
//! orchestrator process (real Kafka, real drivers, a real target): link-local and cloud metadata
//! addresses refused by default, an allow-list, and the deployment's caps. A refusal is a 400
//! naming the field, and leaves no test behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

fn avalanche(url: &str) -> Value {
    json!({"test_type": "avalanche", "requests_per_driver": 10, "target_url": url})
}

/// Posts a spec and asserts a 400 naming `field` whose message contains `says`.
async fn refused(c: &Cluster, spec: Value, field: &str, says: &str) {
    let (status, v) = post(&c.url("/api/v1/tests"), Some(spec.clone())).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (400, Some(field)),
        "{spec}: {v}"
    );
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(msg.contains(says), "{spec}: {msg:?} does not say {says:?}");
}

async fn no_tests(c: &Cluster) {
    let list = get(&c.url("/api/v1/tests")).await;
    assert_eq!(list["tests"], json!([]), "a refused test was left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_metadata_and_link_local_targets_are_refused_and_loopback_is_not() {
    let c = Cluster::start(0).await;
    for (url, says) in [
        ("http://169.254.169.254/latest/meta-data/", "169.254.0.0/16"),
        ("http://[fe80::1]/", "fe80::/10"),
        ("http://[fd00:ec2::254]/", "AWS metadata"),
        ("http://100.100.100.200/", "Alibaba"),
        ("http://[::ffff:169.254.169.254]/", "169.254.0.0/16"),
    ] {
        refused(&c, avalanche(url), "target_url", says).await;
    }
    refused(
        &c,
        avalanche("http://no-such-host.invalid/"),
        "target_url",
        "cannot be resolved",
    )
    .await;
    no_tests(&c).await;
    // Loopback passes the policy: it fails only for want of drivers (409), not as a target.
    let (status, v) = post(
        &c.url("/api/v1/tests"),
        Some(avalanche("http://127.0.0.1:9/")),
    )
    .await;
    assert_eq!(status, 409, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_list_and_caps_bound_what_a_test_may_ask_and_an_allowed_test_runs() {
    let target = Target::start(&[]).await;
    let c = Cluster::start_with_args(
        2,
        &[
            "--allow-target",
            "127.0.0.1/32,*.allowed.test",
            "--max-requests-per-driver",
            "50",
            "--max-concurrency",
            "4",
            "--max-rate",
            "400",
        ],
    )
    .await;
    let url = target.url();
    let port = target.addr.rsplit(':').next().unwrap().to_string();
    // Not on the list: ::1 is loopback too, but only 127.0.0.1/32 is listed.
    refused(
        &c,
        avalanche(&format!("http://[::1]:{port}/ping")),
        "target_url",
        "allow-list",
    )
    .await;
    // The list does not open the metadata range either.
    refused(
        &c,
        avalanche("http://169.254.169.254/"),
        "target_url",
        "169.254.0.0/16",
    )
    .await;
    // The caps, each named with its field.
    for (field, value) in [
        ("requests_per_driver", json!(51)),
        ("concurrency", json!(5)),
        ("throughput_per_driver", json!(401)),
    ] {
        let mut spec = avalanche(&url);
        spec[field] = value;
        refused(&c, spec, field, "this deployment's cap").await;
    }
    no_tests(&c).await;

    // An allowed target within the caps runs, paced at the cap it did not name.
    let mut spec = avalanche(&url);
    spec["requests_per_driver"] = json!(50);
    let v = c.run_test(spec, MIN).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["spec"]["throughput_per_driver"], 400.0, "{v}");
    assert_eq!(v["spec"]["concurrency"], 4, "{v}");
    assert_eq!(v["aggregate"]["ok"], 100, "{v}");
    assert_eq!(target.metrics().await.0, 100);
    assert_eq!(
        get(&c.url("/api/v1/tests")).await["tests"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_above_the_hard_limits_and_bad_list_entries_stop_the_orchestrator_at_start() {
    for (flag, value, says) in [
        ("--max-concurrency", "10001", "concurrency cap"),
        ("--max-rate", "1e300", "rate cap"),
        ("--allow-target", "10.0.0.0/40", "--allow-target"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("o.sqlite");
        let out = tokio::process::Command::new(floodgate_bin())
            .args([
                "orchestrator",
                "--kafka",
                &kafka(),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--store", store.to_str().unwrap(), flag, value])
            .output();
        let out = tokio::time::timeout(Duration::from_secs(30), out)
            .await
            .expect("the orchestrator exits at once")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value} was accepted");
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
    }
}
