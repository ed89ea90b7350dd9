//! What the cluster tests share: the one `helm install`, a client per test (a kube client
//! lives on the runtime that made it), kubectl and port-forward as a user runs them, the
//! target's count through the API server's service proxy, and a Prometheus in the node's
//! network namespace with Kubernetes service discovery.

use floodgate_operator::crd::{LoadTest, Phase};
use floodgate_testkit::{eventually, Proc};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The namespace the chart is installed in, and the LoadTests run in: the example's.
pub const NS: &str = "default";
const RELEASE: &str = "floodgate";

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests need the real cluster of scripts/k8s/cluster.sh; run `make test` (or `eval \"$(scripts/k8s/cluster.sh env)\"` after `make cluster`)")
    })
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn example_path() -> String {
    root().join("examples/loadtest.yaml").display().to_string()
}

/// Runs a command to completion; panics with its output unless it succeeds.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// kubectl in the test namespace.
pub fn kubectl(c: &Cluster, args: &[&str]) -> String {
    run(Command::new("kubectl")
        .env("KUBECONFIG", &c.kubeconfig)
        .args(["--namespace", NS])
        .args(args))
}

pub fn helm(c: &Cluster, args: &[&str]) -> String {
    run(Command::new("helm")
        .env("KUBECONFIG", &c.kubeconfig)
        .args(["--namespace", NS])
        .args(args))
}

/// kubectl with the namespaces the manifest names.
fn kubectl_any(c: &Cluster, args: &[&str]) -> String {
    run(Command::new("kubectl")
        .env("KUBECONFIG", &c.kubeconfig)
        .args(args))
}

/// What the installation gives every test.
struct Install {
    token: String,
}

static INSTALL: OnceLock<Install> = OnceLock::new();
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Images of the driver pods seen running (pods are gone once a test ends).
static IMAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// `helm install` of the chart, once for all tests: the Kafka the cluster script started in
/// the node's namespace, and the images `make images` imported (never pulled).
fn install() -> &'static Install {
    INSTALL.get_or_init(|| {
        let kubeconfig = env("FLOODGATE_CLUSTER_KUBECONFIG");
        let kafka = env("FLOODGATE_CLUSTER_KAFKA");
        let chart = root().join("charts/floodgate");
        let started = std::time::Instant::now();
        run(Command::new("helm")
            .env("KUBECONFIG", &kubeconfig)
            .args(["upgrade", "--install", RELEASE])
            .arg(&chart)
            .args(["--namespace", NS, "--wait", "--timeout", "4m"])
            .args(["--set", &format!("kafka.bootstrapServers={kafka}")])
            .args(["--set", "image.operator.pullPolicy=Never"])
            .args(["--set", "image.node.pullPolicy=Never"])
            .args(["--set", "image.target.pullPolicy=Never"]));
        eprintln!("helm install: {:.1} s", started.elapsed().as_secs_f64());
        let token = run(Command::new("kubectl")
            .env("KUBECONFIG", &kubeconfig)
            .args(["--namespace", NS, "get", "secret", "floodgate-api-token"])
            .args(["-o", "jsonpath={.data.tokens}"]));
        let token =
            String::from_utf8(base64_decode(token.trim()).expect("the token Secret is base64"))
                .expect("utf-8 token");
        Install {
            token: token.lines().next().unwrap_or_default().trim().to_string(),
        }
    })
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let out = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take()?.write_all(s.as_bytes()).ok()?;
            child.wait_with_output().ok()
        })?;
    out.status.success().then_some(out.stdout)
}

pub struct Cluster {
    pub client: Client,
    pub kubeconfig: String,
    pub token: String,
}

pub async fn installed() -> Cluster {
    let kubeconfig = env("FLOODGATE_CLUSTER_KUBECONFIG");
    let token = tokio::task::spawn_blocking(|| install().token.clone())
        .await
        .expect("install");
    let kc = Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    Cluster {
        client: Client::try_from(config).expect("client"),
        kubeconfig,
        token,
    }
}

/// A LoadTest in the test namespace against the chart's target.
pub fn loadtest(name: &str, drivers: u32, requests: u64, delay_ms: u64) -> Value {
    json!({
        "apiVersion": "floodgate.dev/v1alpha1",
        "kind": "LoadTest",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "targetUrl": format!("http://floodgate-target.{NS}.svc:8080/ping"),
            "testType": "Tsunami",
            "delayMs": delay_ms,
            "requestsPerDriver": requests,
            "drivers": drivers,
            "concurrency": 8,
            "timeoutMs": 5000
        }
    })
}

impl Cluster {
    /// One test at a time: some delete pods that the others use.
    pub async fn serial(&self) -> tokio::sync::MutexGuard<'static, ()> {
        SERIAL.lock().await
    }

    fn loadtests(&self) -> Api<LoadTest> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Creates the LoadTest, after deleting one of that name that an earlier run left (a
    /// LoadTest never runs twice).
    pub async fn apply(&self, lt: &Value) {
        let name = lt["metadata"]["name"].as_str().expect("name").to_string();
        if self.get(&name).await.is_some() {
            self.delete_loadtest(&name).await;
        }
        self.loadtests()
            .patch(
                &name,
                &PatchParams::apply("cluster-test").force(),
                &Patch::Apply(lt),
            )
            .await
            .unwrap_or_else(|e| panic!("applying LoadTest {name}: {e}"));
    }

    pub async fn get(&self, name: &str) -> Option<LoadTest> {
        self.loadtests().get_opt(name).await.ok().flatten()
    }

    /// Polls the LoadTest until its phase is one of `phases`, noting its driver pods' images.
    pub async fn until_phase(&self, name: &str, phases: &[Phase], within: Duration) -> LoadTest {
        eventually(
            &format!("LoadTest {name} to reach {phases:?}"),
            within,
            async || {
                self.note_driver_images(name).await;
                let lt = self.get(name).await?;
                let phase = lt.status.as_ref()?.phase;
                phases.contains(&phase).then_some(lt)
            },
        )
        .await
    }

    pub async fn driver_pods(&self, loadtest: &str) -> Vec<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        pods.list(&ListParams::default().labels(&format!("floodgate.dev/loadtest={loadtest}")))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    }

    async fn note_driver_images(&self, loadtest: &str) {
        for pod in self.driver_pods(loadtest).await {
            let running = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .filter(|cs| cs.state.as_ref().is_some_and(|s| s.running.is_some()))
                .map(|cs| format!("{} ({})", cs.image, cs.image_id));
            IMAGES
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(running);
        }
    }

    pub fn driver_images_seen(&self) -> Vec<String> {
        IMAGES.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub async fn delete_loadtest(&self, name: &str) {
        let _ = self
            .loadtests()
            .delete(name, &DeleteParams::default())
            .await;
        eventually(
            &format!("LoadTest {name} and its drivers to go"),
            Duration::from_secs(120),
            async || {
                (self.get(name).await.is_none() && self.driver_pods(name).await.is_empty())
                    .then_some(())
            },
        )
        .await;
    }

    /// The name of the (one, Ready) operator pod.
    pub async fn operator_pod(&self) -> String {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        eventually(
            "one Ready operator pod",
            Duration::from_secs(180),
            async || {
                let list = pods
                    .list(&ListParams::default().labels("app.kubernetes.io/component=operator"))
                    .await
                    .ok()?;
                let live: Vec<&Pod> = list
                    .items
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .collect();
                match live.as_slice() {
                    [p] if is_ready(p) => p.metadata.name.clone(),
                    _ => None,
                }
            },
        )
        .await
    }

    pub async fn pod_ready(&self, name: &str) -> bool {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        pods.get(name).await.map(|p| is_ready(&p)).unwrap_or(false)
    }

    /// The target pod's own count of /ping requests, through the API server's service proxy.
    pub async fn target_count(&self) -> u64 {
        let v = self.target("GET", "metrics").await;
        v["requests_received"]
            .as_u64()
            .unwrap_or_else(|| panic!("target /metrics: {v}"))
    }

    pub async fn reset_target(&self) {
        self.target("POST", "reset").await;
    }

    async fn target(&self, method: &str, path: &str) -> Value {
        let uri =
            format!("/api/v1/namespaces/{NS}/services/http:floodgate-target:8080/proxy/{path}");
        let req = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Vec::new())
            .expect("request");
        let text = self
            .client
            .request_text(req)
            .await
            .unwrap_or_else(|e| panic!("target {path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("target {path}: {e}: {text}"))
    }
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `kubectl port-forward` to a free local port, as a user reaches the API and dashboard.
pub struct PortForward {
    pub url: String,
    _proc: Proc,
}

impl PortForward {
    pub async fn start(c: &Cluster, what: &str, port: u16) -> PortForward {
        let local = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut proc = Proc::start(
            "port-forward",
            Command::new("kubectl")
                .env("KUBECONFIG", &c.kubeconfig)
                .args([
                    "--namespace",
                    NS,
                    "port-forward",
                    what,
                    &format!("{local}:{port}"),
                ]),
        );
        proc.wait_line("Forwarding from", Duration::from_secs(30))
            .await;
        PortForward {
            url: format!("http://127.0.0.1:{local}"),
            _proc: proc,
        }
    }
}

/// Runs a browser script of node/tests/browser (headless Chromium) with a deadline.
pub async fn browser(script: &str, args: &[&str]) -> String {
    let dir = root().join("node/tests/browser");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the browser script ended within 120 s")
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{text}");
    text
}

/// Prometheus (built by `controlplane.sh build --node`: Debian's has no Kubernetes discovery) in
/// the node's network namespace (where pod IPs route), discovering the
/// pods through the API server with a ServiceAccount token, and scraping those annotated
/// `prometheus.io/scrape` (the chart's operator and the operator's driver pods).
pub struct Prometheus {
    base: String,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub async fn start(c: &Cluster) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let rbac = root().join("examples/prometheus/rbac.yaml");
        kubectl_any(c, &["apply", "-f", &rbac.display().to_string()]);
        let token = kubectl(
            c,
            &[
                "create",
                "token",
                "prometheus",
                "--namespace",
                "floodgate-monitoring",
                "--duration",
                "1h",
            ],
        );
        std::fs::write(dir.path().join("token"), token.trim()).expect("token file");
        let ca = kubeconfig_ca(&c.kubeconfig);
        std::fs::write(dir.path().join("ca.crt"), ca).expect("ca file");
        let node_ip = env("FLOODGATE_CLUSTER_NODE_IP");
        let config = std::fs::read_to_string(root().join("examples/prometheus/scrape-config.yaml"))
            .expect("examples/prometheus/scrape-config.yaml")
            .replace(
                "https://kubernetes.default.svc",
                &format!("https://{node_ip}:6443"),
            )
            .replace(
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
                &dir.path().join("token").display().to_string(),
            )
            .replace(
                "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
                &dir.path().join("ca.crt").display().to_string(),
            );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("config");
        let listen = format!("{node_ip}:9091");
        let mut proc = Proc::start(
            "prometheus",
            Command::new("nsenter")
                .arg(format!(
                    "--net=/run/netns/{}",
                    env("FLOODGATE_CLUSTER_NETNS")
                ))
                .arg("--")
                .arg(env("FLOODGATE_CLUSTER_PROMETHEUS"))
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={listen}")),
        );
        proc.wait_line(
            "Server is ready to receive web requests",
            Duration::from_secs(60),
        )
        .await;
        Prometheus {
            base: format!("http://{listen}"),
            _proc: proc,
            _dir: dir,
        }
    }

    /// The result vector of an instant query (panics on an API error).
    pub async fn query(&self, q: &str) -> Vec<Value> {
        let v = self.raw_query(q).await;
        assert_eq!(v["status"], "success", "{q}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    async fn raw_query(&self, q: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", q)])
            .send()
            .await
            .expect("prometheus answers")
            .json()
            .await
            .expect("prometheus JSON")
    }

    /// Runs every `expr` of docs/grafana-dashboard.json (its variables given values as Grafana
    /// would); returns the queries Prometheus refused, with its error.
    pub async fn check_dashboard_queries(&self, test_id: &str) -> Vec<String> {
        let text =
            std::fs::read_to_string(root().join("docs/grafana-dashboard.json")).expect("dashboard");
        let dash: Value = serde_json::from_str(&text).expect("dashboard JSON");
        let mut exprs = Vec::new();
        collect_exprs(&dash, &mut exprs);
        assert!(exprs.len() >= 10, "the dashboard's queries: {exprs:?}");
        let mut errors = Vec::new();
        for e in exprs {
            let q = e
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "15s")
                .replace("${test_id}", test_id)
                .replace("$test_id", test_id)
                .replace("${test}", test_id)
                .replace("$test", test_id)
                .replace("${node_id}", ".*")
                .replace("$node_id", ".*")
                .replace("${node}", ".*")
                .replace("$node", ".*");
            let v = self.raw_query(&q).await;
            if v["status"] != "success" {
                errors.push(format!("{q}: {v}"));
            }
        }
        errors
    }
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_exprs(x, out)),
        _ => {}
    }
}

/// The cluster CA from a kubeconfig's certificate-authority-data.
fn kubeconfig_ca(path: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path).expect("kubeconfig");
    let data = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data:"))
        .expect("certificate-authority-data")
        .trim()
        .to_string();
    base64_decode(&data).expect("CA base64")
}
