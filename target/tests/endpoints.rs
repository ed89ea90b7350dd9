//! End-to-end tests of /echo, /status/{code} and the counts by path, over loopback HTTP/1.1.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use floodgate_target::{Config, MAX_ECHO_BODY, MAX_PATHS, OTHER};
use hyper::{Method, StatusCode};
use support::{within_deadline, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `head` (request line and headers, without the blank line) and `body` as written, on a
/// connection of its own, and returns the status and the response body.
async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!("{head}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    let status_line = std::str::from_utf8(&response[..split]).expect("utf-8 head");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, response[split + 4..].to_vec())
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("JSON body")
}

/// `body` in HTTP/1.1 chunked coding, 64 KiB a chunk.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(64 << 10) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_returns_the_method_path_query_headers_and_body() {
    within_deadline(async {
        let server = TestServer::start(Config::default()).await;
        let body = "héllo wörld";
        let (status, reply) = raw(
            server.addr,
            &format!(
                "PUT /echo?a=1&b=two HTTP/1.1\r\nX-Test: one\r\nX-Test: two\r\nContent-Length: {}",
                body.len()
            ),
            body.as_bytes(),
        )
        .await;
        assert_eq!(status, 200);
        let v = json(&reply);
        assert_eq!(v["method"], "PUT");
        assert_eq!(v["path"], "/echo");
        assert_eq!(v["query"], "a=1&b=two");
        assert_eq!(v["body"], body);
        assert_eq!(v["body_len"], body.len());
        let headers: Vec<(String, String)> =
            serde_json::from_value(v["headers"].clone()).expect("[[name, value]]");
        let tests: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n == "x-test")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(tests, ["one", "two"]);
        assert!(headers.contains(&("host".into(), "127.0.0.1".into())));

        // No query, no body; invalid UTF-8 is replaced but its raw length is kept.
        let mut client = server.connect().await;
        let v = client.get("/echo").await.json();
        assert_eq!(
            (v["method"].as_str(), v["query"].is_null()),
            (Some("GET"), true)
        );
        assert_eq!(
            (v["body"].as_str(), v["body_len"].as_u64()),
            (Some(""), Some(0))
        );
        let (status, reply) = raw(
            server.addr,
            "POST /echo HTTP/1.1\r\nContent-Length: 3",
            &[b'a', 0xff, b'b'],
        )
        .await;
        assert_eq!(status, 200);
        let v = json(&reply);
        assert_eq!(
            (v["body"].as_str(), v["body_len"].as_u64()),
            (Some("a\u{fffd}b"), Some(3))
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_refuses_a_body_over_the_bound_with_413() {
    within_deadline(async {
        let server = TestServer::start(Config::default()).await;
        // A declared length over the bound is refused before the body is sent.
        let (status, reply) = raw(
            server.addr,
            &format!(
                "POST /echo HTTP/1.1\r\nContent-Length: {}",
                MAX_ECHO_BODY + 1
            ),
            b"",
        )
        .await;
        assert_eq!(status, 413);
        assert_eq!(json(&reply)["field"], "body");

        // Without a declared length the body is read up to the bound, then refused.
        let over = vec![b'x'; MAX_ECHO_BODY + 1];
        let head = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked";
        let (status, reply) = raw(server.addr, head, &chunked(&over)).await;
        assert_eq!(status, 413);
        assert_eq!(json(&reply)["field"], "body");

        // Exactly the bound is echoed.
        let (status, reply) = raw(server.addr, head, &chunked(&over[1..])).await;
        assert_eq!(status, 200);
        assert_eq!(json(&reply)["body_len"], MAX_ECHO_BODY);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_the_code_asked_for_and_refuses_the_rest() {
    within_deadline(async {
        let server = TestServer::start(Config::default()).await;
        let mut client = server.connect().await;
        for (method, path, code) in [
            (Method::GET, "/status/503", 503),
            (Method::POST, "/status/201?x=1", 201),
            (Method::DELETE, "/status/404", 404),
            (Method::GET, "/status/200", 200),
        ] {
            let reply = client.request(method, path, &[]).await;
            assert_eq!(reply.status.as_u16(), code, "{path}");
            assert_eq!(reply.json(), serde_json::json!({"status": code}), "{path}");
            assert_eq!(reply.header("content-type"), Some("application/json"));
        }
        let reply = client.get("/status/204").await;
        assert_eq!(
            (reply.status, reply.body.len()),
            (StatusCode::NO_CONTENT, 0)
        );
        for path in [
            "/status/abc",
            "/status/100",
            "/status/600",
            "/status/",
            "/status",
        ] {
            let reply = client.get(path).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
            assert_eq!(reply.json()["field"], "code", "{path}");
        }
        // None of these is a /ping.
        assert_eq!(client.metrics().await.requests_received, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_by_path_are_exact_and_bounded() {
    within_deadline(async {
        let server = TestServer::start(Config::default()).await;
        let mut client = server.connect().await;
        for _ in 0..3 {
            client.get("/ping?n=1").await;
        }
        client.request(Method::POST, "/ping", &[]).await;
        client.request(Method::POST, "/echo?a=b", &[]).await;
        client.get("/echo").await;
        for i in 0..4 {
            client.get(&format!("/status/503?i={i}")).await;
        }
        // Scrapes and the other control endpoints are not counted.
        client.get("/metrics").await;
        client.get("/arrivals").await;
        client.get("/headers").await;

        // /ping, /echo and /status/503 are 3 paths; 61 more make the 64 tracked, and the
        // 65th and 66th distinct paths go to "(other)".
        let tracked = MAX_PATHS - 3;
        for i in 0..tracked {
            client.get(&format!("/d{i}")).await;
        }
        client.get("/d-65th").await;
        client.get("/d-66th?q").await;
        client.get("/d-66th").await;
        client.get("/d0").await;

        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        expected.insert("/ping".into(), 4);
        expected.insert("/echo".into(), 2);
        expected.insert("/status/503".into(), 4);
        for i in 0..tracked {
            expected.insert(format!("/d{i}"), if i == 0 { 2 } else { 1 });
        }
        expected.insert(OTHER.into(), 3);

        let v = client.get("/metrics").await.json();
        let paths: BTreeMap<String, u64> =
            serde_json::from_value(v["paths"].clone()).expect("paths object");
        assert_eq!(paths, expected);
        assert_eq!(paths.len(), MAX_PATHS + 1);
        // The existing counters still count GET /ping alone.
        assert_eq!(
            (
                v["requests_received"].as_u64(),
                v["responses_sent"].as_u64()
            ),
            (Some(3), Some(3))
        );

        let text = client.get("/metrics?format=prometheus").await;
        let series: Vec<&str> = text
            .text()
            .lines()
            .filter(|l| l.starts_with("floodgate_target_path_requests_total{"))
            .collect();
        assert_eq!(series.len(), MAX_PATHS + 1);
        assert!(series.contains(&r#"floodgate_target_path_requests_total{path="(other)"} 3"#));
        assert!(series.contains(&r#"floodgate_target_path_requests_total{path="/ping"} 4"#));

        // /reset zeroes the counts; the paths already tracked stay the tracked ones.
        client.request(Method::POST, "/reset", &[]).await;
        assert_eq!(
            client.get("/metrics").await.json()["paths"],
            serde_json::json!({})
        );
        client.get("/d-65th").await;
        client.get("/d1").await;
        assert_eq!(
            client.get("/metrics").await.json()["paths"],
            serde_json::json!({"(other)": 1, "/d1": 1})
        );
    })
    .await;
}
