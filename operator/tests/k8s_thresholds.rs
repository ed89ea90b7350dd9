//! Thresholds through the LoadTest: the verdict and each measured value in the status and the
//! `ThresholdsPassed` condition, on a real kube-apiserver + etcd with a real Kafka and real
//! drivers (see `common`); and thresholds refused at `kubectl apply` or by the orchestrator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{loadtest, Env};
use floodgate_operator::crd::{LoadTest, Phase};
use serde_json::json;
use std::time::Duration;

fn condition(lt: &LoadTest) -> (String, String, String) {
    let st = lt.status.as_ref().expect("status");
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == "ThresholdsPassed")
        .unwrap_or_else(|| panic!("no ThresholdsPassed in {st:?}"));
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thresholds_verdict_is_a_condition_of_the_loadtest() {
    let e = Env::start().await;
    // Refused at apply: no comparison, and a delay without abortOnFail.
    let refusals = [
        (json!([{"threshold": "p99"}]), "threshold"),
        (
            json!([{"threshold": "p99 < 1s", "delay": "5s"}]),
            "delay only applies",
        ),
    ];
    for (thresholds, needle) in refusals {
        let m = loadtest("refused", &e.target, 2, json!({"thresholds": thresholds}));
        let err = e.apply(m).await.expect_err("refused").to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }

    // Passing and failing thresholds on one run; the run itself succeeds.
    let thresholds = json!([{"threshold": "p99 < 60s"}, {"threshold": "p50 < 1us"}, {"threshold": "errors == 0"}]);
    e.apply(loadtest(
        "judged",
        &e.target,
        2,
        json!({"thresholds": thresholds}),
    ))
    .await
    .expect("created");
    let _drivers = e.drivers_for("judged").await;
    let done = e
        .phase("judged", Phase::Succeeded, Duration::from_secs(90))
        .await;
    assert_eq!(e.target_count().await, 600);
    let (status, reason, message) = condition(&done);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ThresholdsFailed"),
        "{message}"
    );
    assert!(message.contains("p50 < 1us (measured"), "{message}");
    let th = done
        .status
        .as_ref()
        .and_then(|s| s.thresholds.clone())
        .expect("thresholds");
    assert_eq!(th.verdict, "failed");
    let states: Vec<&str> = th.results.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(states, ["passed", "failed", "passed"]);
    assert_eq!(th.results[2].measured, Some(0.0));
    let p99 = th.results[0].measured.expect("measured");
    let agg = done
        .status
        .as_ref()
        .and_then(|s| s.aggregate.clone())
        .expect("aggregate");
    assert_eq!(
        Some(p99),
        agg.p99_ms,
        "the value is the merged p99 the status shows"
    );

    // A threshold that does not parse fails the LoadTest at once, naming its place, before any
    // driver starts.
    let bad = json!([{"threshold": "p99 < 1s"}, {"threshold": "p999x < 1s"}]);
    e.apply(loadtest(
        "unparsable",
        &e.target,
        2,
        json!({"thresholds": bad}),
    ))
    .await
    .expect("the shape is fine");
    let failed = e
        .phase("unparsable", Phase::Failed, Duration::from_secs(30))
        .await;
    let msg = failed.status.and_then(|s| s.message).unwrap_or_default();
    assert!(
        msg.contains("spec.thresholds[1].threshold") && msg.contains("p999x"),
        "{msg}"
    );
    assert_eq!(e.target_count().await, 600, "it never ran");

    // All passing: True.
    e.apply(loadtest(
        "passed",
        &e.target,
        2,
        json!({"thresholds": [{"threshold": "p99 < 60s"}]}),
    ))
    .await
    .expect("created");
    let _drivers = e.drivers_for("passed").await;
    let done = e
        .phase("passed", Phase::Succeeded, Duration::from_secs(90))
        .await;
    let (status, reason, _) = condition(&done);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "ThresholdsPassed")
    );
}
