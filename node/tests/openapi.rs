//! The served OpenAPI document is a valid OpenAPI 3.0 document (openapi-spec-validator, the
//! reference validator) and the API keeps to it: schemathesis, generating requests from it,
//! finds no 5xx and no response outside it (status, content type, headers, schema) against a
//! real orchestrator with real drivers, a real target and a real Kafka. Both Python packages
//! are installed, pinned, by scripts/deps.sh.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Examples per operation and phase: about 2,000 requests, some 15-30 s on a busy machine.
/// The fuzzed orchestrator's API token.
const TOKEN: &str = "fuzz-token-0123456789abcdef";
const MAX_EXAMPLES: &str = "100";
/// A bound on the whole fuzz run, so that a hang fails the test instead of the suite.
const FUZZ_DEADLINE: Duration = Duration::from_secs(300);

fn python_module(module: &str) {
    let found = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "the Python module {module} is missing: run scripts/deps.sh (make test does)"
    );
}

#[test]
fn the_document_is_valid_openapi() {
    python_module("openapi_spec_validator");
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/openapi.json");
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&doc)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refuses {}:\n{}{}",
        doc.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_outside_the_document() {
    python_module("schemathesis");
    let target = Target::start(&[]).await;
    // Small caps and an allow-list of loopback IPv4 only: the tests the fuzzer manages to
    // create are tiny, and aimed at this test's target or at nothing.
    // With an API token, as a deployment runs it: the fuzzer sends it, and checks that what
    // needs it is refused without it.
    let args = [
        "--allow-target",
        "127.0.0.1/32",
        "--max-requests-per-driver",
        "20",
        "--max-concurrency",
        "4",
        "--max-rate",
        "200",
    ];
    let extra = Options {
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec![("FLOODGATE_TOKEN".to_string(), TOKEN.to_string())],
    };
    let c = Cluster::start_with(2, extra, Some(TOKEN)).await;
    // The served document, with its example target (the demo's :8080) aimed at this test's
    // target, so that an example test sends nothing to whatever else listens on :8080.
    let served = reqwest::get(c.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let example = "http://127.0.0.1:8080/ping";
    assert!(
        served.contains(example),
        "the document's example target changed"
    );
    let doc = c.dir.path().join("openapi.json");
    std::fs::write(&doc, served.replace(example, &target.url())).unwrap();

    let run = tokio::process::Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(&doc)
        .args(["--url", &c.url("")])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        // Every check but one: a valid spec may still be refused for the state it meets
        // (409: a test running, a driver busy), which the document says.
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        // An event stream never ends.
        .args(["--exclude-path", "/api/v1/events"])
        .args(["--max-examples", MAX_EXAMPLES, "--workers", "1"])
        .args(["--request-timeout", "30", "--no-color"])
        .current_dir(c.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(FUZZ_DEADLINE, run)
        .await
        .expect("schemathesis finished within its deadline")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .collect();
    println!("schemathesis:\n{}", summary.join("\n"));
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = summary
        .iter()
        .find(|l| l.contains(" generated,"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        generated > 500,
        "too few cases ran to mean anything:\n{text}"
    );
    // The fuzzer's tests ran against the target, within the caps, or not at all.
    let (received, _) = target.metrics().await;
    let tests = get_with(&c.url("/api/v1/tests"), Some(TOKEN)).await;
    let created = tests["tests"].as_array().map_or(0, Vec::len) as u64;
    assert!(
        received <= created * 2 * 20,
        "{received} requests for {created} tests"
    );
}
