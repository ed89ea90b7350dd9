//! Test harness for end-to-end tests: real processes (target, orchestrator, drivers) over a
//! real Kafka broker (`KAFKA_BOOTSTRAP`, started by `make test`) and real HTTP on loopback.
//! Every cluster gets its own topic prefix, so tests can share the broker and run in parallel.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cut;

pub use floodgate_testkit::{eventually, Proc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn kafka() -> String {
    std::env::var("KAFKA_BOOTSTRAP").expect(
        "KAFKA_BOOTSTRAP is not set: these tests need a real Kafka broker. Run `make test`, or start one with \
         `bash scripts/kafka.sh start` and export KAFKA_BOOTSTRAP=<the address it prints>",
    )
}

/// The `floodgate` binary: the one cargo built for these tests, or the one in
/// `FLOODGATE_TEST_BIN_DIR` (with its `floodgate-target`) when several worktrees share one
/// target directory and would overwrite each other's binaries.
pub fn floodgate_bin() -> PathBuf {
    match std::env::var_os("FLOODGATE_TEST_BIN_DIR") {
        Some(dir) => PathBuf::from(dir).join("floodgate"),
        None => PathBuf::from(env!("CARGO_BIN_EXE_floodgate")),
    }
}

pub fn target_bin() -> PathBuf {
    let p = floodgate_bin().with_file_name("floodgate-target");
    assert!(
        p.exists(),
        "{} is missing: build it first (`cargo build --workspace`; `make test` does)",
        p.display()
    );
    p
}

/// The port printed in a line ending with `HOST:PORT`.
fn addr_in(line: &str) -> String {
    line.split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string()
}

pub struct Target {
    pub proc: Proc,
    pub addr: String,
}

impl Target {
    pub async fn start(extra: &[&str]) -> Target {
        let mut args = vec!["--listen", "127.0.0.1:0", "--threads", "2"];
        args.extend_from_slice(extra);
        let mut proc = Proc::spawn("target", &target_bin(), &args, &[]);
        let line = proc
            .wait_line("listening on", Duration::from_secs(10))
            .await;
        Target {
            addr: addr_in(&line),
            proc,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/ping", self.addr)
    }

    pub async fn metrics(&self) -> (u64, u64) {
        let v = get(&format!("http://{}/metrics", self.addr)).await;
        (
            v["requests_received"].as_u64().unwrap(),
            v["responses_sent"].as_u64().unwrap(),
        )
    }

    pub async fn arrivals_us(&self) -> Vec<u64> {
        let v = get(&format!("http://{}/arrivals", self.addr)).await;
        v["arrivals_us"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect()
    }
}

/// One orchestrator and its drivers on one topic prefix.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    /// The broker this cluster's nodes use.
    pub kafka: String,
    pub prefix: String,
    pub orchestrator: Proc,
    pub api: String,
    pub drivers: Vec<Proc>,
    /// The API token the helpers send, for an orchestrator that requires one.
    pub token: Option<String>,
    /// The orchestrator's extra flags and environment (kept for a restart).
    orchestrator_extra: Options,
}

/// Extra flags and environment variables of a process.
#[derive(Clone, Default)]
pub struct Options {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Cluster {
    pub async fn start(drivers: usize) -> Cluster {
        Self::start_on_with(&kafka(), drivers, Options::default(), None).await
    }

    /// A cluster on a broker of its own (one a test may stop).
    pub async fn start_on(kafka: &str, drivers: usize) -> Cluster {
        Self::start_on_with(kafka, drivers, Options::default(), None).await
    }

    /// [`Cluster::start_on`] with extra orchestrator flags.
    pub async fn start_on_with_args(kafka: &str, drivers: usize, args: &[&str]) -> Cluster {
        let extra = Options {
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
        };
        Self::start_on_with(kafka, drivers, extra, None).await
    }

    /// [`Cluster::start`] with extra orchestrator flags (a deployment's allow-list, caps).
    pub async fn start_with_args(drivers: usize, args: &[&str]) -> Cluster {
        let extra = Options {
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
        };
        Self::start_with(drivers, extra, None).await
    }

    /// A cluster whose orchestrator gets `extra`; the helpers send `token`.
    pub async fn start_with(drivers: usize, extra: Options, token: Option<&str>) -> Cluster {
        Self::start_on_with(&kafka(), drivers, extra, token).await
    }

    async fn start_on_with(
        kafka: &str,
        drivers: usize,
        extra: Options,
        token: Option<&str>,
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("t{}.", uuid::Uuid::new_v4().simple());
        let (orchestrator, api) =
            start_orchestrator_at(dir.path(), kafka, &prefix, "127.0.0.1:0", &extra).await;
        let mut c = Cluster {
            dir,
            kafka: kafka.to_string(),
            prefix,
            orchestrator,
            api,
            drivers: Vec::new(),
            token: token.map(str::to_string),
            orchestrator_extra: extra,
        };
        for _ in 0..drivers {
            c.add_driver().await;
        }
        c.wait_alive(drivers).await;
        c
    }

    pub fn driver_id(i: usize) -> String {
        format!("driver-{i}")
    }

    pub fn driver_store(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("driver-{i}.sqlite"))
    }

    /// Starts driver number `drivers.len()` (IDs are stable, so a restart reuses one).
    pub async fn add_driver(&mut self) {
        self.add_driver_with(&[]).await;
    }

    /// [`Cluster::add_driver`] with extra driver flags (`--capacity 2`).
    pub async fn add_driver_with(&mut self, extra: &[&str]) {
        let i = self.drivers.len();
        let p = self.spawn_driver_with(i, extra).await;
        self.drivers.push(p);
    }

    pub async fn spawn_driver(&self, i: usize) -> Proc {
        self.spawn_driver_with(i, &[]).await
    }

    pub async fn spawn_driver_with(&self, i: usize, extra: &[&str]) -> Proc {
        self.spawn_driver_on(i, &self.kafka, extra).await
    }

    /// Driver `i` bootstrapped at `kafka` (a proxy in front of the cluster's broker).
    pub async fn spawn_driver_on(&self, i: usize, kafka: &str, extra: &[&str]) -> Proc {
        let id = Self::driver_id(i);
        let store = self.driver_store(i);
        let mut args = vec![
            "driver",
            "--kafka",
            kafka,
            "--orchestrator",
            &self.api,
            "--id",
            &id,
            "--topic-prefix",
            &self.prefix,
            "--store",
            store.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let mut p = Proc::spawn(
            &id,
            &floodgate_bin(),
            &args,
            &[("TOKIO_WORKER_THREADS", "2")],
        );
        p.wait_line("driver registered", Duration::from_secs(30))
            .await;
        p
    }

    pub async fn restart_orchestrator(&mut self) {
        self.orchestrator.kill();
        let (p, api) = start_orchestrator_at(
            self.dir.path(),
            &self.kafka,
            &self.prefix,
            &self.api,
            &self.orchestrator_extra,
        )
        .await;
        self.orchestrator = p;
        self.api = api;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    /// GET with the cluster's token, if any.
    pub async fn get(&self, path: &str) -> Value {
        get_with(&self.url(path), self.token.as_deref()).await
    }

    pub async fn alive(&self) -> Vec<String> {
        let v = self.get("/api/v1/drivers").await;
        v["drivers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["alive"] == true)
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// One driver as GET /api/v1/drivers shows it, if listed.
    pub async fn driver(&self, id: &str) -> Option<Value> {
        let v = self.get("/api/v1/drivers").await;
        v["drivers"]
            .as_array()?
            .iter()
            .find(|d| d["id"] == id)
            .cloned()
    }

    pub async fn wait_alive(&self, n: usize) {
        eventually(
            &format!("{n} alive drivers"),
            Duration::from_secs(30),
            async || (self.alive().await.len() == n).then_some(()),
        )
        .await;
    }

    /// Creates and triggers a test; returns its id.
    pub async fn start_test(&self, spec: Value) -> String {
        let mut spec = spec;
        spec["trigger"] = json!(true);
        let (status, v) = post_with(
            &self.url("/api/v1/tests"),
            Some(spec),
            self.token.as_deref(),
        )
        .await;
        assert_eq!(status, 201, "create failed: {v}");
        assert_eq!(v["status"], "running", "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    pub async fn test(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/tests/{id}")).await
    }

    /// Waits until the test has ended and its numbers are final, and returns its view.
    pub async fn wait_finished(&self, id: &str, within: Duration) -> Value {
        eventually(&format!("test {id} to end"), within, async || {
            let v = self.test(id).await;
            let ended = matches!(
                v["status"].as_str(),
                Some("completed" | "failed" | "stopped")
            );
            (ended && v["settled"] == true).then_some(v)
        })
        .await
    }

    pub async fn run_test(&self, spec: Value, within: Duration) -> Value {
        let id = self.start_test(spec).await;
        self.wait_finished(&id, within).await
    }
}

async fn start_orchestrator_at(
    dir: &Path,
    kafka: &str,
    prefix: &str,
    listen: &str,
    extra: &Options,
) -> (Proc, String) {
    let mut p = spawn_orchestrator_on(dir, kafka, prefix, listen, extra);
    let line = p
        .wait_line("orchestrator listening on", Duration::from_secs(30))
        .await;
    (p, addr_in(&line))
}

/// An orchestrator on `prefix` with `extra`, started without waiting for anything.
pub fn spawn_orchestrator(dir: &Path, prefix: &str, listen: &str, extra: &Options) -> Proc {
    spawn_orchestrator_on(dir, &kafka(), prefix, listen, extra)
}

/// [`spawn_orchestrator`] on a given broker.
pub fn spawn_orchestrator_on(
    dir: &Path,
    kafka: &str,
    prefix: &str,
    listen: &str,
    extra: &Options,
) -> Proc {
    let store = dir.join("orchestrator.sqlite");
    let mut args = vec![
        "orchestrator",
        "--kafka",
        kafka,
        "--listen",
        listen,
        "--topic-prefix",
        prefix,
        "--store",
        store.to_str().unwrap(),
        "--id",
        "orch-1",
        "--start-delay-ms",
        "500",
    ];
    args.extend(extra.args.iter().map(String::as_str));
    let mut env = vec![("TOKIO_WORKER_THREADS", "2")];
    env.extend(extra.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Proc::spawn("orchestrator", &floodgate_bin(), &args, &env)
}

pub async fn get(url: &str) -> Value {
    get_with(url, None).await
}

/// GET, with `Authorization: Bearer <token>` when a token is given.
pub async fn get_with(url: &str, token: Option<&str>) -> Value {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    r.json().await.unwrap()
}

pub async fn post(url: &str, body: Option<Value>) -> (u16, Value) {
    post_with(url, body, None).await
}

/// A POST as the CLI makes it: JSON (even without a body), with the token if given.
pub async fn post_with(url: &str, body: Option<Value>, token: Option<&str>) -> (u16, Value) {
    let c = reqwest::Client::new();
    let mut req = c.post(url).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn post_raw(url: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Produces raw bytes on a topic, bypassing every Floodgate type (for garbage tests).
pub async fn produce_raw(topic: &str, payload: &[u8]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::ClientConfig;
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .create()
        .unwrap();
    p.send(
        FutureRecord::<str, [u8]>::to(topic).payload(payload),
        Duration::from_secs(10),
    )
    .await
    .map_err(|(e, _)| e)
    .unwrap();
}

/// The seed-style test nodes (node/tests/seed/seed_node.py): other implementations of the
/// spec, reproduced from what is known of them, on kafka-python.
pub fn seed_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/seed/seed_node.py")
}

/// A seed-style driver `id` on `prefix`, with its built-in target and quirks; waits until it
/// has registered.
pub async fn seed_driver(prefix: &str, id: &str, target: &str, quirks: &[&str]) -> Proc {
    let mut args = vec![
        seed_script().to_string_lossy().into_owned(),
        "driver".into(),
        "--bootstrap".into(),
        kafka(),
        "--prefix".into(),
        prefix.into(),
        "--id".into(),
        id.into(),
        "--target".into(),
        target.into(),
    ];
    args.extend(quirks.iter().map(|q| q.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = Proc::spawn(id, Path::new("python3"), &argv, &[]);
    p.wait_line("REGISTERED", Duration::from_secs(60)).await;
    p
}

/// A seed-style orchestrator on `prefix` that runs one test once `drivers` are known; waits
/// until it listens.
pub async fn seed_orchestrator(prefix: &str, options: &[&str]) -> Proc {
    let mut args = vec![
        seed_script().to_string_lossy().into_owned(),
        "orchestrator".into(),
        "--bootstrap".into(),
        kafka(),
        "--prefix".into(),
        prefix.into(),
    ];
    args.extend(options.iter().map(|q| q.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = Proc::spawn("seed-orchestrator", Path::new("python3"), &argv, &[]);
    p.wait_line("ORCHESTRATOR READY", Duration::from_secs(60))
        .await;
    p
}

/// A Floodgate driver on `prefix` that no Floodgate orchestrator may be listening to; waits
/// until it has registered.
pub async fn floodgate_driver(dir: &Path, prefix: &str, id: &str, extra: &[&str]) -> Proc {
    let mut p = spawn_floodgate_driver(dir, &kafka(), prefix, id, extra);
    p.wait_line("driver registered", Duration::from_secs(30))
        .await;
    p
}

/// A Floodgate driver on broker `bootstrap`, started without waiting for anything.
pub fn spawn_floodgate_driver(
    dir: &Path,
    bootstrap: &str,
    prefix: &str,
    id: &str,
    extra: &[&str],
) -> Proc {
    let store = dir
        .join(format!("{id}.sqlite"))
        .to_string_lossy()
        .into_owned();
    let mut args = vec![
        "driver",
        "--kafka",
        bootstrap,
        "--orchestrator",
        "127.0.0.1:1",
        "--id",
        id,
        "--topic-prefix",
        prefix,
        "--store",
        &store,
    ];
    args.extend_from_slice(extra);
    Proc::spawn(
        id,
        &floodgate_bin(),
        &args,
        &[("TOKIO_WORKER_THREADS", "2")],
    )
}

/// Every record on partition 0 of `topic` so far: (broker timestamp in ms, payload).
pub fn read_topic(topic: &str) -> Vec<(i64, Vec<u8>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (low, high) = c
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(low))
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.len() < (high - low) as usize && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let ts = m.timestamp().to_millis().unwrap_or(0);
            out.push((ts, m.payload().unwrap_or_default().to_vec()));
        }
    }
    out
}

/// A Kafka broker of a test's own (`scripts/kafka.sh`), which the test may stop and start
/// again; stopped, and its data deleted, when dropped.
pub struct Broker {
    dir: tempfile::TempDir,
    pub bootstrap: String,
}

fn kafka_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka.sh")
}

impl Broker {
    pub fn start() -> Broker {
        Self::start_with_env(&[])
    }

    /// A broker started with extra environment for scripts/kafka.sh.
    pub fn start_with_env(env: &[(&str, &str)]) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("bash")
            .arg(kafka_script())
            .arg("start")
            .arg(dir.path())
            .env_remove("KAFKA_BOOTSTRAP")
            .env("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m")
            .envs(env.iter().copied())
            .output()
            .expect("run scripts/kafka.sh");
        assert!(
            out.status.success(),
            "a broker of the test's own did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bootstrap = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        Broker { dir, bootstrap }
    }

    /// The directory the broker's files live in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the broker, waits `down`, and starts it again with its data; returns once it
    /// answers again.
    pub async fn bounce(&self, down: Duration) {
        let dir = self.dir.path().to_path_buf();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("bash")
                .arg(kafka_script())
                .arg("bounce")
                .arg(&dir)
                .arg(down.as_secs().to_string())
                .env_remove("KAFKA_BOOTSTRAP")
                .env("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m")
                .output()
                .expect("run scripts/kafka.sh")
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "the bounce failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(kafka_script())
            .arg("stop")
            .arg(self.dir.path())
            .env_remove("KAFKA_BOOTSTRAP")
            .output();
    }
}

/// Runs the `floodgate` binary (the CLI) to its end: its exit code, stdout and stderr.
pub async fn floodgate<S: AsRef<std::ffi::OsStr>>(
    args: impl IntoIterator<Item = S>,
) -> (i32, String, String) {
    let out = tokio::process::Command::new(floodgate_bin())
        .args(args)
        .env_remove("FLOODGATE_ORCHESTRATOR")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A PATCH as the CLI makes it: a JSON body.
pub async fn patch(url: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .patch(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PATCH {url}: {e}"));
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Re-split on loss (issue 13), as its tests set it up: 12,000 requests at 1,200 req/s in total,
/// shared equally by the cluster's drivers, with a 2 s fail-safe; returns the test's ID once
/// driver `lost` has reported 1,200 sent, killed (SIGKILL) then. With `replacement`, one more
/// driver starts once the test runs (idle, not a participant), as a Deployment's new pod would.
pub async fn kill_mid_shared_test(
    c: &mut Cluster,
    target: &Target,
    lost: usize,
    replacement: bool,
) -> String {
    let spec = json!({"test_type": "avalanche", "total_requests": 12_000, "total_rate": 1_200.0,
        "split": "equal", "concurrency": 8, "fail_safe_ms": 2000, "target_url": target.url()});
    let id = c.start_test(spec).await;
    if replacement {
        c.add_driver().await;
        c.wait_alive(c.drivers.len()).await;
    }
    let lost_id = Cluster::driver_id(lost);
    eventually(
        &format!("{lost_id} to report 1,200 sent"),
        Duration::from_secs(30),
        async || {
            let v = c.test(&id).await;
            let drivers = v["per_driver"].as_array()?;
            let d = drivers
                .iter()
                .find(|d| d["driver_id"] == lost_id.as_str())?;
            (d["sent"].as_u64()? >= 1_200).then_some(())
        },
    )
    .await;
    c.drivers[lost].kill();
    id
}

/// Each driver of a test view as (ID, requests sent, requests it was to send).
pub fn driver_counts(v: &Value) -> Vec<(String, u64, u64)> {
    let drivers = v["per_driver"].as_array().cloned().unwrap_or_default();
    drivers
        .iter()
        .map(|d| {
            let id = d["driver_id"].as_str().unwrap_or_default().to_string();
            let n = |k: &str| d[k].as_u64().unwrap_or(0);
            (id, n("sent"), n("requests_total"))
        })
        .collect()
}

/// A JSON number, or a panic naming what it is instead.
pub fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}
