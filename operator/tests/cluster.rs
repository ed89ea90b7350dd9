//! Floodgate on a real single-node Kubernetes cluster (`scripts/k8s/cluster.sh`: kubelet,
//! containerd, kube-proxy, CoreDNS), as a user meets it: `helm install` of the chart with the
//! images `make images` built, `kubectl apply` of a LoadTest, `kubectl port-forward`, a real
//! Prometheus with Kubernetes service discovery, and pods deleted mid-test. `make test` starts
//! the cluster and sets the FLOODGATE_CLUSTER_* variables (`cluster.sh env`).
//!
//! The tests share one installation and run one at a time (some delete pods).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cluster/support.rs"]
mod support;

use floodgate_operator::crd::Phase;
use floodgate_testkit::eventually;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::Value;
use std::time::Duration;
use support::{installed, kubectl, loadtest, PortForward, NS};

/// A LoadTest of the example's shape, finishing in about `requests × delay_ms` ms.
fn tsunami(name: &str, drivers: u32, requests: u64, delay_ms: u64) -> Value {
    loadtest(name, drivers, requests, delay_ms)
}

#[tokio::test]
#[ignore = "needs the real cluster: make test runs these with --ignored (scripts/k8s/cluster.sh)"]
async fn helm_install_then_the_example_loadtest_runs_in_real_pods() {
    let c = installed().await;
    let _serial = c.serial().await;
    // The operator pod is Ready through its own probes (/healthz needs Kafka).
    let op = c.operator_pod().await;
    assert!(c.pod_ready(&op).await, "the operator pod is Ready");
    // `helm test`: a pod of the node image reaches the REST API by its Service name (CoreDNS),
    // with the token from the chart's Secret.
    let out = support::helm(&c, &["test", "floodgate", "--timeout", "2m"]);
    assert!(out.contains("Succeeded"), "helm test: {out}");

    if c.get("ping-tsunami").await.is_some() {
        c.delete_loadtest("ping-tsunami").await;
    }
    c.reset_target().await;
    let out = kubectl(&c, &["apply", "-f", &support::example_path()]);
    assert!(out.contains("ping-tsunami"), "kubectl apply: {out}");
    let lt = c
        .until_phase(
            "ping-tsunami",
            &[Phase::Succeeded, Phase::Failed],
            Duration::from_secs(180),
        )
        .await;
    let status = lt.status.clone().expect("status");
    assert_eq!(status.phase, Phase::Succeeded, "status: {status:?}");
    let agg = status.aggregate.expect("aggregate");
    assert_eq!(agg.sent, 3_000, "3 drivers × 1,000");
    assert_eq!(c.target_count().await, 3_000, "the target pod's own count");

    // The drivers were pods of the node image, named as their IDs.
    let ids: Vec<String> = status.drivers.iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(
        ids.iter().all(|id| id.starts_with("ping-tsunami-drivers-")),
        "driver IDs are pod names: {ids:?}"
    );
    let images = c.driver_images_seen();
    assert!(
        images.iter().any(|i| i.contains("floodgate/node")),
        "driver pods ran the node image: {images:?}"
    );

    // `kubectl get lt` fills its printer columns.
    let table = kubectl(&c, &["get", "lt", "ping-tsunami", "--no-headers"]);
    let cols: Vec<&str> = table.split_whitespace().collect();
    assert_eq!(cols.get(1), Some(&"Succeeded"), "{table}");
    assert_eq!(cols.get(2), Some(&"3/3"), "{table}");
    assert_eq!(cols.get(3), Some(&"3000"), "{table}");
    assert!(
        cols.get(4).is_some_and(|p| p.parse::<f64>().is_ok()),
        "P99 ms: {table}"
    );
    c.delete_loadtest("ping-tsunami").await;
}

#[tokio::test]
#[ignore = "needs the real cluster: make test runs these with --ignored (scripts/k8s/cluster.sh)"]
async fn the_api_dashboard_and_metrics_answer_through_kubectl_port_forward() {
    let c = installed().await;
    let _serial = c.serial().await;
    c.reset_target().await;
    c.apply(&tsunami("through-forward", 2, 500, 2)).await;
    let lt = c
        .until_phase(
            "through-forward",
            &[Phase::Succeeded, Phase::Failed],
            Duration::from_secs(120),
        )
        .await;
    let test_id = lt.status.and_then(|s| s.test_id).expect("test id");

    let fwd = PortForward::start(&c, "svc/floodgate", 8090).await;
    let http = reqwest::Client::new();
    // Without the token: refused (the chart turns authentication on).
    let refused = http
        .get(format!("{}/api/v1/tests", fwd.url))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let view: Value = http
        .get(format!("{}/api/v1/tests/{test_id}", fwd.url))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["aggregate"]["sent"], 1_000, "{view}");
    let metrics = http
        .get(format!("{}/metrics", fwd.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "floodgate_test_requests_sent_total{{test_id=\"{test_id}\""
        )),
        "/metrics through the forward"
    );
    // The dashboard in headless Chromium, through the same forward.
    let out = support::browser("cluster.mjs", &[&fwd.url, &c.token, &test_id]).await;
    assert!(out.contains("dashboard ok"), "{out}");
    c.delete_loadtest("through-forward").await;
}

#[tokio::test]
#[ignore = "needs the real cluster: make test runs these with --ignored (scripts/k8s/cluster.sh)"]
async fn deleting_a_driver_pod_mid_test_fails_it_with_partial_results_and_no_rerun() {
    let c = installed().await;
    let _serial = c.serial().await;
    c.reset_target().await;
    // 2 drivers × 6,000 requests 5 ms apart: 30 s.
    c.apply(&tsunami("lose-a-driver", 2, 6_000, 5)).await;
    let victim = eventually(
        "a driver that has sent requests",
        Duration::from_secs(120),
        async || {
            let lt = c.get("lose-a-driver").await?;
            let s = lt.status?;
            (s.phase == Phase::Running).then_some(())?;
            s.drivers
                .iter()
                .find(|d| d.sent >= 500)
                .map(|d| d.id.clone())
        },
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), NS);
    pods.delete(&victim, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let lt = c
        .until_phase(
            "lose-a-driver",
            &[Phase::Succeeded, Phase::Failed],
            Duration::from_secs(120),
        )
        .await;
    let s = lt.status.expect("status");
    assert_eq!(
        s.phase,
        Phase::Failed,
        "a lost driver fails the test: {s:?}"
    );
    let sent = s.aggregate.map(|a| a.sent).unwrap_or(0);
    assert!(sent > 0 && sent < 12_000, "partial results: {sent}");
    // The replacement pod does not re-run the test: the target's count stops where the test
    // ended, and never exceeds what the two drivers were given.
    let at_end = c.target_count().await;
    assert!(at_end <= 12_000, "{at_end}");
    let stable = eventually(
        "the target's count to stay put",
        Duration::from_secs(60),
        async || {
            let a = c.target_count().await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            (c.target_count().await == a).then_some(a)
        },
    )
    .await;
    assert!(
        stable >= sent,
        "the target saw at least what was reported: {stable} vs {sent}"
    );
    assert!(stable <= 12_000);
    c.delete_loadtest("lose-a-driver").await;
}

#[tokio::test]
#[ignore = "needs the real cluster: make test runs these with --ignored (scripts/k8s/cluster.sh)"]
async fn two_loadtests_at_once_each_get_their_own_drivers_and_both_succeed() {
    let c = installed().await;
    let _serial = c.serial().await;
    c.reset_target().await;
    c.apply(&tsunami("pair-a", 2, 1_500, 2)).await;
    c.apply(&tsunami("pair-b", 3, 1_000, 3)).await;
    let a = c
        .until_phase(
            "pair-a",
            &[Phase::Succeeded, Phase::Failed],
            Duration::from_secs(180),
        )
        .await
        .status
        .expect("status a");
    let b = c
        .until_phase(
            "pair-b",
            &[Phase::Succeeded, Phase::Failed],
            Duration::from_secs(180),
        )
        .await
        .status
        .expect("status b");
    assert_eq!(
        (a.phase, b.phase),
        (Phase::Succeeded, Phase::Succeeded),
        "{a:?} {b:?}"
    );
    assert_eq!(a.aggregate.as_ref().map(|x| x.sent), Some(3_000));
    assert_eq!(b.aggregate.as_ref().map(|x| x.sent), Some(3_000));
    assert!(
        a.drivers
            .iter()
            .all(|d| d.id.starts_with("pair-a-drivers-")),
        "{a:?}"
    );
    assert!(
        b.drivers
            .iter()
            .all(|d| d.id.starts_with("pair-b-drivers-")),
        "{b:?}"
    );
    assert_eq!(
        c.target_count().await,
        6_000,
        "both tests at the target, exactly"
    );
    // One test runs at a time: a LoadTest that waited was Queued (a condition, not an error),
    // and its turn came.
    for s in [&a, &b] {
        if let Some(q) = s.conditions.iter().find(|c| c.type_ == "Queued") {
            assert_eq!(
                (q.status.as_str(), q.reason.as_str()),
                ("False", "Started"),
                "{s:?}"
            );
        }
        assert!(
            !s.conditions
                .iter()
                .any(|c| c.type_ == "Reconciled" && c.status == "False"),
            "waiting is not a failed reconcile: {s:?}"
        );
    }
    c.delete_loadtest("pair-a").await;
    c.delete_loadtest("pair-b").await;
}

#[tokio::test]
#[ignore = "needs the real cluster: make test runs these with --ignored (scripts/k8s/cluster.sh)"]
async fn prometheus_scrapes_the_operator_and_the_drivers_during_a_test() {
    let c = installed().await;
    let _serial = c.serial().await;
    let prom = support::Prometheus::start(&c).await;
    c.reset_target().await;
    // Long enough for several scrapes of the drivers while they run (5 s interval).
    c.apply(&tsunami("scraped", 2, 4_000, 5)).await;
    let test_id = eventually("the test's ID", Duration::from_secs(120), async || {
        c.get("scraped").await?.status?.test_id
    })
    .await;
    eventually(
        "a scrape of a driver pod during the test",
        Duration::from_secs(120),
        async || {
            let v = prom
                .query(&format!(
                    "floodgate_driver_test_running{{test_id=\"{test_id}\"}}"
                ))
                .await;
            (!v.is_empty()).then_some(())
        },
    )
    .await;
    let lt = c
        .until_phase(
            "scraped",
            &[Phase::Succeeded, Phase::Failed],
            Duration::from_secs(180),
        )
        .await;
    assert_eq!(lt.status.as_ref().map(|s| s.phase), Some(Phase::Succeeded));
    let target = c.target_count().await;
    assert_eq!(target, 8_000);
    let q = format!("sum(floodgate_test_requests_sent_total{{test_id=\"{test_id}\"}})");
    let scraped = eventually(
        "Prometheus to scrape the final count",
        Duration::from_secs(60),
        async || {
            let v = prom.query(&q).await;
            let n = v
                .first()
                .and_then(|s| s["value"][1].as_str()?.parse::<f64>().ok())?;
            (n as u64 == target).then_some(n)
        },
    )
    .await;
    assert_eq!(
        scraped as u64, target,
        "the counter Prometheus scraped equals the target's count"
    );
    // Every query of the Grafana dashboard runs against this Prometheus without error.
    let errors = prom.check_dashboard_queries(&test_id).await;
    assert!(errors.is_empty(), "dashboard queries failed: {errors:#?}");
    c.delete_loadtest("scraped").await;
}

#[tokio::test]
#[ignore = "needs the real cluster: make test runs these with --ignored (scripts/k8s/cluster.sh)"]
async fn the_operator_pod_deleted_mid_test_is_replaced_and_the_new_one_finishes_exactly() {
    let c = installed().await;
    let _serial = c.serial().await;
    c.reset_target().await;
    // 2 drivers × 5,000 requests 5 ms apart: 25 s.
    c.apply(&tsunami("survive-operator", 2, 5_000, 5)).await;
    eventually(
        "the test to be running with reports",
        Duration::from_secs(120),
        async || {
            let s = c.get("survive-operator").await?.status?;
            (s.phase == Phase::Running && s.drivers.iter().any(|d| d.sent > 0)).then_some(())
        },
    )
    .await;
    let old = c.operator_pod().await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), NS);
    pods.delete(&old, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let lt = c
        .until_phase(
            "survive-operator",
            &[Phase::Succeeded, Phase::Failed],
            Duration::from_secs(240),
        )
        .await;
    let s = lt.status.expect("status");
    assert_eq!(s.phase, Phase::Succeeded, "{s:?}");
    assert_eq!(s.aggregate.map(|a| a.sent), Some(10_000));
    assert_eq!(c.target_count().await, 10_000, "exact totals, one run");
    let new = c.operator_pod().await;
    assert_ne!(new, old, "a new operator pod finished it");
    let list = pods
        .list(&ListParams::default().labels("app.kubernetes.io/component=operator"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    c.delete_loadtest("survive-operator").await;
}
