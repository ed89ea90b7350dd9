//! The operator against a real kube-apiserver + etcd (built from the Go module proxy and
//! started by `make test`: `scripts/k8s/controlplane.sh`), a real Kafka, and real driver and
//! target processes. There is no kubelet, so no pod ever runs: the test starts one driver
//! process per replica the operator asked for, with the IDs pods would have.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use floodgate_operator::crd::{LoadTest, Phase};
use floodgate_testkit::{eventually, Proc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests need a real kube-apiserver and Kafka; run `make test` (scripts/test.sh starts both)")
    })
}

fn bin(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_floodgate-operator")).with_file_name(name);
    assert!(
        p.exists(),
        "{} is missing: `cargo build --workspace` first",
        p.display()
    );
    p
}

async fn client() -> Client {
    let kubeconfig = Kubeconfig::read_from(env("FLOODGATE_TEST_KUBECONFIG")).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

/// Installs the committed CRD (idempotent) and waits until the API server serves it.
async fn install_crd(c: &Client) {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crds/loadtests.floodgate.dev.yaml"
    ))
    .expect("crd file");
    let crd: CustomResourceDefinition = serde_yaml::from_str(&yaml).expect("crd yaml");
    let api: Api<CustomResourceDefinition> = Api::all(c.clone());
    api.patch(
        "loadtests.floodgate.dev",
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("crd applied");
    eventually(
        "the CRD to be established",
        Duration::from_secs(30),
        async || {
            let crd = api.get("loadtests.floodgate.dev").await.ok()?;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        },
    )
    .await;
}

/// One namespace, one Kafka topic prefix, one operator, one target.
struct Env {
    client: Client,
    ns: String,
    prefix: String,
    api: String,
    target: String,
    _target_proc: Proc,
    operator: Proc,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        let client = client().await;
        install_crd(&client).await;
        let ns = format!("e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let nss: Api<Namespace> = Api::all(client.clone());
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .expect("namespace");
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("{ns}.");
        let mut target_proc = Proc::start(
            "target",
            Command::new(bin("floodgate-target")).args([
                "--listen",
                "127.0.0.1:0",
                "--threads",
                "2",
            ]),
        );
        let target = target_proc
            .wait_line("listening on", Duration::from_secs(60))
            .await
            .split_whitespace()
            .last()
            .unwrap()
            .to_string();
        let mut operator = spawn_operator(&ns, &prefix, dir.path(), "127.0.0.1:0");
        let line = operator
            .wait_line("operator listening on", Duration::from_secs(60))
            .await;
        let api = line.split_whitespace().last().unwrap().to_string();
        Env {
            client,
            ns,
            prefix,
            api,
            target,
            _target_proc: target_proc,
            operator,
            _dir: dir,
        }
    }

    /// Kills the operator (no goodbye) and starts it again on the same address and store.
    async fn restart_operator(&mut self) {
        self.operator.kill();
        self.operator = spawn_operator(&self.ns, &self.prefix, self._dir.path(), &self.api);
        self.operator
            .wait_line("operator listening on", Duration::from_secs(60))
            .await;
    }

    fn loadtests(&self) -> Api<LoadTest> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn apply(&self, manifest: Value) -> Result<LoadTest, kube::Error> {
        let lt: LoadTest = serde_json::from_value(manifest).expect("a LoadTest");
        self.loadtests().create(&PostParams::default(), &lt).await
    }

    /// Starts the driver processes the operator's Deployment asks for, with pod-like IDs.
    async fn drivers_for(&self, lt: &str) -> Vec<Proc> {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &self.ns);
        let name = format!("{lt}-drivers");
        let replicas = eventually(
            "the driver deployment",
            Duration::from_secs(30),
            async || {
                deployments
                    .get_opt(&name)
                    .await
                    .ok()??
                    .spec?
                    .replicas
                    .filter(|r| *r > 0)
            },
        )
        .await;
        let mut procs = Vec::new();
        for i in 0..replicas {
            let id = format!("{name}-pod{i}");
            let store = self._dir.path().join(format!("{id}.sqlite"));
            let mut p = Proc::start(
                &id,
                Command::new(bin("floodgate"))
                    .args([
                        "driver",
                        "--kafka",
                        &env("KAFKA_BOOTSTRAP"),
                        "--orchestrator",
                        &self.api,
                        "--id",
                        &id,
                        "--topic-prefix",
                        &self.prefix,
                    ])
                    .arg("--store")
                    .arg(store)
                    .env("TOKIO_WORKER_THREADS", "2"),
            );
            p.wait_line("driver registered", Duration::from_secs(60))
                .await;
            procs.push(p);
        }
        procs
    }

    async fn phase(&self, lt: &str, want: Phase, within: Duration) -> LoadTest {
        eventually(&format!("{lt} to reach {want:?}"), within, async || {
            let l = self.loadtests().get(lt).await.ok()?;
            (l.status.as_ref()?.phase == want).then_some(l)
        })
        .await
    }

    async fn target_count(&self) -> u64 {
        let v: Value = reqwest::get(format!("http://{}/metrics", self.target))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["requests_received"].as_u64().unwrap()
    }
}

fn spawn_operator(ns: &str, prefix: &str, dir: &std::path::Path, listen: &str) -> Proc {
    Proc::start(
        "operator",
        Command::new(bin("floodgate-operator"))
            .args([
                "--kafka",
                &env("KAFKA_BOOTSTRAP"),
                "--listen",
                listen,
                "--namespace",
                ns,
                "--topic-prefix",
                prefix,
            ])
            .arg("--store")
            .arg(dir.join("operator.sqlite"))
            .env("KUBECONFIG", env("FLOODGATE_TEST_KUBECONFIG"))
            .env("TOKIO_WORKER_THREADS", "2"),
    )
}

fn loadtest(name: &str, target: &str, drivers: u32, extra: Value) -> Value {
    let mut spec = json!({"targetUrl": format!("http://{target}/ping"), "testType": "Avalanche", "requestsPerDriver": 300, "drivers": drivers, "concurrency": 8});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "floodgate.dev/v1alpha1", "kind": "LoadTest", "metadata": {"name": name}, "spec": spec})
}

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
    ];
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
    assert!(st.completion_time.is_some());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_driver_mid_test_fails_the_loadtest_with_partial_results() {
    let e = Env::start().await;
    let long = json!({"testType": "Tsunami", "delayMs": 5, "requestsPerDriver": 2000});
    e.apply(loadtest("lossy", &e.target, 2, long))
        .await
        .expect("created");
    let mut drivers = e.drivers_for("lossy").await;
    eventually(
        "both drivers to make progress",
        Duration::from_secs(60),
        async || {
            let l = e.loadtests().get("lossy").await.ok()?;
            let st = l.status?;
            (st.phase == Phase::Running
                && st.drivers.len() == 2
                && st.drivers.iter().all(|d| d.sent > 0))
            .then_some(())
        },
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restart_mid_test_resumes_the_test() {
    let mut e = Env::start().await;
    let long = json!({"testType": "Tsunami", "delayMs": 2, "requestsPerDriver": 1500});
    e.apply(loadtest("resume", &e.target, 2, long))
        .await
        .expect("created");
    let _drivers = e.drivers_for("resume").await;
    e.phase("resume", Phase::Running, Duration::from_secs(60))
        .await;
    e.restart_operator().await;
    // The restarted operator finds the test in its store (same ID: the LoadTest's UID), keeps
    // folding in the drivers' reports, and finishes it; it never starts a second test.
    let done = e
        .phase("resume", Phase::Succeeded, Duration::from_secs(90))
        .await;
    let agg = done.status.expect("status").aggregate.expect("aggregate");
    assert_eq!(agg.sent, 3000);
    assert_eq!(
        e.target_count().await,
        3000,
        "exactly one run of the test reached the target"
    );
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
