//! The CLI's side of the REST API: `floodgate test run|list|show|set-rate|stop|report` and
//! `floodgate nodes`, with progress while a test runs and a table of the results.

mod mix_args;
mod progress;
mod table;
mod transport_args;

pub use mix_args::{checks_field, mix_field};
use table::ms;
pub use table::{print_result, print_thresholds};

use crate::api::dto::{RateInput, Test};
use crate::cli::{
    ClientArgs, Output, ReportArgs, ReportFormat, RunArgs, SetRateArgs, TestKind, TokenArgs,
};
use crate::model::TestStatus;
use progress::Progress;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

/// A failure the CLI reports in one line, with its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub message: String,
    pub code: i32,
}

fn fail(code: i32, message: impl Into<String>) -> CliError {
    CliError {
        message: message.into(),
        code,
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    /// `Bearer <token>`, when the user gave one; sent on every call, never printed.
    authorization: Option<String>,
}

/// The API token to send: the first of `--token-file`, else FLOODGATE_TOKEN, else none.
fn token(args: &TokenArgs) -> Result<Option<String>, CliError> {
    if let Some(path) = &args.token_file {
        let source = format!("--token-file {}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| fail(2, format!("{source}: {e}")))?;
        let tokens = crate::api::access::parse_token_file(&text, &source)
            .map_err(|e| fail(2, e.to_string()))?;
        return Ok(tokens.into_iter().next());
    }
    Ok(std::env::var(crate::api::access::TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

impl Api {
    fn new(addr: &str, token_args: &TokenArgs) -> Result<Self, CliError> {
        let authorization = token(token_args)?.map(|t| format!("Bearer {t}"));
        let base = if addr.starts_with("http://") {
            addr.trim_end_matches('/').to_string()
        } else {
            format!("http://{addr}")
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| fail(2, format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            authorization,
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<reqwest::Response, CliError> {
        let changes = method != reqwest::Method::GET;
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(auth) = &self.authorization {
            req = req.header(reqwest::header::AUTHORIZATION, auth);
        }
        if let Some(b) = body {
            req = req.json(&b);
        } else if changes {
            // The API takes changes only as JSON (its CSRF rule), even without a body.
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        let resp = req.send().await.map_err(|e| {
            fail(
                2,
                format!(
                    "cannot reach the orchestrator at {}: {e} (set --orchestrator)",
                    self.base
                ),
            )
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        let msg = value["error"].as_str().unwrap_or("request failed");
        Err(match value["field"].as_str().and_then(cli_flag) {
            Some(flag) => fail(2, format!("{msg} (fix --{flag})")),
            None => fail(2, format!("{msg} (HTTP {status})")),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let resp = self.send(method, path, body).await?;
        Ok(resp.json().await.unwrap_or(Value::Null))
    }

    /// The body of a GET, as bytes (an export).
    async fn download(&self, path: &str) -> Result<Vec<u8>, CliError> {
        let resp = self.send(reqwest::Method::GET, path, None).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| fail(2, format!("the download from {} broke off: {e}", self.base)))?;
        Ok(bytes.to_vec())
    }

    async fn test(&self, id: &str) -> Result<Test, CliError> {
        let v = self
            .call(reqwest::Method::GET, &format!("/api/v1/tests/{id}"), None)
            .await?;
        serde_json::from_value(v)
            .map_err(|e| fail(2, format!("unexpected answer from the orchestrator: {e}")))
    }
}

/// The CLI flag that sets an API field, for error messages; none for a refused request header
/// (the token, the origin, the content type), which no flag of the call sets.
fn cli_flag(field: &str) -> Option<&str> {
    Some(match field {
        "authorization" | "origin" | "content-type" => return None,
        "test_type" => "type",
        "target_url" => "url",
        f if f.starts_with("mix") => "mix",
        f if f.starts_with("checks.status") => "check-status",
        f if f.starts_with("checks.body") => "check-body",
        f if f.starts_with("checks.json") => "check-json",
        "requests_per_driver" => "requests",
        "total_requests" => "total-requests",
        "total_rate" => "total-rate",
        "fail_safe_ms" => "fail-safe-ms",
        "throughput_per_driver" => "rate",
        "delay_ms" => "delay-ms",
        "timeout_ms" => "timeout-ms",
        "headers" => "header",
        "duration_ms" => "duration",
        "start_rate" => "start-rate",
        f if f.starts_with("stages") => "stage",
        t if t.starts_with("thresholds[") && t.ends_with(".delay") => "abort-delay",
        t if t.starts_with("thresholds") => "threshold (or --abort-on-fail)",
        other => other,
    })
}

pub async fn run(args: RunArgs) -> Result<(), CliError> {
    let api = Api::new(&args.client.orchestrator, &args.client.token)?;
    let mut headers = serde_json::Map::new();
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| fail(2, format!("--header {h:?} must look like 'Name: value'")))?;
        headers.insert(k.trim().to_string(), json!(v.trim()));
    }
    let mut body = json!({
        "test_type": match args.kind { TestKind::Tsunami => "tsunami", TestKind::Avalanche => "avalanche" },
        "requests_per_driver": args.requests,
        "trigger": !args.no_trigger,
    });
    mix_args::request_fields(&args, &mut body).map_err(|e| fail(2, e))?;
    let fields = [
        ("total_requests", args.total_requests.map(|v| json!(v))),
        ("total_rate", args.total_rate.map(|v| json!(v))),
        (
            "split",
            args.split.map(|v| match v {
                crate::cli::SplitArg::Capacity => json!("capacity"),
                crate::cli::SplitArg::Equal => json!("equal"),
                crate::cli::SplitArg::Measured => json!("measured"),
            }),
        ),
        ("fail_safe_ms", args.fail_safe_ms.map(|v| json!(v))),
        ("delay_ms", args.delay_ms.map(|v| json!(v))),
        ("throughput_per_driver", args.rate.map(|v| json!(v))),
        ("concurrency", args.concurrency.map(|v| json!(v))),
        ("timeout_ms", args.timeout_ms.map(|v| json!(v))),
        ("drivers", args.drivers.map(|v| json!(v))),
        (
            "duration_ms",
            args.timing
                .duration
                .map(|d| json!(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
        ),
        (
            "stages",
            (!args.timing.stages.is_empty()).then(|| {
                json!(args
                    .timing
                    .stages
                    .iter()
                    .map(|s| json!({
                        "duration_ms": u64::try_from(s.duration.as_millis()).unwrap_or(u64::MAX),
                        "rate": s.rate
                    }))
                    .collect::<Vec<_>>())
            }),
        ),
        ("start_rate", args.timing.start_rate.map(|v| json!(v))),
        ("body", args.body.as_ref().map(|v| json!(v))),
        (
            "headers",
            (!headers.is_empty()).then_some(Value::Object(headers)),
        ),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            body[k] = v;
        }
    }
    if let Some(t) = thresholds_field(&args)? {
        body["thresholds"] = t;
    }
    let concurrency = args
        .concurrency
        .unwrap_or(crate::protocol::limits::DEFAULT_CONCURRENCY);
    for (k, v) in args
        .transport
        .spec_fields(concurrency)
        .map_err(|e| fail(2, e))?
    {
        body[k] = v;
    }
    let created = api
        .call(reqwest::Method::POST, "/api/v1/tests", Some(body))
        .await?;
    let id = created["id"]
        .as_str()
        .ok_or_else(|| fail(2, "the orchestrator returned no test id"))?
        .to_string();
    if args.no_trigger {
        println!("{id}");
        return Ok(());
    }
    let drivers: Vec<String> = created["drivers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    eprintln!("test {id} started on {} drivers", drivers.len());
    // A time-bound test's count is the one its pace has due (0, unpaced: open).
    let planned = created["spec"]["requests_per_driver"].as_u64().unwrap_or(0);
    let mut progress = Progress::new(&drivers, planned);
    let view = loop {
        tokio::time::sleep(POLL).await;
        let v = api.test(&id).await?;
        progress.update(&v);
        // A stopped test still takes its drivers' last reports for a moment: wait for them.
        if v.status.is_finished() && v.settled {
            progress.finish();
            break v;
        }
    };
    print_result(&view, args.client.output);
    outcome(&view)
}

/// Exit code of a test whose thresholds did not pass (failed, or not evaluated for lack of
/// data), distinct from 1 (the test itself did not complete) and 2 (usage, API).
pub const EXIT_THRESHOLDS: i32 = 3;

/// How `test run` ends: 0 when the test completed and its thresholds (if any) passed; 3 when
/// the thresholds did not pass, on a test that completed or was stopped by an `abort_on_fail`
/// threshold; 1 when the test did not complete otherwise (failed, stopped on request).
fn outcome(view: &Test) -> Result<(), CliError> {
    let verdict = view.thresholds.as_ref();
    let aborted = verdict.is_some_and(|t| t.aborted_by.is_some());
    if view.status != TestStatus::Completed && !aborted {
        return Err(fail(
            1,
            format!(
                "test {} ended {}: {}",
                view.id,
                view.status.as_str(),
                view.reason.as_deref().unwrap_or("stopped")
            ),
        ));
    }
    match verdict {
        Some(t) if !t.passed() => Err(fail(
            EXIT_THRESHOLDS,
            format!(
                "test {}: thresholds {}{}",
                view.id,
                t.verdict.as_str(),
                view.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        )),
        _ => Ok(()),
    }
}

/// The `thresholds` of the request: each `--threshold` as a string, each `--abort-on-fail` as
/// an object with the `--abort-delay`.
fn thresholds_field(args: &RunArgs) -> Result<Option<Value>, CliError> {
    if args.abort_delay.is_some() && args.abort_on_fail.is_empty() {
        return Err(fail(2, "--abort-delay needs an --abort-on-fail threshold"));
    }
    let mut all: Vec<Value> = args.thresholds.iter().map(|t| json!(t)).collect();
    for t in &args.abort_on_fail {
        let mut o = json!({"threshold": t, "abort_on_fail": true});
        if let Some(d) = &args.abort_delay {
            o["delay"] = json!(d);
        }
        all.push(o);
    }
    Ok((!all.is_empty()).then_some(Value::Array(all)))
}

/// How often `test run` asks for the test's state.
pub(super) const POLL: Duration = Duration::from_millis(500);

pub async fn list(args: ClientArgs) -> Result<(), CliError> {
    let api = Api::new(&args.orchestrator, &args.token)?;
    let v = api
        .call(reqwest::Method::GET, "/api/v1/tests", None)
        .await?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let tests: Vec<Test> = serde_json::from_value(v["tests"].clone())
        .map_err(|e| fail(2, format!("unexpected answer: {e}")))?;
    println!(
        "{:<38} {:<10} {:<10} {:>7} {:>10} {:>9} {:>9}",
        "test", "type", "status", "drivers", "sent", "p50 ms", "p99 ms"
    );
    for t in tests {
        let a = &t.aggregate;
        println!(
            "{:<38} {:<10} {:<10} {:>7} {:>10} {:>9} {:>9}",
            t.id,
            t.spec.test_type.to_string(),
            t.status.as_str(),
            t.drivers.len(),
            a.sent,
            ms(a.latency.median_ms, 3),
            ms(a.latency.p99_ms, 3)
        );
    }
    Ok(())
}

pub async fn show(id: &str, args: ClientArgs) -> Result<(), CliError> {
    let api = Api::new(&args.orchestrator, &args.token)?;
    print_result(&api.test(id).await?, args.output);
    Ok(())
}

/// `floodgate test report <id>`: downloads an export of a finished test to a file or stdout.
pub async fn report(args: ReportArgs) -> Result<(), CliError> {
    let format = args
        .format
        .or_else(|| {
            args.out
                .as_ref()
                .and_then(|p| p.file_name())
                .and_then(|n| ReportFormat::from_file_name(&n.to_string_lossy()))
        })
        .unwrap_or(ReportFormat::Html);
    let api = Api::new(&args.orchestrator, &args.token)?;
    let path = format!(
        "/api/v1/tests/{}/{}",
        path_segment(&args.id),
        format.endpoint()
    );
    let bytes = api.download(&path).await?;
    match &args.out {
        Some(file) => {
            std::fs::write(file, &bytes)
                .map_err(|e| fail(2, format!("cannot write {}: {e}", file.display())))?;
            eprintln!("wrote {} ({} bytes)", file.display(), bytes.len());
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .map_err(|e| fail(2, format!("cannot write to stdout: {e}")))?;
        }
    }
    Ok(())
}

/// Percent-encodes what cannot appear as-is in one URL path segment.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub async fn stop(id: &str, args: ClientArgs) -> Result<(), CliError> {
    let api = Api::new(&args.orchestrator, &args.token)?;
    api.call(
        reqwest::Method::POST,
        &format!("/api/v1/tests/{id}/stop"),
        None,
    )
    .await?;
    eprintln!("stop requested for test {id}");
    Ok(())
}

/// `floodgate test set-rate <id>`: a live rate change; prints the change as planned.
pub async fn set_rate(args: SetRateArgs) -> Result<(), CliError> {
    let api = Api::new(&args.client.orchestrator, &args.client.token)?;
    let input = RateInput {
        delay_ms: args.delay_ms,
        throughput_per_driver: args.rate,
        total_rate: args.total_rate,
    };
    let body = serde_json::to_value(&input).map_err(|e| fail(2, e.to_string()))?;
    let path = format!("/api/v1/tests/{}", path_segment(&args.id));
    let value = api.call(reqwest::Method::PATCH, &path, Some(body)).await?;
    if args.client.output == Output::Json {
        println!("{value:#}");
        return Ok(());
    }
    let test: Test = serde_json::from_value(value)
        .map_err(|e| fail(2, format!("the orchestrator's answer is not a test: {e}")))?;
    match test.rate_changes.last() {
        Some(c) => eprintln!("{}", table::rate_change_line(c)),
        None => eprintln!("rate change requested for test {}", args.id),
    }
    Ok(())
}

pub async fn nodes(args: ClientArgs) -> Result<(), CliError> {
    let api = Api::new(&args.orchestrator, &args.token)?;
    let v = api
        .call(reqwest::Method::GET, "/api/v1/drivers", None)
        .await?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    println!(
        "{:<40} {:<22} {:<6} {:>10}  test",
        "driver", "address", "state", "beat age"
    );
    for d in v["drivers"].as_array().cloned().unwrap_or_default() {
        println!(
            "{:<40} {:<22} {:<6} {:>8}ms  {}",
            d["id"].as_str().unwrap_or(""),
            d["address"].as_str().unwrap_or(""),
            if d["alive"].as_bool().unwrap_or(false) {
                "alive"
            } else {
                "lost"
            },
            d["heartbeat_age_ms"].as_u64().unwrap_or(0),
            d["test_id"].as_str().unwrap_or("-")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thresholds::eval::{Thresholds, Verdict};

    /// How `test run` exits: 1 for a test that did not complete, 3 for thresholds that did not
    /// pass (also when an `abort_on_fail` threshold stopped the test), 0 otherwise.
    #[test]
    fn the_exit_code_tells_a_failed_test_from_failed_thresholds() {
        let verdict = |verdict, aborted_by: Option<&str>| Thresholds {
            verdict,
            results: Vec::new(),
            aborted_by: aborted_by.map(str::to_string),
        };
        // (status, thresholds, exit code)
        let cases = [
            (TestStatus::Completed, None, 0),
            (
                TestStatus::Completed,
                Some(verdict(Verdict::Passed, None)),
                0,
            ),
            (
                TestStatus::Completed,
                Some(verdict(Verdict::Failed, None)),
                EXIT_THRESHOLDS,
            ),
            (
                TestStatus::Completed,
                Some(verdict(Verdict::NotEvaluated, None)),
                EXIT_THRESHOLDS,
            ),
            (
                TestStatus::Stopped,
                Some(verdict(Verdict::Failed, Some("p99 < 1ms"))),
                EXIT_THRESHOLDS,
            ),
            (TestStatus::Stopped, Some(verdict(Verdict::Failed, None)), 1),
            (TestStatus::Stopped, None, 1),
            (TestStatus::Failed, Some(verdict(Verdict::Passed, None)), 1),
            (TestStatus::Failed, None, 1),
        ];
        for (status, thresholds, code) in cases {
            let mut v = crate::api::dto::Test::from(&crate::report::tests::view());
            v.status = status;
            v.thresholds = thresholds;
            let got = outcome(&v).err().map_or(0, |e| e.code);
            assert_eq!(
                got,
                code,
                "{status:?} {:?}",
                v.thresholds.map(|t| t.verdict)
            );
        }
        assert_ne!(EXIT_THRESHOLDS, 1);
    }
}
