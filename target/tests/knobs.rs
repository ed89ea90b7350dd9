//! End-to-end tests of the fault-injection and measurement knobs: error ratio, latency, arrival log.

mod support;

use std::time::{Duration, Instant};

use floodgate_target::Config;
use hyper::{Method, StatusCode};
use support::{ping_concurrently, within_deadline, TestServer};

fn config() -> Config {
    Config::default()
}

async fn count_injected(error_ratio: f64, connections: usize, per_connection: usize) -> usize {
    let server = TestServer::start(Config {
        error_ratio,
        ..config()
    })
    .await;
    let statuses = ping_concurrently(server.addr, connections, per_connection).await;
    let total = connections * per_connection;
    assert_eq!(statuses.len(), total);
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::INTERNAL_SERVER_ERROR));
    // Injected errors are responses too.
    let counters = server.connect().await.metrics().await;
    assert_eq!(counters.requests_received, total as u64);
    assert_eq!(counters.responses_sent, total as u64);
    statuses
        .iter()
        .filter(|s| **s == StatusCode::INTERNAL_SERVER_ERROR)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn error_ratio_injects_the_configured_fraction() {
    within_deadline(async {
        assert_eq!(count_injected(1.0, 4, 50).await, 200);
        assert_eq!(count_injected(0.0, 4, 50).await, 0);
        // Binomial(2000, 0.5): sd ~= 22.4, so +-150 is ~6.7 sd: never flaky,
        // still catches a ratio that is off by 0.075.
        let injected = count_injected(0.5, 8, 250).await;
        assert!(
            (850..=1150).contains(&injected),
            "{injected} of 2000 injected at ratio 0.5"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_error_body_is_json() {
    within_deadline(async {
        let server = TestServer::start(Config {
            error_ratio: 1.0,
            ..config()
        })
        .await;
        let reply = server.connect().await.get("/ping").await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(reply.text(), r#"{"error":"injected"}"#);
        assert_eq!(reply.header("content-type"), Some("application/json"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_latency_is_at_least_the_knob() {
    within_deadline(async {
        let server = TestServer::start(Config {
            latency_ms: 25.5,
            latency_jitter_ms: 5.0,
            ..config()
        })
        .await;
        let mut client = server.connect().await;
        for _ in 0..5 {
            let started = Instant::now();
            let reply = client.get("/ping").await;
            let elapsed = started.elapsed();
            assert_eq!(reply.status, StatusCode::OK);
            assert!(elapsed >= Duration::from_micros(25_500), "{elapsed:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_never_delayed() {
    within_deadline(async {
        // A latency far above any scheduling delay, so "not delayed" cannot be a busy
        // machine's luck either way.
        let server = TestServer::start(Config {
            latency_ms: 3_000.0,
            ..config()
        })
        .await;
        let mut client = server.connect().await;
        let started = Instant::now();
        client.get("/metrics").await;
        assert!(started.elapsed() < Duration::from_millis(1_500));
    })
    .await;
}

/// With one worker thread, a latency implemented by blocking the thread would
/// serialise the requests (20 x 100 ms = 2 s); a timer-based one overlaps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn latency_does_not_block_worker_threads() {
    within_deadline(async {
        let server = TestServer::start(Config {
            latency_ms: 100.0,
            ..config()
        })
        .await;
        let started = Instant::now();
        let statuses = ping_concurrently(server.addr, 20, 1).await;
        let elapsed = started.elapsed();
        assert!(statuses.iter().all(|s| *s == StatusCode::OK));
        assert!(elapsed >= Duration::from_millis(100));
        // Serialised they would take 2 s at least.
        assert!(elapsed < Duration::from_millis(1_900), "{elapsed:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn arrivals_are_bounded_sorted_and_reset() {
    within_deadline(async {
        let server = TestServer::start(Config {
            record_arrivals: 10,
            ..config()
        })
        .await;
        ping_concurrently(server.addr, 5, 5).await;
        let mut client = server.connect().await;
        let reply = client.get("/arrivals").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let arrivals: Vec<u64> = serde_json::from_value(reply.json()["arrivals_us"].clone())
            .expect("arrivals_us is a list of integers");
        assert_eq!(arrivals.len(), 10);
        assert_eq!(arrivals[0], 0);
        assert!(arrivals.windows(2).all(|w| w[0] <= w[1]));
        assert!(
            reply.json()["first_unix_us"]
                .as_u64()
                .is_some_and(|t| t > 0),
            "the first arrival on the wall clock"
        );
        assert_eq!(client.metrics().await.requests_received, 25);

        client.request(Method::POST, "/reset", &[]).await;
        assert_eq!(
            client.get("/arrivals").await.text(),
            r#"{"arrivals_us":[]}"#
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrivals_measure_the_gaps_of_a_paced_client() {
    within_deadline(async {
        let server = TestServer::start(Config {
            record_arrivals: 100,
            ..config()
        })
        .await;
        let mut client = server.connect().await;
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        // A late tick must not be followed by a catch-up burst.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Each arrival lies between its request's send and its response, so
        // the span the target measured is bounded by what the client saw,
        // however late a busy machine makes any one request.
        let mut sent = Vec::new();
        let mut answered = Vec::new();
        for _ in 0..5 {
            ticks.tick().await;
            sent.push(std::time::Instant::now());
            client.get("/ping").await;
            answered.push(std::time::Instant::now());
        }
        let arrivals: Vec<u64> =
            serde_json::from_value(client.get("/arrivals").await.json()["arrivals_us"].clone())
                .expect("arrivals");
        assert_eq!(arrivals.len(), 5);
        let us = |d: Duration| u64::try_from(d.as_micros()).expect("span");
        let lower = us(sent[4].saturating_duration_since(answered[0]));
        let upper = us(answered[4].duration_since(sent[0]));
        assert!(lower >= 60_000, "three full 20 ms gaps at least: {lower}");
        assert!(
            (lower..=upper).contains(&arrivals[4]),
            "{arrivals:?} outside {lower}..={upper}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrivals_are_empty_when_recording_is_off() {
    within_deadline(async {
        let server = TestServer::start(config()).await;
        let mut client = server.connect().await;
        client.get("/ping").await;
        assert_eq!(
            client.get("/arrivals").await.text(),
            r#"{"arrivals_us":[]}"#
        );
    })
    .await;
}
