//! Kafka security end to end: an orchestrator and two drivers that reach the broker only through
//! its SASL_SSL listener (TLS verified against the broker's CA; PLAIN, SCRAM-SHA-256 and
//! SCRAM-SHA-512 all used) run a test to exact counts, and nodes with a wrong password stop at
//! once with the broker's refusal instead of waiting for a broker that will never accept them.
//!
//! The broker is the one `make test` starts, with `KAFKA_SASL_SSL=1` (scripts/kafka.sh), which
//! exports KAFKA_SASL_SSL_BOOTSTRAP, KAFKA_SASL_SSL_CA, KAFKA_SASL_USERNAME and
//! KAFKA_SASL_PASSWORD.

mod common;

use common::{floodgate_bin, get, spawn_floodgate_driver, Proc, Target};
use serde_json::json;
use std::time::{Duration, Instant};

struct SaslSsl {
    bootstrap: String,
    ca: String,
    username: String,
    password: String,
}

fn sasl_ssl() -> SaslSsl {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: these tests need a broker with a SASL_SSL listener. Run `make test`, or \
                 `KAFKA_SASL_SSL=1 bash scripts/kafka.sh start DIR` and `eval \"$(bash scripts/kafka.sh sasl-env DIR)\"`"
            )
        })
    };
    SaslSsl {
        bootstrap: var("KAFKA_SASL_SSL_BOOTSTRAP"),
        ca: var("KAFKA_SASL_SSL_CA"),
        username: var("KAFKA_SASL_USERNAME"),
        password: var("KAFKA_SASL_PASSWORD"),
    }
}

/// The security flags of a node using `mechanism`; the password goes in the environment, as a
/// Kubernetes Secret would give it.
fn security_flags<'a>(s: &'a SaslSsl, mechanism: &'a str) -> Vec<&'a str> {
    vec![
        "--kafka-security-protocol",
        "sasl_ssl",
        "--kafka-sasl-mechanism",
        mechanism,
        "--kafka-sasl-username",
        &s.username,
        "--kafka-ssl-ca",
        &s.ca,
    ]
}

fn orchestrator(dir: &std::path::Path, prefix: &str, mechanism: &str, password: &str) -> Proc {
    let s = sasl_ssl();
    let store = dir.join("orchestrator.sqlite");
    let mut args = vec![
        "orchestrator",
        "--kafka",
        &s.bootstrap,
        "--listen",
        "127.0.0.1:0",
        "--topic-prefix",
        prefix,
        "--store",
        store.to_str().unwrap_or_default(),
        "--start-delay-ms",
        "500",
    ];
    args.extend(security_flags(&s, mechanism));
    Proc::spawn(
        "orchestrator",
        &floodgate_bin(),
        &args,
        &[
            ("TOKIO_WORKER_THREADS", "2"),
            ("FLOODGATE_KAFKA_SASL_PASSWORD", password),
        ],
    )
}

fn driver(dir: &std::path::Path, prefix: &str, id: &str, mechanism: &str, password: &str) -> Proc {
    let s = sasl_ssl();
    let mut extra = security_flags(&s, mechanism);
    extra.extend(["--kafka-sasl-password", password]);
    spawn_floodgate_driver(dir, &s.bootstrap, prefix, id, &extra)
}

fn prefix() -> String {
    format!("t{}.", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_over_sasl_ssl_run_a_test_to_exact_counts() {
    let s = sasl_ssl();
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = prefix();
    let target = Target::start(&[]).await;
    let mut orch = orchestrator(dir.path(), &prefix, "SCRAM-SHA-256", &s.password);
    let line = orch
        .wait_line("orchestrator listening on", Duration::from_secs(60))
        .await;
    let api = line
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    let mut drivers = [("driver-0", "PLAIN"), ("driver-1", "SCRAM-SHA-512")]
        .map(|(id, mech)| driver(dir.path(), &prefix, id, mech, &s.password));
    for d in &mut drivers {
        d.wait_line("driver registered", Duration::from_secs(60))
            .await;
    }
    common::eventually("2 alive drivers", Duration::from_secs(30), async || {
        let v = get(&format!("http://{api}/api/v1/drivers")).await;
        let alive = v["drivers"]
            .as_array()?
            .iter()
            .filter(|d| d["alive"] == true)
            .count();
        (alive == 2).then_some(())
    })
    .await;
    let (status, created) = common::post(
        &format!("http://{api}/api/v1/tests"),
        Some(json!({
            "test_type": "avalanche",
            "requests_per_driver": 500,
            "throughput_per_driver": 1000,
            "concurrency": 4,
            "target_url": target.url(),
            "trigger": true,
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap_or_default().to_string();
    let done = common::eventually("the test to end", Duration::from_secs(60), async || {
        let v = get(&format!("http://{api}/api/v1/tests/{id}")).await;
        let ended = matches!(
            v["status"].as_str(),
            Some("completed" | "failed" | "stopped")
        );
        (ended && v["settled"] == true).then_some(v)
    })
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["aggregate"]["sent"], 1000, "{done}");
    assert_eq!(done["aggregate"]["ok"], 1000, "{done}");
    assert_eq!(target.metrics().await.0, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_at_once_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = prefix();
    let started = Instant::now();
    let mut nodes = [
        orchestrator(dir.path(), &prefix, "PLAIN", "not-the-password"),
        driver(
            dir.path(),
            &prefix,
            "d",
            "SCRAM-SHA-512",
            "not-the-password",
        ),
    ];
    for node in &mut nodes {
        // Well within the start-up wait (120 s) that a broker that is down would get.
        let code = node.exit_code(Duration::from_secs(45)).await;
        assert_ne!(code, Some(0), "{}", node.output());
        let out = node.output();
        assert!(
            out.contains("Kafka refused the connection") && out.contains("Authentication"),
            "{}: {out}",
            node.name
        );
    }
    eprintln!("refused after {:?}", started.elapsed());
}
