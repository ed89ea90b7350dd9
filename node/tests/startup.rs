//! Start-up against a broker that is not there yet, then has only just started (the race that
//! made an orchestrator exit with `NotLeaderForPartition` on a fresh machine): every node waits,
//! says so, and then works. This test starts its own broker (scripts/kafka.sh) on a port chosen
//! in advance, after the nodes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A broker of this test's own, stopped (and its data deleted) when dropped.
struct OwnBroker {
    dir: PathBuf,
}

impl OwnBroker {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka.sh")
    }

    /// Starts a broker on `port` and waits until it answers.
    fn start(dir: &Path, port: u16) -> OwnBroker {
        let out = Command::new("bash")
            .arg(Self::script())
            .args(["start", dir.to_str().unwrap()])
            .env_remove("KAFKA_BOOTSTRAP")
            .env("KAFKA_PORT", port.to_string())
            .env("KAFKA_HEAP_OPTS", "-Xms128m -Xmx384m")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kafka.sh start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        OwnBroker {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .args(["stop", self.dir.to_str().unwrap()])
            .env_remove("KAFKA_BOOTSTRAP")
            .output();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_before_their_broker_wait_for_it_then_run_a_test() {
    let target = Target::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let prefix = "early.";
    let o_store = dir.path().join("o.sqlite").to_string_lossy().into_owned();
    let mut orchestrator = Proc::spawn(
        "orchestrator",
        &floodgate_bin(),
        &[
            "orchestrator",
            "--kafka",
            &bootstrap,
            "--listen",
            "127.0.0.1:0",
            "--topic-prefix",
            prefix,
            "--store",
            &o_store,
            "--start-delay-ms",
            "500",
        ],
        &[("TOKIO_WORKER_THREADS", "2")],
    );
    let mut drivers: Vec<Proc> = ["driver-0", "driver-1"]
        .into_iter()
        .map(|id| spawn_floodgate_driver(dir.path(), &bootstrap, prefix, id, &[]))
        .collect();
    // Every node says it is waiting, and none gives up.
    orchestrator
        .wait_line("Kafka is not ready yet", Duration::from_secs(30))
        .await;
    for d in &mut drivers {
        d.wait_line("Kafka is not ready yet", Duration::from_secs(30))
            .await;
    }

    let broker_dir = dir.path().join("kafka");
    let _broker = OwnBroker::start(&broker_dir, port);
    let line = orchestrator
        .wait_line("orchestrator listening on", Duration::from_secs(90))
        .await;
    let api = line.split_whitespace().last().unwrap().to_string();
    for d in &mut drivers {
        d.wait_line("driver registered", Duration::from_secs(90))
            .await;
    }
    let url = |p: &str| format!("http://{api}{p}");
    eventually("2 alive drivers", Duration::from_secs(30), async || {
        (get(&url("/api/v1/drivers")).await["alive"] == 2).then_some(())
    })
    .await;
    let spec = json!({"test_type": "avalanche", "requests_per_driver": 500, "target_url": target.url(), "trigger": true});
    let (status, v) = post(&url("/api/v1/tests"), Some(spec)).await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let v = eventually("the test to end", Duration::from_secs(60), async || {
        let v = get(&url(&format!("/api/v1/tests/{id}"))).await;
        (v["settled"] == true).then_some(v)
    })
    .await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(target.metrics().await, (1000, 1000));
}
