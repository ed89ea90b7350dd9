//! `spec.tls.caFrom` and a mix entry's `bodyFrom` through the controller, against a mocked API
//! server and the orchestrator on the in-memory bus: a missing ConfigMap or key holds a new
//! LoadTest in Pending (no driver started) naming the field, retried; a ConfigMap that is
//! there reaches the drivers' test config as the test's CA (the path caPem takes) or as the
//! entry's body.

use super::*;
use crate::crd::{ConfigMapKeyRef, FromConfigMap, LoadTestStatus, LoadTestTls};
use floodgate::bus::{Bus, MemoryBus};
use floodgate::orchestrator::OrchestratorConfig;
use floodgate::protocol::Topics;
use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;

/// Decodes as base64 DER, which is all the orchestrator checks of a CA bundle.
const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const CM_PATH: &str = "/api/v1/namespaces/load/configmaps/ca-bundle";

fn with_ca_from() -> LoadTest {
    let mut lt = crate::crd::sample_loadtest();
    lt.spec.target_url = Some("https://127.0.0.1:1/".into());
    lt.spec.tls = Some(LoadTestTls {
        ca_from: Some(FromConfigMap {
            config_map_key_ref: ConfigMapKeyRef {
                name: "ca-bundle".into(),
                key: "ca.crt".into(),
            },
        }),
        ..Default::default()
    });
    lt
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

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// The controller's context with the orchestrator on `bus`, and the handle of its API server.
async fn context(bus: &MemoryBus, topics: &Topics, dir: &std::path::Path) -> (Context, Handle) {
    let orchestrator = Orchestrator::start_on(
        OrchestratorConfig {
            config_gap: Duration::ZERO,
            start_delay: Duration::ZERO,
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
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = Context {
        client: Client::new(service, "default"),
        orchestrator,
        defaults: defaults(),
        counters: Default::default(),
        phases: Default::default(),
        not_taken_over: Default::default(),
    };
    (ctx, handle)
}

fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::from(serde_json::to_vec(body).expect("json")))
        .expect("response")
}

fn not_found() -> serde_json::Value {
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})
}

/// Every (method, path) asked, and the status patches.
type Served = (Vec<(String, String)>, Vec<serde_json::Value>);

/// Serves the LoadTest `lt`'s reconcile: the Deployment (`deployment`, or 404), the ConfigMap
/// (`config_map`, or 404), status patches echoed; stops after `writes` status writes.
fn serve(
    mut handle: Handle,
    lt: LoadTest,
    deployment: Option<Deployment>,
    config_map: Option<serde_json::Value>,
    writes: usize,
) -> tokio::task::JoinHandle<Served> {
    tokio::spawn(async move {
        let (mut calls, mut patches) = (Vec::new(), Vec::new());
        while let Some((req, send)) = handle.next_request().await {
            let (method, path) = (req.method().clone(), req.uri().path().to_string());
            calls.push((method.to_string(), path.clone()));
            // Any ConfigMap asked for is `config_map` (each test names one).
            let response = if path.starts_with("/api/v1/namespaces/load/configmaps/") {
                match &config_map {
                    Some(cm) => json_response(200, cm),
                    None => json_response(404, &not_found()),
                }
            } else if method == http::Method::GET {
                match &deployment {
                    Some(d) => json_response(200, &serde_json::to_value(d).expect("json")),
                    None => json_response(404, &not_found()),
                }
            } else if path.ends_with("/status") {
                let bytes = req.into_body().collect().await.expect("body").to_bytes();
                let patch: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
                let mut answer = serde_json::to_value(&lt).expect("json");
                answer["status"] = patch["status"].clone();
                patches.push(patch);
                json_response(200, &answer)
            } else {
                let bytes = req.into_body().collect().await.expect("body").to_bytes();
                json_response(200, &serde_json::from_slice(&bytes).expect("json"))
            };
            send.send_response(response);
            if patches.len() == writes {
                break;
            }
        }
        (calls, patches)
    })
}

fn config_map(data: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ca-bundle", "namespace": "load"}, "data": data})
}

#[tokio::test]
async fn a_missing_config_map_or_key_holds_a_new_loadtest_in_pending_naming_the_field() {
    let cases = [
        (None, "ConfigMapNotFound", "(key ca.crt) is not in"),
        (
            Some(config_map(serde_json::json!({"tls.crt": PEM}))),
            "ConfigMapKeyNotFound",
            "has no key ca.crt",
        ),
    ];
    for (cm, reason, needle) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let topics = Topics::with_prefix("");
        let bus = MemoryBus::new(topics.clone());
        let (ctx, handle) = context(&bus, &topics, dir.path()).await;
        let server = serve(handle, with_ca_from(), None, cm, 1);
        let action = apply(&with_ca_from(), &ctx).await.expect("reconciled");
        let (calls, patches) = server.await.expect("server side ran");
        let paths: Vec<&str> = calls.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/apis/apps/v1/namespaces/load/deployments/ping-drivers",
                CM_PATH,
                "/apis/floodgate.dev/v1alpha1/namespaces/load/loadtests/ping/status",
            ],
            "{reason}: no Deployment is applied"
        );
        let st: LoadTestStatus =
            serde_json::from_value(patches[0]["status"].clone()).expect("a status");
        assert_eq!(st.phase, Phase::Pending, "{reason}");
        let c = st
            .conditions
            .iter()
            .find(|c| c.type_ == plan::INPUTS)
            .expect("InputsResolved");
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", reason));
        assert!(
            c.message
                .starts_with("waiting for spec.tls.caFrom: ConfigMap ca-bundle")
                && c.message.contains(needle),
            "{reason}: {}",
            c.message
        );
        assert_eq!(action, Action::requeue(plan::INPUTS_EVERY), "{reason}");
    }
}

#[tokio::test]
async fn the_config_map_s_ca_reaches_the_drivers_test_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topics = Topics::with_prefix("");
    let bus = MemoryBus::new(topics.clone());
    let (ctx, handle) = context(&bus, &topics, dir.path()).await;
    three_drivers(&bus, &topics, &ctx).await;
    let mut scaling = with_ca_from();
    scaling.status = Some(LoadTestStatus {
        phase: Phase::Scaling,
        ..Default::default()
    });
    let mut d = driver_deployment(&scaling, 3, &defaults());
    d.metadata.name = Some("ping-drivers".into());
    let cm = config_map(serde_json::json!({"ca.crt": PEM}));
    let server = serve(handle, scaling.clone(), Some(d), Some(cm), 2);
    apply(&scaling, &ctx).await.expect("reconciled");
    let (calls, patches) = server.await.expect("server side ran");
    assert_eq!(
        calls.iter().filter(|(_, p)| p == CM_PATH).count(),
        1,
        "read once, at the start: {calls:?}"
    );
    assert_eq!(patches[0]["status"]["phase"], "Running");
    let configs = bus.messages(&topics.test_config);
    // Sent at creation and again before the trigger (for a driver restarted since); each
    // copy carries the CA.
    assert_eq!(configs.len(), 2, "the test config, twice");
    for payload in &configs {
        let config: serde_json::Value = serde_json::from_slice(payload).expect("json");
        assert_eq!(config["tls"]["ca_pem"], PEM, "{config}");
    }
}

/// Registers the three drivers of LoadTest `ping` and waits until the orchestrator has them.
async fn three_drivers(bus: &MemoryBus, topics: &Topics, ctx: &Context) {
    for i in 0..3 {
        let id = format!("ping-drivers-{i}");
        let reg = serde_json::json!({"node_id": id, "node_IP": "h:1", "message_type": "DRIVER_NODE_REGISTER", "agent": "floodgate", "heartbeat_ms": 1000});
        bus.publish(&topics.register, &id, reg.to_string().as_bytes())
            .await
            .expect("publish");
    }
    floodgate_testkit::eventually("three drivers", Duration::from_secs(10), async || {
        (ctx.orchestrator.drivers().len() == 3).then_some(())
    })
    .await;
}

/// Issue 12: a mix entry's `bodyFrom` is read at the start and reaches the drivers' test
/// config as that entry's body, with the mix's weights and checks.
#[tokio::test]
async fn a_mix_entry_s_body_from_a_config_map_reaches_the_drivers_test_config() {
    use crate::crd::{Checks, MixRequest, StatusMatch};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let dir = tempfile::tempdir().expect("tempdir");
    let topics = Topics::with_prefix("");
    let bus = MemoryBus::new(topics.clone());
    let (ctx, handle) = context(&bus, &topics, dir.path()).await;
    three_drivers(&bus, &topics, &ctx).await;
    let entry = |name: &str, url: &str, weight: u32| MixRequest {
        name: name.into(),
        method: None,
        url: url.into(),
        headers: Default::default(),
        body: None,
        body_from: None,
        weight,
        checks: None,
    };
    let mut add = entry("add", "http://127.0.0.1:1/cart", 1);
    add.method = Some("POST".into());
    add.body_from = Some(FromConfigMap {
        config_map_key_ref: ConfigMapKeyRef {
            name: "cart".into(),
            key: "add.json".into(),
        },
    });
    add.checks = Some(Checks {
        status: vec![StatusMatch(IntOrString::String("201".into()))],
        ..Default::default()
    });
    let mut scaling = crate::crd::sample_loadtest();
    scaling.spec.target_url = None;
    scaling.spec.mix = Some(vec![entry("home", "http://127.0.0.1:1/", 4), add]);
    scaling.status = Some(LoadTestStatus {
        phase: Phase::Scaling,
        ..Default::default()
    });
    let mut d = driver_deployment(&scaling, 3, &defaults());
    d.metadata.name = Some("ping-drivers".into());
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cart", "namespace": "load"}, "data": {"add.json": "{\"item\": 7}"}});
    let server = serve(handle, scaling.clone(), Some(d), Some(cm), 2);
    apply(&scaling, &ctx).await.expect("reconciled");
    let (calls, patches) = server.await.expect("server side ran");
    let cart = "/api/v1/namespaces/load/configmaps/cart";
    assert_eq!(
        calls.iter().filter(|(_, p)| p == cart).count(),
        1,
        "read once, at the start: {calls:?}"
    );
    assert_eq!(patches[0]["status"]["phase"], "Running");
    let configs = bus.messages(&topics.test_config);
    assert_eq!(configs.len(), 2, "the test config, twice");
    for payload in &configs {
        let config: serde_json::Value = serde_json::from_slice(payload).expect("json");
        let mix = &config["mix"];
        assert_eq!(mix[0]["name"], "home", "{config}");
        assert_eq!(mix[0]["weight"], 4, "{config}");
        assert_eq!(mix[1]["method"], "POST", "{config}");
        assert_eq!(mix[1]["body"], "{\"item\": 7}", "{config}");
        assert_eq!(
            mix[1]["checks"]["status"],
            serde_json::json!([201]),
            "{config}"
        );
    }
}
