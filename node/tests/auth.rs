//! Who may aim the fleet (issue 10, items 10 and 11), over real HTTP against a real orchestrator
//! process on a real Kafka: API tokens (from FLOODGATE_TOKEN and a token file of several), open
//! reads, the refusal to serve an open API on a reachable address, the CSRF rules, and the CLI
//! sending its token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

const ENV_TOKEN: &str = "env-token-0123456789abcdef";
const FILE_TOKEN_1: &str = "file-token-1-aaaaaaaaaaaaaaaa";
const FILE_TOKEN_2: &str = "file-token-2-bbbbbbbbbbbbbbbb";
const WRONG: &str = "wrong-token-zzzzzzzzzzzzzzzzzz";

/// An orchestrator on loopback with `extra`, its address and the temporary directory.
async fn orchestrator(extra: Options) -> (Proc, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("t{}.", uuid::Uuid::new_v4().simple());
    let mut p = spawn_orchestrator(dir.path(), &prefix, "127.0.0.1:0", &extra);
    let line = p
        .wait_line("orchestrator listening on", Duration::from_secs(30))
        .await;
    let addr = line.split_whitespace().last().unwrap().to_string();
    (p, addr, dir)
}

/// A token file with two tokens and a comment; returns its path.
fn token_file(dir: &std::path::Path) -> String {
    let path = dir.join("tokens");
    std::fs::write(
        &path,
        format!("# rotation: the old token stays until every client has the new one\n{FILE_TOKEN_1}\n\n{FILE_TOKEN_2}\n"),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

struct Answer {
    status: u16,
    body: Value,
    www_authenticate: Option<String>,
}

impl Answer {
    /// Asserts the status and the field the error names.
    fn is(&self, status: u16, field: Option<&str>) {
        assert_eq!(
            (self.status, self.body["field"].as_str()),
            (status, field),
            "{}",
            self.body
        );
    }
}

/// One request: `headers` as given (nothing added), `body` as raw text.
async fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let www_authenticate = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        www_authenticate,
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");
/// A spec the handler refuses (400, naming the field): proof that a request got past access.
const INVALID_SPEC: &str =
    r#"{"test_type":"avalanche","requests_per_driver":0,"target_url":"http://127.0.0.1:1/"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_the_environment_and_a_file_guard_every_read_and_change() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path());
    let (p, addr, _d) = orchestrator(Options {
        args: vec!["--token-file".into(), file],
        env: vec![("FLOODGATE_TOKEN".into(), ENV_TOKEN.into())],
    })
    .await;
    let url = |path: &str| format!("http://{addr}{path}");

    // Without a token, or with a wrong one: 401 with the API's JSON error, for reads and changes.
    for (method, path, body) in [
        ("GET", "/api/v1/tests", None),
        ("GET", "/api/v1/drivers", None),
        ("GET", "/api/v1/events", None),
        ("GET", "/api/v1/tests/x/report.json", None),
        ("GET", "/metrics", None),
        ("POST", "/api/v1/tests", Some(INVALID_SPEC)),
        ("POST", "/api/v1/tests/x/stop", None),
    ] {
        for token in [None, Some(WRONG)] {
            let a = call(method, &url(path), token, &[JSON], body).await;
            assert_eq!(a.status, 401, "{method} {path} with {token:?}: {}", a.body);
            assert_eq!(a.body["field"], "authorization", "{}", a.body);
            assert!(
                a.body["error"].as_str().unwrap().contains("token"),
                "{}",
                a.body
            );
            assert_eq!(
                a.www_authenticate.as_deref(),
                Some("Bearer realm=\"floodgate\"")
            );
            let text = a.body.to_string();
            for secret in [WRONG, ENV_TOKEN, FILE_TOKEN_1] {
                assert!(!text.contains(secret), "a token is echoed: {text}");
            }
        }
    }
    // Each of the three tokens works: the calls reach their handlers.
    for token in [ENV_TOKEN, FILE_TOKEN_1, FILE_TOKEN_2] {
        let a = call("GET", &url("/api/v1/tests"), Some(token), &[], None).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let a = call("GET", &url("/metrics"), Some(token), &[], None).await;
        assert_eq!(a.status, 200);
        let a = call(
            "POST",
            &url("/api/v1/tests"),
            Some(token),
            &[JSON],
            Some(INVALID_SPEC),
        )
        .await;
        a.is(400, Some("requests_per_driver"));
        let a = call(
            "POST",
            &url("/api/v1/tests/nope/stop"),
            Some(token),
            &[JSON],
            None,
        )
        .await;
        assert_eq!(a.status, 404, "{}", a.body);
    }
    // The page, its files, the OpenAPI document and the health check need none.
    for path in ["/", "/ui/app.js", "/api/v1/openapi.json", "/healthz"] {
        let a = call("GET", &url(path), None, &[], None).await;
        assert_eq!(a.status, 200, "{path}");
    }
    // Nothing refused was created, and no token was ever logged.
    let tests = get_with(&url("/api/v1/tests"), Some(ENV_TOKEN)).await;
    assert_eq!(tests["tests"], json!([]), "{tests}");
    let log = p.output();
    assert!(log.contains("the API requires a token"), "{log}");
    for secret in [WRONG, ENV_TOKEN, FILE_TOKEN_1, FILE_TOKEN_2] {
        assert!(!log.contains(secret), "a token is in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_open_lets_reads_through_but_not_changes() {
    let (_p, addr, _d) = orchestrator(Options {
        args: vec!["--reads-open".into()],
        env: vec![("FLOODGATE_TOKEN".into(), ENV_TOKEN.into())],
    })
    .await;
    let url = |path: &str| format!("http://{addr}{path}");
    for path in ["/api/v1/tests", "/api/v1/drivers", "/metrics"] {
        assert_eq!(
            call("GET", &url(path), None, &[], None).await.status,
            200,
            "{path}"
        );
    }
    let a = call(
        "POST",
        &url("/api/v1/tests"),
        None,
        &[JSON],
        Some(INVALID_SPEC),
    )
    .await;
    assert_eq!(a.status, 401, "{}", a.body);
    let a = call(
        "POST",
        &url("/api/v1/tests"),
        Some(ENV_TOKEN),
        &[JSON],
        Some(INVALID_SPEC),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
}

/// Runs `floodgate orchestrator` to its exit (it must exit on its own, fast).
async fn orchestrator_exit(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(floodgate_bin());
    cmd.arg("orchestrator")
        // Nothing listens there: a check made after the broker wait would hang for minutes.
        .args(["--kafka", "127.0.0.1:1", "--kafka-wait-s", "600"])
        .args(args)
        .env_remove("FLOODGATE_TOKEN")
        .env_remove("FLOODGATE_TOKEN_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut p = Proc::start("orchestrator", &mut cmd);
    let code = p.exit_code(Duration::from_secs(20)).await;
    (code.unwrap_or(-1), p.output())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_without_a_token_is_served_on_loopback_only_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("o.sqlite");
    let store = store.to_str().unwrap();
    let (code, out) = orchestrator_exit(&["--listen", "0.0.0.0:0", "--store", store], &[]).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("refusing to serve the API on 0.0.0.0"),
        "{out}"
    );
    assert!(
        out.contains("--insecure-no-auth") && out.contains("FLOODGATE_TOKEN"),
        "{out}"
    );

    // A token too short to be safe is refused, and not echoed.
    let (code, out) = orchestrator_exit(
        &["--listen", "0.0.0.0:0", "--store", store],
        &[("FLOODGATE_TOKEN", "short-secret")],
    )
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("FLOODGATE_TOKEN: a token must be 16"), "{out}");
    assert!(!out.contains("short-secret"), "{out}");

    // Asked for explicitly, an open API on every interface starts, with a warning.
    let prefix = format!("t{}.", uuid::Uuid::new_v4().simple());
    let mut p = spawn_orchestrator(
        dir.path(),
        &prefix,
        "0.0.0.0:0",
        &Options {
            args: vec!["--insecure-no-auth".into()],
            env: vec![],
        },
    );
    p.wait_line("orchestrator listening on", Duration::from_secs(30))
        .await;
    assert!(
        p.output().contains("needs no token (--insecure-no-auth)"),
        "{}",
        p.output()
    );
}

/// (path, headers, body, the status expected, the field the error names)
type Case<'a> = (
    &'a str,
    Vec<(&'a str, &'a str)>,
    Option<&'a str>,
    u16,
    Option<&'a str>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_must_be_json_from_the_orchestrators_own_or_an_allowed_origin() {
    let (_p, addr, _d) = orchestrator(Options {
        args: vec!["--allowed-origin".into(), "https://dash.example.com".into()],
        env: vec![],
    })
    .await;
    let url = |path: &str| format!("http://{addr}{path}");
    let own = format!("http://{addr}");
    // What a foreign page can send without a preflight: a text/plain or form POST, a bodiless one.
    let valid = json!({"test_type":"avalanche","requests_per_driver":10,"target_url":"http://127.0.0.1:1/","trigger":true}).to_string();
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("/api/v1/tests", vec![("content-type", "text/plain"), ("origin", "http://evil.example")], Some(&valid), 403, Some("origin")),
        ("/api/v1/tests", vec![("content-type", "text/plain")], Some(&valid), 415, Some("content-type")),
        ("/api/v1/tests", vec![("content-type", "application/x-www-form-urlencoded")], Some(&valid), 415, Some("content-type")),
        ("/api/v1/tests", vec![JSON, ("origin", "http://evil.example")], Some(&valid), 403, Some("origin")),
        ("/api/v1/tests", vec![JSON, ("origin", "null")], Some(&valid), 403, Some("origin")),
        ("/api/v1/tests/x/stop", vec![("origin", "http://evil.example")], None, 403, Some("origin")),
        ("/api/v1/tests/x/stop", vec![], None, 415, Some("content-type")),
        ("/api/v1/tests/x/trigger", vec![("content-type", "text/plain")], None, 415, Some("content-type")),
        // Past the rules, the handlers answer.
        ("/api/v1/tests", vec![JSON], Some(INVALID_SPEC), 400, Some("requests_per_driver")),
        ("/api/v1/tests", vec![JSON, ("origin", &own)], Some(INVALID_SPEC), 400, Some("requests_per_driver")),
        ("/api/v1/tests", vec![JSON, ("origin", "https://dash.example.com")], Some(INVALID_SPEC), 400, Some("requests_per_driver")),
        ("/api/v1/tests/x/stop", vec![JSON, ("origin", &own)], None, 404, None),
    ];
    for (path, headers, body, status, field) in cases {
        let a = call("POST", &url(path), None, &headers, body).await;
        assert_eq!(a.status, status, "POST {path} {headers:?}: {}", a.body);
        assert_eq!(
            a.body["field"].as_str(),
            field,
            "POST {path} {headers:?}: {}",
            a.body
        );
        assert!(a.body["error"].is_string(), "{}", a.body);
    }
    // Reads from any origin are answered (without CORS headers a foreign page cannot read them).
    let a = call(
        "GET",
        &url("/api/v1/tests"),
        None,
        &[("origin", "http://evil.example")],
        None,
    )
    .await;
    assert_eq!(a.status, 200);
    // A DNS-rebinding page: its own name resolves to 127.0.0.1, so Host and Origin agree. The
    // open loopback API answers only requests that name this machine.
    let port = addr.rsplit(':').next().unwrap();
    let evil_host = format!("evil.example:{port}");
    let evil_origin = format!("http://{evil_host}");
    let rebinding = [
        ("host", evil_host.as_str()),
        ("origin", evil_origin.as_str()),
        JSON,
    ];
    let a = call(
        "POST",
        &url("/api/v1/tests"),
        None,
        &rebinding,
        Some(&valid),
    )
    .await;
    a.is(403, Some("host"));
    let a = call("GET", &url("/api/v1/tests"), None, &rebinding[..1], None).await;
    a.is(403, Some("host"));
    let a = call(
        "GET",
        &url("/api/v1/tests"),
        None,
        &[("host", &format!("localhost:{port}"))],
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // Nothing that was refused left a test behind.
    assert_eq!(get(&url("/api/v1/tests")).await["tests"], json!([]));
}

/// Runs the CLI with `args` and `env` (no token from the test's own environment).
fn cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(floodgate_bin());
    cmd.args(args)
        .env_remove("FLOODGATE_TOKEN")
        .env_remove("FLOODGATE_TOKEN_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_its_token_from_the_environment_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path());
    let (_p, addr, _d) = orchestrator(Options {
        args: vec!["--token-file".into(), file.clone()],
        env: vec![],
    })
    .await;
    let (code, out) =
        tokio::task::block_in_place(|| cli(&["test", "list", "--orchestrator", &addr], &[]));
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("needs an API token") && out.contains("HTTP 401"),
        "{out}"
    );
    assert_eq!(out.trim().lines().count(), 1, "{out}");

    let (code, out) = tokio::task::block_in_place(|| {
        cli(
            &["test", "list", "--orchestrator", &addr],
            &[("FLOODGATE_TOKEN", FILE_TOKEN_2)],
        )
    });
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("status"), "the table's header: {out}");
    let (code, out) = tokio::task::block_in_place(|| {
        cli(
            &["nodes", "--orchestrator", &addr, "--token-file", &file],
            &[],
        )
    });
    assert_eq!(code, 0, "{out}");
    let (code, out) = tokio::task::block_in_place(|| {
        cli(
            &["test", "list", "--orchestrator", &addr],
            &[("FLOODGATE_TOKEN", WRONG)],
        )
    });
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("refused") && !out.contains(WRONG), "{out}");
    // A stop is a change: it reaches the handler (404), so it went as JSON with the token.
    let (code, out) = tokio::task::block_in_place(|| {
        cli(
            &["test", "stop", "no-such-test", "--orchestrator", &addr],
            &[("FLOODGATE_TOKEN", FILE_TOKEN_1)],
        )
    });
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("HTTP 404"), "{out}");
}
