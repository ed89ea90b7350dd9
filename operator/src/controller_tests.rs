//! The controller's API calls against a mocked Kubernetes API (tower-test): the right verb,
//! path, content type and body, without a cluster.

use super::*;
use crate::crd::LoadTestStatus;
use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;

fn lt() -> LoadTest {
    crate::crd::sample_loadtest()
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

/// A client whose API server is `handle`; returns what one request looked like.
fn mock() -> (
    Client,
    tower_test::mock::Handle<Request<Body>, Response<Body>>,
) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

async fn body_json(req: Request<Body>) -> serde_json::Value {
    let bytes = req.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&bytes).expect("json body")
}

#[tokio::test]
async fn scaling_is_a_server_side_apply_of_the_owned_deployment() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let (req, send) = handle.next_request().await.expect("a request");
        assert_eq!(req.method(), http::Method::PATCH);
        assert_eq!(
            req.uri().path(),
            "/apis/apps/v1/namespaces/load/deployments/ping-drivers"
        );
        let query = req.uri().query().unwrap_or("");
        assert!(
            query.contains("fieldManager=floodgate-operator") && query.contains("force=true"),
            "{query}"
        );
        assert_eq!(
            req.headers()["content-type"],
            "application/apply-patch+yaml"
        );
        let body = body_json(req).await;
        assert_eq!(body["spec"]["replicas"], 3);
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&body).expect("json")))
                .expect("response"),
        );
    });
    let api: Api<Deployment> = Api::namespaced(client, "load");
    let d = apply_deployment(&api, &lt(), 3, &defaults())
        .await
        .expect("applied");
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(3));
    server.await.expect("server side ran");
}

#[tokio::test]
async fn the_status_goes_through_the_status_subresource() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let (req, send) = handle.next_request().await.expect("a request");
        assert_eq!(req.method(), http::Method::PATCH);
        assert_eq!(
            req.uri().path(),
            "/apis/floodgate.dev/v1alpha1/namespaces/load/loadtests/ping/status"
        );
        assert_eq!(
            req.headers()["content-type"],
            "application/merge-patch+json"
        );
        let body = body_json(req).await;
        assert_eq!(body["status"]["phase"], "Scaling");
        assert_eq!(body["status"]["driversWanted"], 3);
        let mut answer = serde_json::to_value(lt()).expect("json");
        answer["status"] = body["status"].clone();
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                .expect("response"),
        );
    });
    let api: Api<LoadTest> = Api::namespaced(client, "load");
    let status = LoadTestStatus {
        phase: Phase::Scaling,
        drivers_wanted: 3,
        ..Default::default()
    };
    let written = write_status(&api, "ping", &status).await.expect("written");
    assert_eq!(written.status.map(|s| s.phase), Some(Phase::Scaling));
    server.await.expect("server side ran");
}

#[tokio::test]
async fn an_api_error_surfaces_as_an_error_not_a_panic() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let (_req, send) = handle.next_request().await.expect("a request");
        let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "forbidden", "reason": "Forbidden", "code": 403});
        send.send_response(
            Response::builder()
                .status(403)
                .body(Body::from(serde_json::to_vec(&status).expect("json")))
                .expect("response"),
        );
    });
    let api: Api<Deployment> = Api::namespaced(client, "load");
    let e = apply_deployment(&api, &lt(), 3, &defaults())
        .await
        .expect_err("forbidden");
    let e = Error::from(e);
    assert_eq!(e.kind(), "kubernetes");
    server.await.expect("server side ran");
}

#[test]
fn the_test_id_is_the_loadtest_uid() {
    assert_eq!(test_id(&lt()), "uid-1");
}

/// A whole reconcile of a new LoadTest, with the orchestrator on the in-memory bus and a mocked
/// API server: no broker, no cluster. It looks for the Deployment, scales it, writes the status.
#[tokio::test]
async fn a_reconcile_scales_the_drivers_and_writes_the_status_without_a_broker() {
    use floodgate::bus::MemoryBus;
    use floodgate::orchestrator::OrchestratorConfig;
    use floodgate::protocol::Topics;
    let dir = tempfile::tempdir().expect("tempdir");
    let topics = Topics::with_prefix("");
    let orchestrator = Orchestrator::start_on(
        OrchestratorConfig::new(
            "op",
            "",
            "127.0.0.1:0",
            topics.clone(),
            dir.path().join("o.sqlite"),
        ),
        std::sync::Arc::new(MemoryBus::new(topics)),
    )
    .await
    .expect("orchestrator");
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((req, send)) = handle.next_request().await {
            let (method, path) = (req.method().clone(), req.uri().path().to_string());
            let is_status = path.ends_with("/status");
            let body = if method == http::Method::GET {
                Vec::new()
            } else {
                serde_json::to_vec(&body_json(req).await).expect("json")
            };
            seen.push((method.clone(), path, body.clone()));
            let response = if method == http::Method::GET {
                // No Deployment yet.
                let missing = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404});
                Response::builder()
                    .status(404)
                    .body(Body::from(serde_json::to_vec(&missing).expect("json")))
            } else if is_status {
                let mut answer = serde_json::to_value(lt()).expect("json");
                let patch: serde_json::Value = serde_json::from_slice(&body).expect("json");
                answer["status"] = patch["status"].clone();
                Response::builder().body(Body::from(serde_json::to_vec(&answer).expect("json")))
            } else {
                Response::builder().body(Body::from(body))
            };
            send.send_response(response.expect("response"));
            if is_status {
                return seen;
            }
        }
        seen
    });
    let ctx = Context {
        client,
        orchestrator,
        defaults: defaults(),
        counters: Default::default(),
        phases: Default::default(),
        not_taken_over: Default::default(),
    };
    let action = apply(&lt(), &ctx).await.expect("reconciled");
    let seen = server.await.expect("server side ran");
    let calls: Vec<(String, &str)> = seen
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            (
                "GET".to_string(),
                "/apis/apps/v1/namespaces/load/deployments/ping-drivers"
            ),
            (
                "PATCH".to_string(),
                "/apis/apps/v1/namespaces/load/deployments/ping-drivers"
            ),
            (
                "PATCH".to_string(),
                "/apis/floodgate.dev/v1alpha1/namespaces/load/loadtests/ping/status"
            ),
        ]
    );
    let deployment: serde_json::Value = serde_json::from_slice(&seen[1].2).expect("json");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let status: serde_json::Value = serde_json::from_slice(&seen[2].2).expect("json");
    assert_eq!(status["status"]["phase"], "Scaling");
    assert_ne!(
        action,
        Action::await_change(),
        "it comes back to see the drivers register"
    );
}

/// Issue 10, items 5 and 7: a LoadTest is held to the REST API's rules, so a rate that would
/// panic a driver or a header that would reframe its requests fails the LoadTest with the field.
#[test]
fn a_loadtest_is_validated_by_the_same_rules_as_the_api() {
    let ids = ["d-0".to_string(), "d-1".to_string()];
    let mut smuggling = lt();
    smuggling
        .spec
        .headers
        .insert("Content-Length".into(), "0".into());
    let mut tiny_rate = lt();
    tiny_rate.spec.throughput_per_driver = Some(1e-300);
    for (bad, field) in [(smuggling, "headers"), (tiny_rate, "throughput_per_driver")] {
        let e = test_input(&bad, &ids, Vec::new(), &Default::default())
            .expect("converts")
            .validate()
            .expect_err(field);
        assert_eq!(e.field, field, "{e}");
    }
    assert!(test_input(&lt(), &ids, Vec::new(), &Default::default())
        .expect("converts")
        .validate()
        .is_ok());
}

/// Issue 12: the transport fields reach the test, and are held to the API's rules.
#[test]
fn a_loadtest_s_http_version_streams_and_tls_reach_the_test() {
    use crate::crd::{HttpVersion, LoadTestTls};
    let ids = ["d-0".to_string(), "d-1".to_string()];
    let mut h2 = lt();
    h2.spec.target_url = Some("https://t/".into());
    h2.spec.http_version = Some(HttpVersion::Http2);
    h2.spec.streams_per_connection = Some(8);
    h2.spec.tls = Some(LoadTestTls {
        insecure_skip_verify: Some(true),
        server_name: Some("t.example".into()),
        ..Default::default()
    });
    let spec = test_input(&h2, &ids, Vec::new(), &Default::default())
        .expect("converts")
        .validate()
        .expect("valid");
    let c = spec.to_config("t", &ids, "o");
    assert_eq!(
        c.transport.http_version,
        floodgate::protocol::HttpVersion::Http2
    );
    assert_eq!(c.transport.streams(), 8);
    let tls = c.transport.tls.expect("tls");
    assert!(tls.insecure_skip_verify);
    assert_eq!(tls.server_name.as_deref(), Some("t.example"));
    let mut bad = h2.clone();
    bad.spec.tls = Some(LoadTestTls {
        ca_pem: Some("not a certificate".into()),
        ..Default::default()
    });
    let e = test_input(&bad, &ids, Vec::new(), &Default::default())
        .expect("converts")
        .validate()
        .expect_err("bad pem");
    assert_eq!(e.field, "tls.ca_pem", "{e}");
}

/// Issue 11: the reconcile that starts a test writes the status with the test's record (who,
/// since when, where its reports begin on `metrics`) before the trigger is on the bus, and
/// keeps it in the status it writes after.
#[tokio::test]
async fn starting_a_test_records_it_in_the_status_before_the_trigger() {
    use floodgate::bus::{Bus, MemoryBus};
    use floodgate::orchestrator::OrchestratorConfig;
    use floodgate::protocol::Topics;
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("tempdir");
    let topics = Topics::with_prefix("p.");
    let bus = MemoryBus::new(topics.clone());
    let orchestrator = Orchestrator::start_on(
        OrchestratorConfig {
            config_gap: Duration::ZERO,
            start_delay: Duration::ZERO,
            ..OrchestratorConfig::new(
                "op",
                "",
                "127.0.0.1:0",
                topics.clone(),
                dir.path().join("o.sqlite"),
            )
        },
        std::sync::Arc::new(bus.handle()),
    )
    .await
    .expect("orchestrator");
    bus.publish(&topics.metrics, "k", b"{}")
        .await
        .expect("publish");
    for i in 0..3 {
        let id = format!("ping-drivers-{i}");
        let reg = serde_json::json!({"node_id": id, "node_IP": "h:1", "message_type": "DRIVER_NODE_REGISTER", "agent": "floodgate", "heartbeat_ms": 1000});
        bus.publish(&topics.register, &id, reg.to_string().as_bytes())
            .await
            .expect("publish");
    }
    floodgate_testkit::eventually("three drivers", Duration::from_secs(10), async || {
        (orchestrator.drivers().len() == 3).then_some(())
    })
    .await;
    let mut scaling = lt();
    scaling.spec.target_url = Some("http://127.0.0.1:1/".into());
    scaling.status = Some(LoadTestStatus {
        phase: Phase::Scaling,
        ..Default::default()
    });
    let (client, mut handle) = mock();
    let (watch, trigger) = (bus.clone(), topics.trigger.clone());
    let answer_lt = scaling.clone();
    let server = tokio::spawn(async move {
        // (status patch, triggers on the bus when it arrived)
        let mut writes = Vec::new();
        while let Some((req, send)) = handle.next_request().await {
            let path = req.uri().path().to_string();
            let response = if req.method() == http::Method::GET {
                let mut d = driver_deployment(&answer_lt, 3, &defaults());
                d.metadata.name = Some("ping-drivers".into());
                Response::builder().body(Body::from(serde_json::to_vec(&d).expect("json")))
            } else {
                assert!(path.ends_with("/loadtests/ping/status"), "{path}");
                let triggers = watch.messages(&trigger).len();
                let patch = body_json(req).await;
                let mut answer = serde_json::to_value(&answer_lt).expect("json");
                answer["status"] = patch["status"].clone();
                writes.push((patch, triggers));
                Response::builder().body(Body::from(serde_json::to_vec(&answer).expect("json")))
            };
            send.send_response(response.expect("response"));
            if writes.len() == 2 {
                break;
            }
        }
        writes
    });
    let ctx = Context {
        client,
        orchestrator,
        defaults: defaults(),
        counters: Default::default(),
        phases: Default::default(),
        not_taken_over: Default::default(),
    };
    apply(&scaling, &ctx).await.expect("reconciled");
    let writes = server.await.expect("server side ran");
    let (first, triggers_then) = &writes[0];
    assert_eq!(*triggers_then, 0, "recorded before the trigger");
    let run = &first["status"]["run"];
    assert_eq!(run["testId"], "uid-1");
    assert_eq!(run["metricsTopic"], "p.metrics");
    assert_eq!(
        run["metricsFrom"],
        serde_json::json!([{"partition": 0, "offset": 1}]),
        "past what was on the log before"
    );
    assert_eq!(run["drivers"].as_array().map(Vec::len), Some(3));
    assert!(run["startAtMs"].as_u64().is_some_and(|ms| ms > 0));
    assert_eq!(first["status"]["phase"], "Running");
    assert_eq!(bus.messages(&topics.trigger).len(), 1, "then triggered");
    let (second, _) = &writes[1];
    assert_eq!(&second["status"]["run"], run, "kept in the next status");
}

/// Issue 12: a mix's figures by name reach the status, bounded as a mix is.
#[test]
fn the_status_shows_a_mix_s_figures_by_name_bounded() {
    use floodgate::orchestrator::view_mix::RequestStats;
    use floodgate::protocol::{limits, ChecksFailed};
    let stats = |n: u64| RequestStats {
        sent: n,
        responses: n - 1,
        ok: n - 3,
        error_total: 2,
        checks_failed: ChecksFailed {
            status: 1,
            body: 2,
            json: 3,
            too_large: 1,
        },
        latency: floodgate::stats::LatencyStats {
            p99_ms: Some(n as f64 / 10.0),
            ..Default::default()
        },
        ..Default::default()
    };
    let named: BTreeMap<String, RequestStats> = [
        ("home".to_string(), stats(100)),
        ("add".to_string(), stats(40)),
    ]
    .into();
    let got = by_request(&named);
    assert_eq!(
        got,
        [
            RequestProgress {
                name: "add".into(),
                sent: 40,
                responses: 39,
                ok: 37,
                errors: 2,
                checks_failed: 6,
                p99_ms: Some(4.0),
            },
            RequestProgress {
                name: "home".into(),
                sent: 100,
                responses: 99,
                ok: 97,
                errors: 2,
                checks_failed: 6,
                p99_ms: Some(10.0),
            },
        ]
    );
    let many: BTreeMap<String, RequestStats> = (0..limits::MAX_MIX_ENTRIES + 5)
        .map(|i| (format!("r{i:02}"), stats(10)))
        .collect();
    assert_eq!(by_request(&many).len(), limits::MAX_MIX_ENTRIES);
}
