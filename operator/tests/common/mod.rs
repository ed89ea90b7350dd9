//! What the operator's end-to-end tests share: a real kube-apiserver + etcd (built from the Go
//! module proxy and started by `make test`: `scripts/k8s/controlplane.sh`), a real Kafka, and
//! real driver, target and operator processes. There is no kubelet, so no pod ever runs: the
//! tests start one driver process per replica the operator asked for, with the IDs pods would
//! have.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use floodgate_operator::crd::{LoadTest, Phase};
use floodgate_testkit::{eventually, Proc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests need a real kube-apiserver and Kafka; run `make test` (scripts/test.sh starts both)")
    })
}

pub fn bin(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_floodgate-operator")).with_file_name(name);
    assert!(
        p.exists(),
        "{} is missing: `cargo build --workspace` first",
        p.display()
    );
    p
}

pub async fn client() -> Client {
    let kubeconfig = Kubeconfig::read_from(env("FLOODGATE_TEST_KUBECONFIG")).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

/// Installs the committed CRD (idempotent) and waits until the API server serves it.
pub async fn install_crd(c: &Client) {
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
pub struct Env {
    pub client: Client,
    pub ns: String,
    pub prefix: String,
    pub api: String,
    pub target: String,
    pub target_proc: Proc,
    pub operator: Proc,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub async fn start() -> Env {
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
            target_proc,
            operator,
            dir,
        }
    }

    /// Kills the operator (no goodbye) and starts it again on the same address and store.
    pub async fn restart_operator(&mut self) {
        self.operator.kill();
        self.start_operator().await;
    }

    /// Starts a new operator on the same address and store path (after [`Proc::kill`]).
    pub async fn start_operator(&mut self) {
        self.operator = spawn_operator(&self.ns, &self.prefix, self.dir.path(), &self.api);
        self.operator
            .wait_line("operator listening on", Duration::from_secs(60))
            .await;
    }

    /// Deletes the operator's store, as a new pod's empty volume would have it: the SQLite file
    /// and its journal. The operator must not be running.
    pub fn delete_store(&self) {
        let store = self.dir.path().join("operator.sqlite");
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let path = PathBuf::from(format!("{}{suffix}", store.display()));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("cannot delete {}: {e}", path.display()),
            }
        }
        assert!(!store.exists(), "the store is gone");
    }

    pub fn loadtests(&self) -> Api<LoadTest> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub async fn apply(&self, manifest: Value) -> Result<LoadTest, kube::Error> {
        let lt: LoadTest = serde_json::from_value(manifest).expect("a LoadTest");
        self.loadtests().create(&PostParams::default(), &lt).await
    }

    /// Starts the driver processes the operator's Deployment asks for, with pod-like IDs.
    pub async fn drivers_for(&self, lt: &str) -> Vec<Proc> {
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
            procs.push(self.driver(&format!("{name}-pod{i}")).await);
        }
        procs
    }

    /// Starts one driver process with the pod-like ID `id` (a replacement pod's, say) and waits
    /// until it has registered.
    pub async fn driver(&self, id: &str) -> Proc {
        let store = self.dir.path().join(format!("{id}.sqlite"));
        let mut p = Proc::start(
            id,
            Command::new(bin("floodgate"))
                .args([
                    "driver",
                    "--kafka",
                    &env("KAFKA_BOOTSTRAP"),
                    "--orchestrator",
                    &self.api,
                    "--id",
                    id,
                    "--topic-prefix",
                    &self.prefix,
                ])
                .arg("--store")
                .arg(store)
                .env("TOKIO_WORKER_THREADS", "2"),
        );
        p.wait_line("driver registered", Duration::from_secs(60))
            .await;
        p
    }

    pub async fn phase(&self, lt: &str, want: Phase, within: Duration) -> LoadTest {
        eventually(&format!("{lt} to reach {want:?}"), within, async || {
            let l = self.loadtests().get(lt).await.ok()?;
            (l.status.as_ref()?.phase == want).then_some(l)
        })
        .await
    }

    pub async fn target_count(&self) -> u64 {
        let v: Value = reqwest::get(format!("http://{}/metrics", self.target))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["requests_received"].as_u64().unwrap()
    }
}

pub fn spawn_operator(ns: &str, prefix: &str, dir: &std::path::Path, listen: &str) -> Proc {
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

pub fn loadtest(name: &str, target: &str, drivers: u32, extra: Value) -> Value {
    let mut spec = json!({"targetUrl": format!("http://{target}/ping"), "testType": "Avalanche", "requestsPerDriver": 300, "drivers": drivers, "concurrency": 8});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "floodgate.dev/v1alpha1", "kind": "LoadTest", "metadata": {"name": name}, "spec": spec})
}
