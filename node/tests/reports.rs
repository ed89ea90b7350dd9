//! Reports end to end: a real cluster over a real Kafka runs a test; its JSON, CSV and HTML
//! exports must match `GET /api/v1/tests/{id}` exactly, a test that has not ended is a 409,
//! and the saved HTML report must open offline in headless Chromium without a single error.
//! Also `floodgate test run -o json` and `floodgate test report` as a user runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

const CSV_COLUMNS: [&str; 44] = [
    "scope",
    "driver_id",
    "state",
    "sent",
    "responses",
    "ok",
    "errors_connect",
    "errors_timeout",
    "errors_http",
    "errors_io",
    "achieved_rps",
    "min_ms",
    "mean_ms",
    "median_ms",
    "mode_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "elapsed_ms",
    "service_median_ms",
    "service_p99_ms",
    "lag_median_ms",
    "lag_p99_ms",
    "threshold",
    "limit",
    "measured",
    "unit",
    "connect_count",
    "connect_mean_ms",
    "connect_median_ms",
    "connect_p99_ms",
    "connect_max_ms",
    "tls_count",
    "tls_mean_ms",
    "tls_median_ms",
    "tls_p99_ms",
    "tls_max_ms",
    "tls_resumed",
    "errors_check",
    "checks_failed_status",
    "checks_failed_body",
    "checks_failed_json",
    "request",
];

struct Fetched {
    status: u16,
    content_type: String,
    disposition: String,
    csp: String,
    body: String,
}

async fn fetch(url: &str) -> Fetched {
    let r = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (content_type, disposition, csp) = (
        header("content-type"),
        header("content-disposition"),
        header("content-security-policy"),
    );
    Fetched {
        status: r.status().as_u16(),
        content_type,
        disposition,
        csp,
        body: r.text().await.unwrap(),
    }
}

/// RFC 4180 records (CRLF, quoted fields), read independently of the writer.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(field.is_empty() && row.is_empty(), "no CRLF at the end");
    rows
}

/// Asserts a CSV row holds exactly the numbers of a stats object of the view.
fn assert_row_matches(row: &[String], scope: &str, id: &str, state: &str, s: &Value) {
    let want_ints = [
        &s["sent"],
        &s["responses"],
        &s["ok"],
        &s["errors"]["connect"],
        &s["errors"]["timeout"],
        &s["errors"]["http"],
        &s["errors"]["io"],
    ];
    let l = &s["latency"];
    let want_floats = [
        &s["achieved_rps"],
        &l["min_ms"],
        &l["mean_ms"],
        &l["median_ms"],
        &l["mode_ms"],
        &l["p90_ms"],
        &l["p95_ms"],
        &l["p99_ms"],
        &l["max_ms"],
    ];
    assert_eq!(row[..3], [scope, id, state], "{row:?}");
    for (i, want) in want_ints.iter().enumerate() {
        let got: u64 = row[3 + i].parse().unwrap();
        assert_eq!(
            got,
            want.as_u64().unwrap(),
            "{} of {id:?}",
            CSV_COLUMNS[3 + i]
        );
    }
    for (i, want) in want_floats.iter().enumerate() {
        let got: f64 = row[10 + i].parse().unwrap();
        assert_eq!(
            got,
            want.as_f64().unwrap(),
            "{} of {id:?}",
            CSV_COLUMNS[10 + i]
        );
    }
    assert_eq!(
        row[19].parse::<u64>().unwrap(),
        s["elapsed_ms"].as_u64().unwrap()
    );
    // Service time and schedule lag: an empty cell where the view has no figure (an unpaced
    // test has no schedule lag), never a zero.
    let (svc, lag) = (&s["service_time"], &s["schedule_lag"]);
    let tail = [
        &svc["median_ms"],
        &svc["p99_ms"],
        &lag["median_ms"],
        &lag["p99_ms"],
    ];
    for (i, want) in tail.iter().enumerate() {
        let cell = &row[20 + i];
        match want.as_f64() {
            Some(w) => assert_eq!(cell.parse::<f64>().ok(), Some(w), "{}", CSV_COLUMNS[20 + i]),
            None => assert_eq!(cell, "", "{} of {id:?}", CSV_COLUMNS[20 + i]),
        }
    }
    // The connection columns, last: the view's connect figures; a plain HTTP test has no TLS.
    let c = &s["connect_time"];
    assert!(c["count"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(row[28], c["count"].to_string(), "connect_count of {id:?}");
    for (i, f) in ["mean_ms", "median_ms", "p99_ms", "max_ms"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            row[29 + i].parse::<f64>().ok(),
            c[f].as_f64(),
            "{} of {id:?}",
            CSV_COLUMNS[29 + i]
        );
    }
    assert_eq!(
        row[33..39],
        ["0", "", "", "", "", "0"],
        "tls columns of {id:?}"
    );
    // Then the check columns: no check failed, and no request name on an `all` or `driver` row.
    assert_eq!(
        row[39..],
        ["0", "0", "0", "0", ""],
        "check columns of {id:?}"
    );
}

/// What the browser check needs; fails (never skips) when it is missing.
fn browser_check_script() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: the HTML report is checked in a real browser; run `bash scripts/deps.sh`"
    );
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "{} is missing: run `bash scripts/deps.sh`",
        dir.join("node_modules/playwright-core").display()
    );
    dir.join("report.mjs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_match_the_test_and_the_html_report_renders_offline_in_chromium() {
    let script = browser_check_script();
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;

    // Capped, so the series has several points; a header that would inject a script if the
    // report did not escape it.
    let v = c
        .run_test(
            json!({"test_type": "avalanche", "requests_per_driver": 1500,
                   "throughput_per_driver": 1000.0, "concurrency": 8,
                   "target_url": target.url(),
                   "headers": {"X-Probe": "</script><script>alert('xss')</script>"}}),
            MIN,
        )
        .await;
    assert_eq!(v["status"], "completed", "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let base = c.url(&format!("/api/v1/tests/{id}"));
    let view = c.test(&id).await;
    assert_eq!(view["aggregate"]["sent"], 3000);

    // JSON: the view plus the series, as a download.
    let j = fetch(&format!("{base}/report.json")).await;
    assert_eq!(j.status, 200, "{}", j.body);
    assert!(
        j.content_type.starts_with("application/json"),
        "{}",
        j.content_type
    );
    assert_eq!(
        j.disposition,
        format!("attachment; filename=\"floodgate-{id}.json\"")
    );
    let mut report: Value = serde_json::from_str(&j.body).unwrap();
    let series = report.as_object_mut().unwrap().remove("series").unwrap();
    assert_eq!(
        report, view,
        "report.json must be GET /api/v1/tests/{{id}} plus series"
    );
    let points = get(&c.url(&format!("/api/v1/tests/{id}/series"))).await["points"].clone();
    assert_eq!(series, points);
    let n_points = points.as_array().unwrap().len();
    assert!(
        n_points >= 2,
        "a 1.5 s test has several chart points: {points}"
    );

    // CSV: the aggregate row, then one row per driver, with the view's exact numbers.
    let csv = fetch(&format!("{base}/report.csv")).await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    assert_eq!(
        csv.disposition,
        format!("attachment; filename=\"floodgate-{id}.csv\"")
    );
    let rows = parse_csv(&csv.body);
    assert_eq!(rows[0], CSV_COLUMNS);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_row_matches(&rows[1], "all", "", "completed", &view["aggregate"]);
    for (row, d) in rows[2..].iter().zip(view["per_driver"].as_array().unwrap()) {
        let id = d["driver_id"].as_str().unwrap();
        assert_row_matches(row, "driver", id, d["state"].as_str().unwrap(), d);
    }

    // The series as CSV: a header and one row per point.
    let s = fetch(&format!("{base}/series.csv")).await;
    assert_eq!(s.status, 200);
    let srows = parse_csv(&s.body);
    assert_eq!(srows.len(), n_points + 1);
    assert_eq!(srows[0][..4], ["t_ms", "sent", "errors", "rps"]);
    assert_eq!(srows[0][7], "sent[driver-0]");

    // HTML: self-contained, locked down, escaped.
    let h = fetch(&format!("{base}/report.html")).await;
    assert_eq!(h.status, 200, "{}", h.body);
    assert!(
        h.content_type.starts_with("text/html"),
        "{}",
        h.content_type
    );
    assert_eq!(
        h.disposition,
        format!("inline; filename=\"floodgate-{id}.html\"")
    );
    assert!(h.csp.contains("default-src 'none'"), "{}", h.csp);
    assert!(h.body.contains(&id));
    assert!(
        !h.body.contains("<script>alert"),
        "the header was not escaped"
    );
    assert!(h.body.contains("&lt;script&gt;alert(&#39;xss&#39;)"));
    assert!(
        h.body.contains(r#"<table class="stats handshakes">"#),
        "the connection table"
    );
    for external in ["src=\"http", "href=\"http", "url(http", "<link"] {
        assert!(
            !h.body.contains(external),
            "the report references {external}"
        );
    }
    let saved = c.dir.path().join("report.html");
    std::fs::write(&saved, &h.body).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&saved)
        .args(["driver-0", "driver-1"])
        .output()
        .await
        .expect("cannot run node (needed for the browser check; see scripts/deps.sh)");
    assert!(
        out.status.success(),
        "the HTML report failed in Chromium:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );

    // Unknown test: 404.
    for ext in ["json", "csv", "html"] {
        let r = fetch(&c.url(&format!("/api/v1/tests/no-such-test/report.{ext}"))).await;
        assert_eq!(r.status, 404, "{}", r.body);
        let e: Value = serde_json::from_str(&r.body).unwrap();
        assert!(e["error"].as_str().unwrap().contains("no-such-test"), "{e}");
    }

    // Created but not triggered, then running: 409 with a message saying why.
    let (status, created) = post(
        &c.url("/api/v1/tests"),
        Some(
            json!({"test_type": "tsunami", "delay_ms": 20.0, "requests_per_driver": 1000,
                    "target_url": target.url(), "concurrency": 4}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let slow = created["id"].as_str().unwrap().to_string();
    let r = fetch(&c.url(&format!("/api/v1/tests/{slow}/report.csv"))).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("has not run yet"), "{}", r.body);

    let (status, v) = post(&c.url(&format!("/api/v1/tests/{slow}/trigger")), None).await;
    assert_eq!(status, 200, "{v}");
    for ext in ["json", "csv", "html"] {
        let r = fetch(&c.url(&format!("/api/v1/tests/{slow}/report.{ext}"))).await;
        assert_eq!(r.status, 409, "report.{ext}: {}", r.body);
        assert!(r.content_type.starts_with("application/json"));
        let e: Value = serde_json::from_str(&r.body).unwrap();
        assert!(
            e["error"].as_str().unwrap().contains("is still running"),
            "{e}"
        );
    }
    let s = fetch(&c.url(&format!("/api/v1/tests/{slow}/series.csv"))).await;
    assert_eq!(s.status, 409);

    // Once stopped it has ended, and its (partial) report is there.
    let (status, v) = post(&c.url(&format!("/api/v1/tests/{slow}/stop")), None).await;
    assert_eq!(status, 200, "{v}");
    let stopped = c.wait_finished(&slow, MIN).await;
    assert_eq!(stopped["status"], "stopped", "{stopped}");
    let r = fetch(&c.url(&format!("/api/v1/tests/{slow}/report.csv"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(parse_csv(&r.body)[1][2], "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_run_prints_only_json_with_o_json_and_downloads_reports() {
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    let url = target.url();

    let (code, stdout, stderr) = floodgate(&[
        "test",
        "run",
        "--orchestrator",
        &c.api,
        "--type",
        "avalanche",
        "-n",
        "1200",
        "--rate",
        "800",
        "-c",
        "8",
        "--url",
        &url,
        "-o",
        "json",
    ])
    .await;
    assert_eq!(code, 0, "stderr:\n{stderr}\nstdout:\n{stdout}");
    let result: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not only JSON ({e}):\n{stdout}"));
    assert_eq!(result["status"], "completed");
    assert_eq!(result["aggregate"]["sent"], 2400);
    for d in result["per_driver"].as_array().unwrap() {
        assert_eq!(d["sent"], 1200, "{d}");
    }
    let id = result["id"].as_str().unwrap();
    assert_eq!(
        result,
        c.test(id).await,
        "the printed result is the test's view"
    );
    assert_eq!(target.metrics().await, (2400, 2400));
    // stderr is not a terminal here: plain progress lines, no bars or escape codes.
    assert!(
        stderr.contains(&format!("test {id} started on 2 drivers")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("req/s") && l.contains("p99")),
        "a 1.5 s test prints at least one progress line:\n{stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "escape codes on a non-terminal:\n{stderr}"
    );

    // `test report` to a file (format from the extension) and to stdout.
    let file = c.dir.path().join("r.csv");
    let (code, stdout, stderr) = floodgate(&[
        "test",
        "report",
        id,
        "--orchestrator",
        &c.api,
        "--out",
        file.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty());
    let api_csv = fetch(&c.url(&format!("/api/v1/tests/{id}/report.csv"))).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), api_csv.body);

    let (code, stdout, stderr) = floodgate(&[
        "test",
        "report",
        id,
        "--orchestrator",
        &c.api,
        "--format",
        "json",
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let j: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["id"], id);
    assert!(j["series"].is_array());

    let html = c.dir.path().join("r.html");
    let (code, _, stderr) = floodgate(&[
        "test",
        "report",
        id,
        "--orchestrator",
        &c.api,
        "--out",
        html.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .starts_with("<!DOCTYPE html>"));

    // An unknown test: exit 2, one line.
    let (code, _, stderr) =
        floodgate(&["test", "report", "no-such-test", "--orchestrator", &c.api]).await;
    assert_eq!(code, 2);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no-such-test"), "{stderr}");
}
