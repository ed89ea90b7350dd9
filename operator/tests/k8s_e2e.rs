//! The operator against a real kube-apiserver + etcd, a real Kafka, and real driver and target
//! processes (see `common`): validation by the API server, a LoadTest's whole run, a lost
//! driver, and an operator waiting for Kafka. Operator restarts are in `k8s_takeover.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{bin, env, loadtest, Env};
use floodgate_operator::crd::{LoadTestStatus, Phase};
use floodgate_testkit::{eventually, Proc};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_loadtests_are_refused_by_the_api_server() {
    let e = Env::start().await;
    let t = e.target.clone();
    let refusals = [
        (loadtest("too-many", &t, 9, json!({})), "drivers"),
        (loadtest("too-few", &t, 1, json!({})), "drivers"),
        (
            loadtest("no-delay", &t, 2, json!({"testType": "Tsunami"})),
            "Tsunami test needs delayMs",
        ),
        (
            loadtest("bad-url", &t, 2, json!({"targetUrl": "ftp://x/"})),
            "targetUrl",
        ),
        (
            loadtest("zero", &t, 2, json!({"requestsPerDriver": 0})),
            "requestsPerDriver",
        ),
        // Issue 12: a count and a time are exclusive; a stage's duration is above 0.
        (
            loadtest("count-and-time", &t, 2, json!({"durationMs": 1000})),
            "exactly one of requestsPerDriver",
        ),
        (
            loadtest(
                "zero-stage",
                &t,
                2,
                json!({"requestsPerDriver": null, "stages": [{"durationMs": 0, "rate": 10}]}),
            ),
            "durationMs",
        ),
        (
            loadtest(
                "stages-and-cap",
                &t,
                2,
                json!({"requestsPerDriver": null, "stages": [{"durationMs": 1000, "rate": 10}], "throughputPerDriver": 5}),
            ),
            "stages set the pace alone",
        ),
        // Issue 13: totals replace the per-driver figures, and a paced total takes a total rate.
        (
            loadtest("count-twice", &t, 2, json!({"totalRequests": 10})),
            "exactly one of requestsPerDriver or totalRequests",
        ),
        (
            loadtest(
                "rate-alone",
                &t,
                2,
                json!({"totalRate": 10, "throughputPerDriver": 5}),
            ),
            "totalRate goes with totalRequests",
        ),
        (
            loadtest(
                "paced-total",
                &t,
                2,
                json!({"requestsPerDriver": null, "totalRequests": 10, "throughputPerDriver": 5}),
            ),
            "takes its pace as totalRate",
        ),
        (
            loadtest("split-alone", &t, 2, json!({"split": "Equal"})),
            "split applies to a test given in totalRequests",
        ),
    ];
    // Issue 12: a request mix, in place of targetUrl.
    let mix = |name: &str, entries: Value, extra: Value| {
        let mut m = loadtest(name, &t, 2, extra);
        if let Some(spec) = m["spec"].as_object_mut() {
            spec.remove("targetUrl");
            spec.insert("mix".into(), entries);
        }
        m
    };
    let url = format!("http://{t}/ping");
    let one = |extra: Value| {
        let mut e = json!({"name": "a", "url": url});
        if let (Some(o), Some(x)) = (e.as_object_mut(), extra.as_object()) {
            o.extend(x.clone());
        }
        e
    };
    let mut both = mix("mix-and-url", json!([one(json!({}))]), json!({}));
    both["spec"]["targetUrl"] = json!(url);
    let mix_refusals = [
        (
            mix("weight-zero", json!([one(json!({"weight": 0}))]), json!({})),
            "weight",
        ),
        (both, "exactly one of targetUrl"),
        (
            mix(
                "mix-and-method",
                json!([one(json!({}))]),
                json!({"method": "POST"}),
            ),
            "leave the top-level ones out",
        ),
        (
            mix(
                "same-names",
                json!([one(json!({})), one(json!({}))]),
                json!({}),
            ),
            "must be unique",
        ),
        (
            mix(
                "body-twice",
                json!([one(
                    json!({"body": "x", "bodyFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}})
                )]),
                json!({}),
            ),
            "body or bodyFrom, not both",
        ),
        (
            mix(
                "bad-status",
                json!([one(json!({}))]),
                json!({"checks": {"status": ["7xx"]}}),
            ),
            "status",
        ),
        (
            mix(
                "tls-on-http",
                json!([one(json!({}))]),
                json!({"tls": {"insecureSkipVerify": true}}),
            ),
            "tls applies to https:// targets only",
        ),
    ];
    let refusals = refusals.into_iter().chain(mix_refusals);
    for (manifest, needle) in refusals {
        let err = e
            .apply(manifest.clone())
            .await
            .expect_err(&manifest.to_string());
        let msg = err.to_string();
        assert!(
            msg.contains(needle),
            "refusal of {} should mention {needle}: {msg}",
            manifest["metadata"]["name"]
        );
    }
    // A valid one is accepted, and its spec cannot be changed afterwards.
    e.apply(loadtest("fine", &t, 2, json!({})))
        .await
        .expect("valid");
    e.apply(mix(
        "fine-mix",
        json!([one(json!({"weight": 3, "checks": {"status": [200, "2xx", "200-299"]}})),
               {"name": "b", "url": url, "method": "POST", "body": "x",
                "checks": {"json": [{"pointer": "/a", "equals": "1"}]}}]),
        json!({"checks": {"bodyContains": "ok"}, "thresholds": [{"threshold": "a: p99 < 1s"}]}),
    ))
    .await
    .expect("a valid mix");
    // Issue 13: a total rate over a duration, each driver's share of the rate by capacity.
    e.apply(loadtest(
        "fine-rate-over-time",
        &t,
        2,
        json!({"requestsPerDriver": null, "durationMs": 2000, "totalRate": 100, "split": "Capacity"}),
    ))
    .await
    .expect("a total rate over a duration");
    let patch = Patch::Merge(json!({"spec": {"requestsPerDriver": 5}}));
    let err = e
        .loadtests()
        .patch("fine", &PatchParams::default(), &patch)
        .await
        .expect_err("immutable");
    assert!(err.to_string().contains("cannot change"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loadtest_scales_its_drivers_runs_and_succeeds_with_exact_totals() {
    let e = Env::start().await;
    e.apply(loadtest("ok", &e.target, 2, json!({})))
        .await
        .expect("created");
    let scaling = e.phase("ok", Phase::Scaling, Duration::from_secs(30)).await;
    assert_eq!(scaling.status.as_ref().map(|s| s.drivers_wanted), Some(2));
    let _drivers = e.drivers_for("ok").await;
    let done = e
        .phase("ok", Phase::Succeeded, Duration::from_secs(90))
        .await;
    let st = done.status.expect("status");
    let agg = st.aggregate.expect("aggregate");
    assert_eq!(
        (agg.sent, agg.ok, agg.errors),
        (600, 600, 0),
        "exact totals in the status"
    );
    assert_eq!(e.target_count().await, 600, "the target agrees");
    assert_eq!(st.drivers.len(), 2);
    assert!(st
        .drivers
        .iter()
        .all(|d| d.state == "done" && d.sent == 300));
    // Unpaced: no schedule, so no lag to show.
    assert!(
        st.drivers
            .iter()
            .all(|d| (d.lag_p50_ms, d.lag_p99_ms, d.lag_max_ms) == (None, None, None)),
        "{:?}",
        st.drivers
    );
    assert!(st.completion_time.is_some());
    // How far apart the two started (issue 13): the skew is the later one's offset.
    let skew = st.start_skew.expect("a start skew");
    assert_eq!(skew.drivers, 2);
    let mut offsets: Vec<f64> = st
        .drivers
        .iter()
        .map(|d| d.start_offset_ms.expect("each driver's start"))
        .collect();
    offsets.sort_by(f64::total_cmp);
    assert_eq!(offsets[0], 0.0, "{offsets:?}");
    assert!(
        (offsets[1] - skew.skew_ms).abs() < 1e-9,
        "{offsets:?} {skew:?}"
    );
    assert_eq!(
        st.test_id, done.metadata.uid,
        "the test ID is the LoadTest's UID"
    );
    // Done: the drivers are scaled down.
    let deployments: Api<Deployment> = Api::namespaced(e.client.clone(), &e.ns);
    eventually(
        "the drivers to be scaled to 0",
        Duration::from_secs(30),
        async || {
            (deployments.get("ok-drivers").await.ok()?.spec?.replicas == Some(0)).then_some(())
        },
    )
    .await;
    // The operator's Prometheus metrics: reconciles, errors by kind, LoadTests by phase.
    let metrics = reqwest::get(format!("http://{}/metrics", e.api))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("floodgate_loadtests{phase=\"Succeeded\"} 1"),
        "{metrics}"
    );
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
    };
    // Pending, Scaling, Running and Succeeded are four reconciles at the least.
    assert!(
        value("floodgate_operator_reconciles_total ") >= 4.0,
        "{metrics}"
    );
    for kind in ["kubernetes", "orchestrator", "finalizer"] {
        assert_eq!(
            value(&format!(
                "floodgate_operator_reconcile_errors_total{{kind=\"{kind}\"}} "
            )),
            0.0,
            "a clean run has no {kind} errors"
        );
    }
    // Deleting the LoadTest removes its drivers and the LoadTest (the finalizer lets go).
    e.loadtests()
        .delete("ok", &DeleteParams::default())
        .await
        .expect("deleted");
    eventually(
        "the LoadTest and its Deployment to be gone",
        Duration::from_secs(30),
        async || {
            let lt_gone = e.loadtests().get_opt("ok").await.ok()?.is_none();
            let dep_gone = deployments.get_opt("ok-drivers").await.ok()?.is_none();
            (lt_gone && dep_gone).then_some(())
        },
    )
    .await;
}

/// Applies a LoadTest of 2 drivers (`extra` over the defaults), runs its drivers, and returns
/// them once both have reported `sent` requests sent.
async fn running_with_progress(e: &Env, name: &str, extra: Value, sent: u64) -> Vec<Proc> {
    e.apply(loadtest(name, &e.target, 2, extra))
        .await
        .expect("created");
    e.phase(name, Phase::Scaling, Duration::from_secs(30)).await;
    let drivers = e.drivers_for(name).await;
    eventually(
        "both drivers to make progress",
        Duration::from_secs(60),
        async || {
            let st = e.loadtests().get(name).await.ok()?.status?;
            (st.phase == Phase::Running
                && st.drivers.len() == 2
                && st.drivers.iter().all(|d| d.sent >= sent))
            .then_some(())
        },
    )
    .await;
    drivers
}

/// An Event of `reason` regards the LoadTest `name`.
async fn assert_event(e: &Env, reason: &str, name: &str) {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(e.client.clone(), &e.ns);
    let listed = events.list(&Default::default()).await.expect("events");
    assert!(
        listed
            .items
            .iter()
            .any(|ev| ev.reason.as_deref() == Some(reason)
                && ev.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)),
        "no {reason} Event for {name}: {:?}",
        listed.items
    );
}

/// Applies a LoadTest of 2 drivers (`extra` over the defaults), runs its drivers, and returns
/// its status once it has succeeded.
async fn run_to_success(e: &Env, name: &str, extra: Value) -> LoadTestStatus {
    e.apply(loadtest(name, &e.target, 2, extra))
        .await
        .expect("created");
    e.phase(name, Phase::Scaling, Duration::from_secs(30)).await;
    let _drivers = e.drivers_for(name).await;
    let done = e
        .phase(name, Phase::Succeeded, Duration::from_secs(90))
        .await;
    done.status.expect("status")
}

/// Issue 13: a LoadTest given in totals. 601 requests over 2 drivers of the same capacity are
/// 301 and 300, each in the status, exactly at the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loadtest_in_totals_shares_them_exactly_among_its_drivers() {
    let e = Env::start().await;
    let extra = json!({"requestsPerDriver": null, "totalRequests": 601, "totalRate": 1200});
    let st = run_to_success(&e, "total", extra).await;
    let mut shares: Vec<(Option<u64>, u64)> =
        st.drivers.iter().map(|d| (d.requests, d.sent)).collect();
    shares.sort();
    assert_eq!(
        shares,
        [(Some(300), 300), (Some(301), 301)],
        "{:?}",
        st.drivers
    );
    // Paced at 1,200 req/s: each driver's schedule lag percentiles, in order (issue 13).
    for d in &st.drivers {
        let lag = (d.lag_p50_ms, d.lag_p99_ms, d.lag_max_ms);
        assert!(
            matches!(lag, (Some(p50), Some(p99), Some(max)) if 0.0 <= p50 && p50 <= p99 && p99 <= max),
            "{d:?}"
        );
    }
    assert!(st
        .aggregate
        .as_ref()
        .is_some_and(|a| a.lag_p99_ms.is_some()));
    assert_eq!(st.aggregate.map(|a| a.sent), Some(601));
    assert_eq!(e.target_count().await, 601, "the target agrees");
}

/// Issue 13: a LoadTest given a total rate over a duration. 300 req/s for 2 s over 2 drivers
/// of the same capacity: each sends what its 150 req/s have due in 2 s, the count the status
/// gives its share, and the target counts exactly their sum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loadtest_given_a_total_rate_over_a_duration_sends_each_shares_count() {
    let e = Env::start().await;
    let extra = json!({"requestsPerDriver": null, "durationMs": 2000, "totalRate": 300});
    let st = run_to_success(&e, "rate-time", extra).await;
    let shares: Vec<(Option<u64>, u64)> = st.drivers.iter().map(|d| (d.requests, d.sent)).collect();
    assert_eq!(shares.len(), 2, "{:?}", st.drivers);
    for (requests, sent) in &shares {
        // 150 req/s for 2 s: 300 due at the instants 0 to 2 s, and the one at 2 s itself.
        assert!(matches!(requests, Some(300 | 301)), "{:?}", st.drivers);
        assert_eq!(
            Some(*sent),
            *requests,
            "each driver sent its share: {:?}",
            st.drivers
        );
    }
    let total: u64 = shares.iter().map(|(_, sent)| sent).sum();
    assert_eq!(st.aggregate.map(|a| a.sent), Some(total));
    assert_eq!(e.target_count().await, total, "the target agrees");
}

/// Issue 13: a LoadTest's pace changes live. 3000 requests at 300 req/s over 2 drivers; once
/// it runs, `spec.totalRate` goes to 600: both drivers switch at one instant, the status
/// records the change, and the test still sends exactly its total. Every other field stays
/// immutable, and a pace field cannot be added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_loadtest_s_total_rate_changes_live_and_it_still_sends_its_exact_total() {
    let e = Env::start().await;
    e.apply(loadtest(
        "live",
        &e.target,
        2,
        json!({"requestsPerDriver": null, "totalRequests": 3000, "totalRate": 300}),
    ))
    .await
    .expect("created");
    e.phase("live", Phase::Scaling, Duration::from_secs(30))
        .await;
    let _drivers = e.drivers_for("live").await;
    eventually(
        "the test to run and send",
        Duration::from_secs(60),
        async || {
            let st = e.loadtests().get("live").await.ok()?.status?;
            (st.phase == Phase::Running && st.aggregate?.sent > 0).then_some(())
        },
    )
    .await;
    let started = e.loadtests().get("live").await.unwrap().status.unwrap();
    assert_eq!(
        started.rate.as_ref().and_then(|r| r.total_rate),
        Some(300.0),
        "{:?}",
        started.rate
    );
    let patch = |spec: Value| Patch::Merge(json!({ "spec": spec }));
    e.loadtests()
        .patch(
            "live",
            &PatchParams::default(),
            &patch(json!({"totalRate": 600})),
        )
        .await
        .expect("the pace may change");
    // Every other field is immutable, and a pace field cannot be added.
    let refusals = [
        (
            json!({"targetUrl": format!("http://{}/other", e.target)}),
            "spec.targetUrl cannot change",
        ),
        (json!({"drivers": 3}), "spec.drivers cannot change"),
        (
            json!({"throughputPerDriver": 100}),
            "spec.throughputPerDriver can change but not be added or removed",
        ),
        (
            json!({"totalRate": null}),
            "spec.totalRate can change but not be added or removed",
        ),
    ];
    for (spec, needle) in refusals {
        let err = e
            .loadtests()
            .patch("live", &PatchParams::default(), &patch(spec.clone()))
            .await
            .expect_err(&spec.to_string());
        assert!(err.to_string().contains(needle), "{spec}: {err}");
    }
    let done = e
        .phase("live", Phase::Succeeded, Duration::from_secs(90))
        .await;
    let st = done.status.expect("status");
    let rate = st.rate.clone().expect("status.rate");
    assert_eq!(
        (rate.total_rate, rate.changes),
        (Some(600.0), 1),
        "{rate:?}"
    );
    assert_eq!(rate.refused, None);
    assert_eq!(st.rate_changes.len(), 1, "{:?}", st.rate_changes);
    let change = &st.rate_changes[0];
    assert_eq!(
        (
            change.seq,
            change.total_rate,
            change.drivers,
            change.switched
        ),
        (1, 600.0, 2, 2),
        "both drivers switched: {change:?}"
    );
    let skew = change.switch_skew_ms.expect("a switch skew");
    assert!((0.0..100.0).contains(&skew), "{change:?}");
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == "RateChanged")
        .expect("a RateChanged condition");
    assert_eq!(c.status, "True", "{c:?}");
    assert!(c.message.starts_with("spec.totalRate 600 applied"), "{c:?}");
    let agg = st.aggregate.expect("aggregate");
    assert_eq!((agg.sent, agg.ok, agg.errors), (3000, 3000, 0));
    assert_eq!(
        e.target_count().await,
        3000,
        "the target counts the total exactly"
    );
    let mut shares: Vec<u64> = st.drivers.iter().map(|d| d.sent).collect();
    shares.sort();
    assert_eq!(shares, [1500, 1500]);
    // At 300/s throughout it would have taken 10 s: it sped up.
    assert!(agg.achieved_rps > 330.0, "{agg:?}");
    // The change is an Event on the LoadTest too.
    assert_event(&e, "RateChanged", "live").await;
    // A change once it has ended is not applied, and the condition says so.
    e.loadtests()
        .patch(
            "live",
            &PatchParams::default(),
            &patch(json!({"totalRate": 900})),
        )
        .await
        .expect("the pace may change");
    eventually(
        "the change after the end to be shown as ignored",
        Duration::from_secs(30),
        async || {
            let st = e.loadtests().get("live").await.ok()?.status?;
            let c = st
                .conditions
                .into_iter()
                .find(|c| c.type_ == "RateChanged")?;
            (c.status == "False" && c.reason == "TestEnded").then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_driver_mid_test_fails_the_loadtest_with_partial_results() {
    let e = Env::start().await;
    let long = json!({"testType": "Tsunami", "delayMs": 5, "requestsPerDriver": 2000});
    let mut drivers = running_with_progress(&e, "lossy", long, 1).await;
    drivers[1].kill();
    let failed = e
        .phase("lossy", Phase::Failed, Duration::from_secs(90))
        .await;
    let st = failed.status.expect("status");
    assert!(
        st.message.as_deref().unwrap_or("").contains("lost driver"),
        "{:?}",
        st.message
    );
    let sent = st.aggregate.expect("partial results").sent;
    assert!(
        sent > 2000 && sent < 4000,
        "the partial results are kept: {sent}"
    );
}

/// Issue 13, item 2, on a real API server: a LoadTest given in totals loses a driver mid-test
/// and a replacement pod of its Deployment joins (a new pod name, as after a deleted pod). The
/// replacement takes the lost driver's unsent share, `status.handOvers` records who sent what,
/// the LoadTest succeeds with its drivers' counts adding up to exactly the total, and the
/// target counts the total plus at most the stated unknown. The hand-over is an Event too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loadtest_in_totals_that_loses_a_driver_hands_its_share_to_a_replacement() {
    let e = Env::start().await;
    let total = 3000;
    let spec = json!({"requestsPerDriver": null, "totalRequests": total, "totalRate": 600});
    let mut drivers = running_with_progress(&e, "handover", spec, 300).await;
    drivers[1].kill();
    let replacement = e.driver("handover-drivers-pod2").await;
    let done = e
        .phase("handover", Phase::Succeeded, Duration::from_secs(120))
        .await;
    drop(replacement);
    let st = done.status.expect("status");
    assert_eq!(st.hand_overs.len(), 1, "{:?}", st.hand_overs);
    let h = &st.hand_overs[0];
    assert_eq!(h.from, "handover-drivers-pod1", "{h:?}");
    assert_eq!(
        h.replacement.as_deref(),
        Some("handover-drivers-pod2"),
        "{h:?}"
    );
    assert_eq!(h.share, total / 2, "{h:?}");
    assert_eq!(h.unsent, h.share - h.reported_sent, "{h:?}");
    assert!(h.reported_sent >= 300 && h.unsent > 0, "{h:?}");
    assert_eq!(h.receivers.len(), 1, "{h:?}");
    let r = &h.receivers[0];
    assert_eq!(
        (r.id.as_str(), r.requests, r.taken),
        ("handover-drivers-pod2", h.unsent, true),
        "{h:?}"
    );
    // Who sent what: the survivor its share, the lost one what it reported, the replacement
    // the rest; exactly the total between them.
    let sent = |id: &str| {
        st.drivers
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.sent)
            .unwrap_or_else(|| panic!("no {id} in {:?}", st.drivers))
    };
    assert_eq!(sent("handover-drivers-pod0"), total / 2, "{:?}", st.drivers);
    assert_eq!(
        sent("handover-drivers-pod1"),
        h.reported_sent,
        "{:?}",
        st.drivers
    );
    assert_eq!(sent("handover-drivers-pod2"), h.unsent, "{:?}", st.drivers);
    assert_eq!(st.aggregate.map(|a| a.sent), Some(total));
    let counted = e.target_count().await;
    eprintln!("{h:?}; the target counted {counted}");
    assert!(
        (total..=total + h.unknown_max).contains(&counted),
        "the target counted {counted}, outside {total} + [0, {}]",
        h.unknown_max
    );
    assert_event(&e, "DriverHandedOver", "handover").await;
}

/// Issue 13, items 2 and 4, through a LoadTest: a driver frozen past its `failSafeMs` (SIGSTOP,
/// as a stalled node, or one cut off) is judged lost, and its unsent share goes to the other at
/// its pace. Resumed, it sends nothing more (its lease has lapsed) and reports again, which
/// turns the hand-over's unknown into what it really sent after its last report: the target
/// counts exactly the total plus that, and the LoadTest still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loadtest_driver_frozen_past_its_fail_safe_is_handed_over_and_its_unknown_settled() {
    let e = Env::start().await;
    let total = 6000;
    let spec = json!({"requestsPerDriver": null, "totalRequests": total, "totalRate": 600,
        "failSafeMs": 2000});
    let mut drivers = running_with_progress(&e, "frozen", spec, 300).await;
    // Past the loss timeout and the fail-safe, and back well before the other ends (10 s).
    drivers[1].pause_for(Duration::from_secs(5)).await;
    e.phase("frozen", Phase::Succeeded, Duration::from_secs(120))
        .await;
    let (h, st) = eventually(
        "the frozen driver's later report to settle the unknown",
        Duration::from_secs(30),
        async || {
            let st = e.loadtests().get("frozen").await.ok()?.status?;
            let h = st.hand_overs.first()?.clone();
            h.sent_after.is_some().then_some((h, st))
        },
    )
    .await;
    eprintln!("{h:?}");
    assert_eq!(st.hand_overs.len(), 1, "{:?}", st.hand_overs);
    assert_eq!(
        (h.from.as_str(), h.replacement.as_deref()),
        ("frozen-drivers-pod1", None),
        "{h:?}"
    );
    assert_eq!(
        (h.share, h.unsent),
        (total / 2, total / 2 - h.reported_sent),
        "{h:?}"
    );
    // The other goes on at its own 300 req/s plus the lost one's: the total rate holds.
    let r = &h.receivers[..];
    assert!(
        matches!(r, [x] if x.id == "frozen-drivers-pod0" && x.requests == h.unsent && x.taken
            && x.rate.is_some_and(|v| (v - 600.0).abs() < 0.01)),
        "{h:?}"
    );
    // What it sent between its last report and the freeze; nothing after.
    let after = h.sent_after.unwrap_or_default();
    assert_eq!(h.unknown, 0, "{h:?}");
    assert!(after <= h.unknown_max, "{h:?}");
    // At most a second of its 300 req/s (a report interval and the moments to the signal):
    // had it gone on after the resume it would have sent up to its 2,700 more.
    assert!(after <= 300, "it sent {after} after its last report: {h:?}");
    let counted = e.target_count().await;
    eprintln!("sent after its last report {after}; the target counted {counted}");
    assert_eq!(counted, total + after, "{h:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_is_live_while_it_waits_for_kafka() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: the operator waits for Kafka, and must say so, not hang.
    let mut op = Proc::start(
        "operator",
        Command::new(bin("floodgate-operator"))
            .args(["--kafka", "127.0.0.1:1", "--listen", "127.0.0.1:0"])
            .arg("--store")
            .arg(dir.path().join("op.sqlite"))
            .env("KUBECONFIG", env("FLOODGATE_TEST_KUBECONFIG")),
    );
    let addr = op
        .wait_line("operator listening on", Duration::from_secs(60))
        .await
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    let health: Value = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "starting");
    let r = reqwest::get(format!("http://{addr}/api/v1/tests"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
}
