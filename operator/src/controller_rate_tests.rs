//! A LoadTest's live rate (issue 13) through whole reconciles: the orchestrator on the
//! in-memory bus, the API server mocked (tower-test).

use super::*;
use crate::crd::LoadTestStatus;
use floodgate::bus::{Bus, MemoryBus};
use floodgate::orchestrator::OrchestratorConfig;
use floodgate::protocol::Topics;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::Value;
use std::sync::Mutex;

pub(super) type Seen = Arc<Mutex<Vec<(Method, String, Value)>>>;

/// An API server that answers everything the controller sends about `lt`: its Deployment
/// (ready, 2 replicas), status patches (echoed back on the LoadTest), Events (echoed).
fn api_server(lt: LoadTest) -> (Client, Seen) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let (method, path) = (req.method().clone(), req.uri().path().to_string());
            let bytes = req.into_body().collect().await.expect("body").to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            log.lock()
                .expect("log")
                .push((method.clone(), path.clone(), body.clone()));
            let answer = if method == Method::GET {
                let mut d = driver_deployment(&lt, 2, &defaults());
                d.metadata.name = Some(deployment_name(&lt));
                serde_json::to_value(d).expect("json")
            } else if path.ends_with("/status") {
                let mut answer = serde_json::to_value(&lt).expect("json");
                answer["status"] = body["status"].clone();
                answer
            } else {
                body
            };
            let response = Response::builder()
                .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                .expect("response");
            send.send_response(response);
        }
    });
    (Client::new(service, "default"), seen)
}

fn defaults() -> DriverDefaults {
    DriverDefaults {
        image: "floodgate/node:1".into(),
        kafka: "k:9092".into(),
        orchestrator: "op:8090".into(),
        topic_prefix: String::new(),
        kafka_env: vec![],
        kafka_secret: None,
    }
}

/// A LoadTest given in totals: 100,000 requests at 300/s over 2 drivers (it outlasts the test).
fn in_totals() -> LoadTest {
    let mut lt = crate::crd::sample_loadtest();
    lt.spec.target_url = Some("http://127.0.0.1:1/".into());
    lt.spec.drivers = 2;
    lt.spec.requests_per_driver = None;
    lt.spec.total_requests = Some(100_000);
    lt.spec.total_rate = Some(300.0);
    lt
}

/// An orchestrator on the in-memory bus with two registered Floodgate drivers, capped at
/// 1,000 requests/s per driver.
async fn orchestrator(dir: &std::path::Path) -> (Orchestrator, MemoryBus, Topics) {
    let (orchestrator, bus, topics) = orchestrator_on(dir, Duration::from_secs(60)).await;
    for i in 0..2 {
        let id = format!("ping-drivers-{i}");
        let reg = json!({"node_id": id, "node_IP": "h:1", "message_type": "DRIVER_NODE_REGISTER", "agent": "floodgate", "heartbeat_ms": 1000});
        bus.publish(&topics.register, &id, reg.to_string().as_bytes())
            .await
            .expect("publish");
    }
    floodgate_testkit::eventually("two drivers", Duration::from_secs(10), async || {
        (orchestrator.drivers().len() == 2).then_some(())
    })
    .await;
    (orchestrator, bus, topics)
}

/// An orchestrator on the in-memory bus that judges a driver lost after `heartbeat_timeout` of
/// silence, capped at 1,000 requests/s per driver; no driver registered.
pub(super) async fn orchestrator_on(
    dir: &std::path::Path,
    heartbeat_timeout: Duration,
) -> (Orchestrator, MemoryBus, Topics) {
    let topics = Topics::with_prefix("");
    let bus = MemoryBus::new(topics.clone());
    let orchestrator = Orchestrator::start_on(
        OrchestratorConfig {
            config_gap: Duration::ZERO,
            start_delay: Duration::ZERO,
            heartbeat_timeout,
            caps: floodgate::protocol::limits::Caps {
                rate: 1_000.0,
                ..Default::default()
            },
            ..OrchestratorConfig::new(
                "op",
                "",
                "127.0.0.1:0",
                topics.clone(),
                dir.join("o.sqlite"),
            )
        },
        Arc::new(bus.handle()),
    )
    .await
    .expect("orchestrator");
    (orchestrator, bus, topics)
}

fn context(client: Client, orchestrator: Orchestrator) -> Context {
    Context {
        client,
        orchestrator,
        defaults: defaults(),
        counters: Default::default(),
        phases: Default::default(),
        not_taken_over: Default::default(),
    }
}

/// The status the last status patch wrote.
pub(super) fn last_status(seen: &Seen) -> LoadTestStatus {
    let seen = seen.lock().expect("log");
    let (_, _, body) = seen
        .iter()
        .rev()
        .find(|(m, p, _)| m == Method::PATCH && p.ends_with("/status"))
        .expect("a status write");
    serde_json::from_value(body["status"].clone()).expect("a status")
}

pub(super) fn events(seen: &Seen) -> Vec<Value> {
    let seen = seen.lock().expect("log");
    seen.iter()
        .filter(|(m, p, _)| m == Method::POST && p.contains("/events"))
        .map(|(_, _, b)| b.clone())
        .collect()
}

fn set_rates(bus: &MemoryBus, topics: &Topics) -> Vec<Value> {
    bus.messages(&topics.control)
        .iter()
        .filter_map(|m| serde_json::from_slice::<Value>(m).ok())
        .filter(|m| m.get("rates").is_some())
        .collect()
}

fn rate_condition(st: &LoadTestStatus) -> crate::crd::Condition {
    st.conditions
        .iter()
        .find(|c| c.type_ == crate::rate::RATE_CHANGED)
        .cloned()
        .expect("a RateChanged condition")
}

/// [`in_totals`], started by a reconcile (from phase Scaling) on `orchestrator`'s first two
/// drivers, once its test runs; with the status that reconcile wrote, and the API server's
/// log and the context to reconcile it again.
pub(super) async fn started_in_totals(orchestrator: &Orchestrator) -> (LoadTest, Seen, Context) {
    let mut lt = in_totals();
    lt.status = Some(LoadTestStatus {
        phase: Phase::Scaling,
        ..Default::default()
    });
    let (client, seen) = api_server(lt.clone());
    let ctx = context(client, orchestrator.clone());
    apply(&lt, &ctx).await.expect("started");
    floodgate_testkit::eventually("the test to run", Duration::from_secs(10), async || {
        let v = orchestrator.get(&test_id(&lt)).ok()?;
        (v.status == floodgate::model::TestStatus::Running).then_some(())
    })
    .await;
    lt.status = Some(last_status(&seen));
    (lt, seen, ctx)
}

/// A Running LoadTest whose totalRate changed: one set_rate on the control topic (each driver
/// half of the new total, one instant for both), the status records it with the history and
/// `RateChanged=True`, an Event says so; reconciling again asks for nothing. A value over the
/// deployment's cap is refused: `RateChanged=False` naming the field, a Warning Event, the
/// pace kept, and not asked for again.
#[tokio::test]
async fn a_running_loadtest_s_new_total_rate_is_applied_once_and_a_refusal_is_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (orchestrator, bus, topics) = orchestrator(dir.path()).await;
    let (mut lt, seen, ctx) = started_in_totals(&orchestrator).await;

    // The start recorded the pace it starts at.
    let st = last_status(&seen);
    assert_eq!(st.phase, Phase::Running);
    let rate = st.rate.clone().expect("status.rate");
    assert_eq!((rate.total_rate, rate.changes), (Some(300.0), 0));

    // totalRate 300 → 600.
    lt.spec.total_rate = Some(600.0);
    apply(&lt, &ctx).await.expect("reconciled");
    let published = set_rates(&bus, &topics);
    assert_eq!(published.len(), 1, "{published:?}");
    let rates = published[0]["rates"].as_object().expect("rates");
    assert_eq!(rates.len(), 2);
    assert!(
        rates.values().all(|r| r.as_f64() == Some(300.0)),
        "each driver half of 600: {rates:?}"
    );
    let st = last_status(&seen);
    let rate = st.rate.clone().expect("status.rate");
    assert_eq!(
        (rate.total_rate, rate.changes, rate.refused.clone()),
        (Some(600.0), 1, None)
    );
    assert_eq!(st.rate_changes.len(), 1);
    let change = &st.rate_changes[0];
    assert_eq!(
        (change.seq, change.total_rate, change.drivers),
        (1, 600.0, 2)
    );
    assert_eq!(Some(change.at_ms), published[0]["at_ms"].as_u64());
    let c = rate_condition(&st);
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Applied"));
    assert!(
        c.message
            .starts_with("spec.totalRate 600 applied (change 1)"),
        "{}",
        c.message
    );
    let evs = events(&seen);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(
        (
            &evs[0]["type"],
            &evs[0]["reason"],
            &evs[0]["regarding"]["name"]
        ),
        (&json!("Normal"), &json!("RateChanged"), &json!("ping"))
    );

    // Reconciling again (and again) on what was written asks for nothing.
    lt.status = Some(st.clone());
    for _ in 0..2 {
        apply(&lt, &ctx).await.expect("reconciled");
        lt.status = Some(last_status(&seen));
    }
    assert_eq!(set_rates(&bus, &topics).len(), 1, "asked once");
    assert_eq!(events(&seen).len(), 1);

    // 5,000/s over 2 drivers is 2,500 each, over this deployment's 1,000: refused.
    lt.spec.total_rate = Some(5_000.0);
    apply(&lt, &ctx)
        .await
        .expect("a refusal is no reconcile error");
    let st = last_status(&seen);
    assert_eq!(st.phase, Phase::Running, "the test runs on");
    let c = rate_condition(&st);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "InvalidRate")
    );
    assert!(
        c.message.starts_with("spec.totalRate 5000 was refused:") && c.message.contains("1000"),
        "{}",
        c.message
    );
    let rate = st.rate.clone().expect("status.rate");
    assert_eq!(rate.total_rate, Some(600.0), "the pace set stays");
    assert_eq!(
        rate.refused.and_then(|r| r.total_rate),
        Some(5_000.0),
        "remembered"
    );
    let evs = events(&seen);
    assert_eq!(evs.len(), 2);
    assert_eq!(
        (&evs[1]["type"], &evs[1]["reason"]),
        (&json!("Warning"), &json!("RateChangeRefused"))
    );
    lt.status = Some(st);
    apply(&lt, &ctx).await.expect("reconciled");
    assert_eq!(events(&seen).len(), 2, "not asked again");
    assert_eq!(set_rates(&bus, &topics).len(), 1);
    orchestrator.stop(&test_id(&lt)).await.expect("stopped");
}
