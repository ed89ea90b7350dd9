//! HTTPS and HTTP/2 end to end (issue 12, items 1 and 2): a real Kafka broker, two drivers,
//! the real target over TLS (a CA it generates) and h2c. Counts are checked at the target's
//! `/metrics`, read over TLS with the same CA.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIN: Duration = Duration::from_secs(60);

/// A target serving HTTPS (HTTP/1.1 and h2 by ALPN) with a CA of its own, and that CA's PEM.
async fn tls_target(dir: &std::path::Path) -> (Target, String) {
    let ca_path = dir.join("target-ca.pem");
    let target = Target::start(&["--tls-self-signed", ca_path.to_str().unwrap()]).await;
    let pem = std::fs::read_to_string(&ca_path).unwrap();
    (target, pem)
}

/// `GET /metrics` over TLS, trusting `ca_pem`: (requests received, responses sent).
async fn metrics_tls(addr: &str, ca_pem: &str) -> (u64, u64) {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    // The server closes after the response (Connection: close); an unclean close is fine.
    let _ = tls.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
    (
        v["requests_received"].as_u64().unwrap(),
        v["responses_sent"].as_u64().unwrap(),
    )
}

/// The one sample of `name` in a Prometheus exposition whose labels include every `with`.
fn sample(text: &str, name: &str, with: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (head, value) = l.rsplit_once(' ')?;
            let labels = head.strip_prefix(name)?;
            let all = with
                .iter()
                .all(|(k, v)| labels.contains(&format!("{k}=\"{v}\"")));
            (labels.starts_with('{') && all).then(|| value.parse().unwrap())
        })
        .collect();
    assert_eq!(found.len(), 1, "{name} {with:?} in\n{text}");
    found[0]
}

async fn scrape(addr: &str) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Prometheus shows each TLS handshake once, apart from latency: on every driver (its
/// histogram and its resumed count equal what the view shows for it) and merged on the
/// orchestrator.
async fn assert_handshakes_in_prometheus(c: &Cluster, v: &Value, connections: u64) {
    let t = v["id"].as_str().unwrap();
    let o = scrape(&c.api).await;
    let ids = [("test_id", t)];
    let count = |name: &str| sample(&o, name, &ids);
    assert_eq!(
        count("floodgate_test_tls_handshake_summary_seconds_count"),
        (2 * connections) as f64
    );
    assert_eq!(
        count("floodgate_test_connect_summary_seconds_count"),
        (2 * connections) as f64
    );
    let drivers = get(&c.url("/api/v1/drivers")).await;
    for d in drivers["drivers"].as_array().unwrap() {
        let id = d["id"].as_str().unwrap();
        let per = v["per_driver"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["driver_id"] == id)
            .unwrap();
        let resumed = per["tls_resumed"].as_u64().unwrap_or(0) as f64;
        let ids = [("test_id", t), ("node_id", id)];
        assert_eq!(
            sample(&o, "floodgate_test_tls_resumed_total", &ids),
            resumed
        );
        let text = scrape(d["address"].as_str().unwrap()).await;
        let on_driver = |name: &str| sample(&text, name, &ids);
        assert_eq!(
            on_driver("floodgate_driver_tls_handshake_duration_seconds_count"),
            connections as f64
        );
        assert_eq!(
            on_driver("floodgate_driver_connect_duration_seconds_count"),
            connections as f64
        );
        assert_eq!(on_driver("floodgate_driver_tls_resumed_total"), resumed);
        // Latency counts requests, not connections.
        assert_eq!(
            on_driver("floodgate_driver_latency_seconds_count"),
            per["responses"].as_f64().unwrap()
        );
    }
}

fn spec(url: &str, n: u64, extra: Value) -> Value {
    let mut s = json!({"test_type": "avalanche", "requests_per_driver": n, "target_url": url,
        "concurrency": 4});
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s
}

/// Every driver sent `n` and got `n` 2xx, and each opened `connections` connections.
fn assert_exact(v: &Value, n: u64, connections: u64, tls: bool) {
    assert_eq!(v["status"], "completed", "{v}");
    let agg = &v["aggregate"];
    assert_eq!(
        (agg["sent"].as_u64(), agg["ok"].as_u64()),
        (Some(2 * n), Some(2 * n)),
        "{agg}"
    );
    assert_eq!(agg["error_total"], 0, "{agg}");
    for d in v["per_driver"].as_array().unwrap() {
        assert_eq!(
            (d["sent"].as_u64(), d["ok"].as_u64()),
            (Some(n), Some(n)),
            "{d}"
        );
        // Handshakes are their own figures, one per connection, merged at the orchestrator.
        assert_eq!(d["connect_time"]["count"], connections, "{d}");
        let tls_count = if tls { json!(connections) } else { Value::Null };
        assert_eq!(d["tls_handshake"]["count"], tls_count, "{d}");
    }
    assert_eq!(agg["connect_time"]["count"], 2 * connections, "{agg}");
    if tls {
        assert_eq!(agg["tls_handshake"]["count"], 2 * connections, "{agg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_h2_through_two_drivers_count_exactly_at_the_target() {
    let c = Cluster::start(2).await;
    let (target, ca) = tls_target(c.dir.path()).await;
    let https = format!(
        "https://localhost:{}/ping",
        target.addr.rsplit(':').next().unwrap()
    );

    // HTTPS, HTTP/1.1 keep-alive: four connections per driver, four handshakes.
    let v = c
        .run_test(spec(&https, 400, json!({"tls": {"ca_pem": ca}})), MIN)
        .await;
    assert_exact(&v, 400, 4, true);
    assert_handshakes_in_prometheus(&c, &v, 4).await;
    assert_eq!(v["spec"]["tls"]["ca_pem"], ca);
    assert_eq!(metrics_tls(&target.addr, &ca).await, (800, 800));

    // h2 over TLS (ALPN), eight streams on each of four connections.
    let v = c
        .run_test(
            spec(
                &https,
                400,
                json!({"http_version": "2", "streams_per_connection": 8, "tls": {"ca_pem": ca}}),
            ),
            MIN,
        )
        .await;
    assert_exact(&v, 400, 4, true);
    assert_eq!(v["spec"]["http_version"], "2");
    // The metrics request itself is not a /ping, so not counted.
    assert_eq!(metrics_tls(&target.addr, &ca).await, (1600, 1600));

    // h2c: HTTP/2 with prior knowledge on a plain port.
    let plain = Target::start(&["--h2c"]).await;
    let v = c
        .run_test(
            spec(
                &plain.url(),
                300,
                json!({"http_version": "2", "streams_per_connection": 4}),
            ),
            MIN,
        )
        .await;
    assert_exact(&v, 300, 4, false);
    assert_eq!(plain.metrics().await, (600, 600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_fails_every_request_clearly_and_insecure_passes() {
    let c = Cluster::start(2).await;
    let (target, ca) = tls_target(c.dir.path()).await;
    let https = format!(
        "https://127.0.0.1:{}/ping",
        target.addr.rsplit(':').next().unwrap()
    );

    // System roots only: every request is a counted connect error, and the view says why.
    let v = c.run_test(spec(&https, 25, json!({})), MIN).await;
    let agg = &v["aggregate"];
    assert_eq!(agg["errors"]["connect"], 50, "{v}");
    assert_eq!(
        (agg["ok"].as_u64(), agg["sent"].as_u64()),
        (Some(0), Some(50))
    );
    let why = agg["first_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("TLS handshake") && why.contains("UnknownIssuer"),
        "first_error: {why}"
    );
    for d in v["per_driver"].as_array().unwrap() {
        assert!(
            d["first_error"]
                .as_str()
                .is_some_and(|e| e.contains("tls.ca_pem")),
            "{d}"
        );
    }
    assert_eq!(metrics_tls(&target.addr, &ca).await, (0, 0));

    let v = c
        .run_test(
            spec(&https, 25, json!({"tls": {"insecure_skip_verify": true}})),
            MIN,
        )
        .await;
    assert_exact(&v, 25, 4, true);
    assert_eq!(metrics_tls(&target.addr, &ca).await, (50, 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transport_fields_get_a_400_naming_the_field() {
    let c = Cluster::start(2).await;
    let url = c.url("/api/v1/tests");
    let https = "https://127.0.0.1:9/ping";
    let cases = [
        (json!({"http_version": "3"}), "http_version"),
        (
            json!({"streams_per_connection": 4}),
            "streams_per_connection",
        ),
        (
            json!({"http_version": "2", "streams_per_connection": 100_000}),
            "streams_per_connection",
        ),
        (
            json!({"tls": {"ca_pem": "not a certificate"}}),
            "tls.ca_pem",
        ),
        (
            json!({"tls": {"server_name": "no spaces allowed"}}),
            "tls.server_name",
        ),
        (json!({"tls": {"skip": true}}), "skip"),
    ];
    for (extra, field) in cases {
        let (status, v) = post(&url, Some(spec(https, 5, extra.clone()))).await;
        assert_eq!(status, 400, "{extra}: {v}");
        assert_eq!(v["field"], field, "{extra}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_the_ca_file_inline_and_runs_h2() {
    let c = Cluster::start(2).await;
    let (target, ca) = tls_target(c.dir.path()).await;
    let ca_path = c.dir.path().join("target-ca.pem");
    let https = format!(
        "https://localhost:{}/ping",
        target.addr.rsplit(':').next().unwrap()
    );
    let api = c.api.clone();
    let out = tokio::process::Command::new(floodgate_bin())
        .args([
            "test",
            "run",
            "--orchestrator",
            &api,
            "--type",
            "avalanche",
            "-n",
            "100",
            "-c",
            "2",
            "--url",
            &https,
            "--http2",
            "--streams",
            "4",
            "--ca-file",
            ca_path.to_str().unwrap(),
            "-o",
            "json",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(metrics_tls(&target.addr, &ca).await, (200, 200));
}
