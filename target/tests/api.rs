//! End-to-end tests of the HTTP API over loopback: routes, counters, Prometheus form, reset, shutdown.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use floodgate_target::{Config, Counters, DRAIN_GRACE};
use hyper::{Method, StatusCode};
use support::{eventually, ping_concurrently, within_deadline, Client, TestServer};

fn config() -> Config {
    Config::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers_pong_as_json() {
    within_deadline(async {
        let server = TestServer::start(config()).await;
        let reply = server.connect().await.get("/ping").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), r#"{"message":"pong"}"#);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("content-length"), Some("18"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_concurrent_pings_exactly() {
    within_deadline(async {
        let server = TestServer::start(config()).await;
        let statuses = ping_concurrently(server.addr, 4, 25).await;
        assert_eq!(statuses.len(), 100);
        assert!(statuses.iter().all(|s| *s == StatusCode::OK));

        let mut client = server.connect().await;
        let reply = client.get("/metrics").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(
            reply.json(),
            serde_json::json!({
                "requests_received": 100,
                "responses_sent": 100,
                "paths": {"/ping": 100}
            })
        );
        // Scraping must not move the counters.
        assert_eq!(
            client.metrics().await,
            Counters {
                requests_received: 100,
                responses_sent: 100
            }
        );
    })
    .await;
}

/// Minimal check of the Prometheus text exposition format (0.0.4): HELP/TYPE
/// before samples, valid metric names, numeric values, trailing newline. Samples are keyed
/// by name and labels as written (`name{path="/x"}`).
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    fn valid_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    assert!(text.ends_with('\n'), "exposition must end with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has text");
            assert!(valid_name(name), "bad name {name:?}");
            assert!(!samples.contains_key(name), "HELP after sample for {name}");
            assert!(
                helps.insert(name.into(), help.into()).is_none(),
                "duplicate HELP"
            );
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(valid_name(name), "bad name {name:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad type {kind:?}"
            );
            assert!(!samples.contains_key(name), "TYPE after sample for {name}");
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "duplicate TYPE"
            );
        } else if line.starts_with('#') || line.trim().is_empty() {
            continue;
        } else {
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let name = series.split('{').next().unwrap_or_default();
            assert!(valid_name(name), "bad name {name:?}");
            if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
                assert!(
                    labels.starts_with('{') && labels.ends_with("\"}"),
                    "bad labels {labels:?}"
                );
            }
            let value: f64 = value.trim().parse().expect("numeric sample value");
            assert!(
                samples.insert(series.to_string(), value).is_none(),
                "duplicate sample"
            );
        }
    }
    for series in samples.keys() {
        let name = series.split('{').next().unwrap_or_default();
        assert_eq!(
            types.get(name).map(String::as_str),
            Some("counter"),
            "{name}"
        );
        assert!(helps.contains_key(name), "{name} lacks HELP");
        assert!(
            name.ends_with("_total"),
            "counter {name} should end in _total"
        );
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_prometheus_text_form() {
    within_deadline(async {
        let server = TestServer::start(config()).await;
        let mut client = server.connect().await;
        for _ in 0..7 {
            client.get("/ping").await;
        }
        let scraper_accept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        for reply in [
            client
                .request(Method::GET, "/metrics", &[("accept", "text/plain")])
                .await,
            client
                .request(Method::GET, "/metrics", &[("accept", scraper_accept)])
                .await,
            client.get("/metrics?format=prometheus").await,
        ] {
            assert_eq!(reply.status, StatusCode::OK);
            assert!(reply
                .header("content-type")
                .is_some_and(|ct| ct.starts_with("text/plain")));
            let samples = parse_prometheus(reply.text());
            assert_eq!(samples["floodgate_target_requests_received_total"], 7.0);
            assert_eq!(samples["floodgate_target_responses_sent_total"], 7.0);
            assert_eq!(
                samples[r#"floodgate_target_path_requests_total{path="/ping"}"#],
                7.0
            );
            assert_eq!(samples.len(), 3);
        }
        // A JSON client still gets JSON.
        let reply = client
            .request(Method::GET, "/metrics", &[("accept", "application/json")])
            .await;
        assert_eq!(reply.header("content-type"), Some("application/json"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_returns_and_zeroes_counters() {
    within_deadline(async {
        let server = TestServer::start(config()).await;
        let mut client = server.connect().await;
        for _ in 0..3 {
            client.get("/ping").await;
        }
        let reply = client.request(Method::POST, "/reset", &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.counters(),
            Counters {
                requests_received: 3,
                responses_sent: 3
            }
        );
        assert_eq!(
            client.metrics().await,
            Counters {
                requests_received: 0,
                responses_sent: 0
            }
        );
        client.get("/ping").await;
        assert_eq!(client.metrics().await.requests_received, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    within_deadline(async {
        let server = TestServer::start(config()).await;
        let mut client = server.connect().await;
        for path in ["/", "/pingx", "/ping/", "/nope?x=1"] {
            let reply = client.get(path).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(reply.text(), r#"{"error":"not found"}"#);
            assert_eq!(reply.header("content-type"), Some("application/json"));
        }
        for (method, path, allow) in [
            (Method::POST, "/ping", "GET"),
            (Method::DELETE, "/metrics", "GET"),
            (Method::PUT, "/arrivals", "GET"),
            (Method::GET, "/reset", "POST"),
        ] {
            let reply = client.request(method.clone(), path, &[]).await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(reply.header("allow"), Some(allow));
        }
        // Neither kind of rejection counts as a ping.
        assert_eq!(client.metrics().await.requests_received, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections_and_stops_accepting() {
    within_deadline(async {
        let server = TestServer::start(config()).await;
        let addr = server.addr;
        // An idle keep-alive connection must not hold the shutdown for the grace period.
        let mut idle = server.connect().await;
        idle.get("/ping").await;
        let took = server.stop().await;
        assert!(took < DRAIN_GRACE, "shutdown took {took:?}");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_requests_finish() {
    within_deadline(async {
        let server = TestServer::start(Config {
            latency_ms: 200.0,
            ..config()
        })
        .await;
        let mut client = Client::connect(server.addr).await;
        let in_flight = tokio::spawn(async move { client.get("/ping").await });
        let state = std::sync::Arc::clone(&server.state);
        assert!(
            eventually(Duration::from_secs(10), || state
                .counters()
                .requests_received
                == 1)
            .await
        );
        server.stop().await;
        let reply = in_flight.await.expect("in-flight request");
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(state.counters().responses_sent, 1);
    })
    .await;
}
